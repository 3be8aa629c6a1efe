"""Who may talk to the page and OSCQuery servers, and how fast.

- **Where they listen**: ``parse_listen`` reads ``[HOST:]PORT``; a bare port is
  127.0.0.1 (this machine only). Anything else is opening the show to a network.
- **The page beyond loopback**: a random token (``secrets.token_urlsafe``) in the URL,
  checked with a constant-time comparison on every request and websocket.
- **On loopback**: no token, but a browser on this machine must not be turned against the
  show by a web site it visits. The ``Host`` header must name this machine (a rebound DNS
  name is refused), and a websocket's ``Origin``, when a browser sends one, must be the
  page's own (a foreign site's script cannot open the socket).
- **OSCQuery** cannot carry a token (TouchOSC and Open Stage Control fetch the namespace
  as it is), so beyond loopback it answers only allow-listed hosts, as the OSC input does
  (``controls.osc_in.parse_allow``: this machine always).
- **Rate limits**: a token bucket per client for requests and per websocket for messages;
  what is over is dropped and counted, and reported at a limited rate, like the OSC input.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from urllib.parse import urlsplit

from livernn.errors import LivernnError

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def parse_listen(text: str | int, what: str) -> tuple[str, int]:
    """``8080``, ``:8080``, ``0.0.0.0:8080`` or ``[::1]:8080`` as (host, port)."""
    raw = str(text).strip()
    host, sep, port = raw.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", raw
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise LivernnError(f"{what} {text!r} must be [HOST:]PORT with a port 0..65535 (0 = any free)")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise LivernnError(f"{what} {text!r}: host must be an IP address (127.0.0.1, 0.0.0.0, ...)") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def new_token() -> str:
    return secrets.token_urlsafe(16)


def token_ok(given: str | None, token: str | None) -> bool:
    """No token asked (loopback), or the right one given."""
    if token is None:
        return True
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def host_ok(host_header: str | None) -> bool:
    """The Host header names this machine by an address or as localhost (not a DNS name
    that a foreign site could point here)."""
    if not host_header:
        return False
    name = urlsplit("//" + host_header).hostname or ""
    if name in LOCAL_NAMES:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_ok(origin: str | None, host_header: str | None) -> bool:
    """A websocket opened by the page itself (same host:port), or by a program that is not
    a browser (no Origin header)."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host_header) and parts.netloc == host_header


class Bucket:
    """A token bucket: ``rate`` per second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.t = time.monotonic()
        self.dropped = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.dropped += 1
        return False


class Buckets:
    """One bucket per client address, at most ``size`` of them (the oldest forgotten)."""

    def __init__(self, rate: float, burst: float, size: int = 1024) -> None:
        self.rate, self.burst, self.size = rate, burst, size
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.size:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = Bucket(self.rate, self.burst)
        return bucket.take()

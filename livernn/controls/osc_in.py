"""OSC input: python-osc's asyncio UDP server, hardened for a stage.

Every message becomes a bus value named ``osc.<address>`` (the first argument; with
several arguments also ``osc.<address>.<i>`` for each), unless a command handler owns the
address (``/livernn/...``, see ``livernn.controls.commands``). What python-osc leaves to
the application is done here:

- packets from hosts outside the allow list are refused before parsing (only 127.0.0.1
  unless the patch opens it);
- any exception while parsing or handling one packet (python-osc lets a UnicodeDecodeError
  from a bad string escape, and handler errors) is caught, counted and logged at a limited
  rate, so one bad packet never reaches the event loop;
- NaN/inf, blobs, arrays and oversized strings are refused at the door; a flood of
  invented addresses cannot grow the bus without bound (``max_names``), and bundles nested
  thousands deep (which python-osc unpacks in quadratic time, then hits the recursion
  limit) are refused before parsing;
- timetags are ignored (``strict_timing=False``): a bundle stamped in the future must not
  park the event loop in a sleep.

A patch's server runs on the show's event loop (``start``). One opened from the REPL or a
script (``livernn.api.listen_osc``) runs in a thread of its own (``start_thread``): a
script has no event loop to serve it, and at the prompt a long-running line must not
hold back a fader.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer

from livernn.controls.bus import ControlBus
from livernn.errors import LivernnError

log = logging.getLogger(__name__)

PREFIX = "osc."
MAX_STRING = 64
MAX_ARGS = 64
MAX_ADDRESS = 256
MAX_BUNDLES = 16  # nested bundles per packet: deeper ones cost python-osc quadratic time
WILDCARDS = frozenset("*?[]{}")


class _QuietPythonOsc(logging.Filter):
    """python-osc logs a warning per odd packet (unknown type tag, empty bundle element)
    through the root logger: a storm of such packets would flood the log. We count them
    in ``OscStats`` and report at a limited rate instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pythonosc" not in record.pathname


logging.getLogger().addFilter(_QuietPythonOsc())


@dataclass
class OscStats:
    packets: int = 0
    messages: int = 0
    published: int = 0
    refused_host: int = 0
    malformed: int = 0
    bad_value: int = 0
    handler_errors: int = 0
    names_full: int = 0
    refused_command: int = 0  # /livernn/... while remote commands are off

    @property
    def errors(self) -> int:
        return (self.refused_host + self.malformed + self.bad_value + self.handler_errors + self.names_full
                + self.refused_command)


class RateLimitedLog:
    """At most one warning per ``interval`` seconds; the next one says how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self._logger, self._interval = logger, interval
        self._last = -math.inf
        self._held = 0

    def warning(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._held += 1
            return
        more = f" ({self._held} more since the last report)" if self._held else ""
        self._logger.warning("%s%s", message, more)
        self._last, self._held = now, 0


def parse_allow(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Hosts or networks (``192.168.1.20``, ``10.0.0.0/24``); this machine (127.0.0.1, ::1)
    is always allowed."""
    nets = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")]
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            raise LivernnError(f"osc allow: {entry!r} is not an IP address or network") from None
    return nets


def osc_value(arg: Any) -> float | str | None:
    """An OSC argument as a bus value, or None when it cannot be one."""
    if isinstance(arg, bool):
        return 1.0 if arg else 0.0
    if isinstance(arg, int | float):
        value = float(arg)
        return value if math.isfinite(value) else None
    if isinstance(arg, str) and 0 < len(arg) <= MAX_STRING and arg.isprintable():
        return arg
    return None


class GuardedDispatcher(Dispatcher):
    """A python-osc dispatcher that checks the sender, counts and survives every failure."""

    def __init__(self, owner: OscIn) -> None:
        super().__init__(strict_timing=False)
        self._owner = owner
        self.set_default_handler(owner._publish_unmapped)

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        owner = self._owner
        stats = owner.stats
        stats.packets += 1
        if not owner.allowed(client_address[0]):
            stats.refused_host += 1
            owner.warn(f"OSC from {client_address[0]} refused (not in the patch's osc.allow)")
            return []
        if data.count(b"#bundle\x00") > MAX_BUNDLES:
            stats.malformed += 1
            owner.warn(f"OSC packet from {client_address[0]} refused: more than {MAX_BUNDLES} bundles")
            return []
        try:
            messages = osc_packet.OscPacket(data).messages
        except Exception as exc:  # ParseError, UnicodeDecodeError, RecursionError, ...
            stats.malformed += 1
            owner.warn(f"malformed OSC packet from {client_address[0]}: {type(exc).__name__}")
            return []
        for timed in messages:
            stats.messages += 1
            message = timed.message
            try:
                if len(message.address) > MAX_ADDRESS or not message.address.startswith("/"):
                    stats.malformed += 1
                    continue
                for handler in list(self.handlers_for_address(message.address)):
                    handler.invoke(client_address, message)
            except Exception as exc:
                stats.handler_errors += 1
                owner.warn(f"OSC {message.address[:80]!r}: {type(exc).__name__}: {exc}"[:200])
        return []


class OscIn:
    """An OSC server publishing to a ``ControlBus``; start it inside a running event loop."""

    def __init__(
        self,
        bus: ControlBus,
        port: int = 9000,
        bind: str = "127.0.0.1",
        allow: Iterable[str] = (),
        max_names: int = 1024,
    ) -> None:
        self.bus = bus
        self.port = port
        self.bind = bind
        self.allow = tuple(str(a) for a in allow)  # as given (for status and reuse)
        self._allow = parse_allow(self.allow)
        self._allowed_cache: dict[str, bool] = {}
        self.max_names = max_names
        self._names: set[str] = set()
        self._watched: set[str] = set()
        self._owned: dict[str, int] = {}  # address -> how many ``on`` handlers own it exactly
        self.stats = OscStats()
        self._log = RateLimitedLog(log)
        self.dispatcher = GuardedDispatcher(self)
        self.transport: asyncio.DatagramTransport | None = None
        self.commands = False  # set by controls.commands.install_commands
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "open" if self.listening else "closed"
        return f"<osc in {self.where}, remote commands {'on' if self.commands else 'off'}, {state}>"

    @property
    def where(self) -> str:
        return f"[{self.bind}]:{self.port}" if ":" in self.bind else f"{self.bind}:{self.port}"

    @property
    def listening(self) -> bool:
        return self.transport is not None or self._thread is not None

    # -- sender and logging -------------------------------------------------------------
    def allowed(self, host: str) -> bool:
        known = self._allowed_cache.get(host)
        if known is None:
            try:
                ip = ipaddress.ip_address(host.split("%")[0])
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                known = any(ip in net for net in self._allow)
            except ValueError:
                known = False
            if len(self._allowed_cache) < 4096:
                self._allowed_cache[host] = known
        return known

    def warn(self, message: str) -> None:
        self._log.warning(message)

    # -- handlers -------------------------------------------------------------------------
    def on(self, address: str, handler: Callable[..., None]) -> None:
        """Let ``handler(address, *args)`` own an address (commands); nothing is published."""
        self.dispatcher.map(address, handler)
        self._owned[address] = self._owned.get(address, 0) + 1

    def off(self, address: str, handler: Callable[..., None]) -> None:
        """Undo ``on(address, handler)`` (nothing if it is not there)."""
        try:
            self.dispatcher.unmap(address, handler)
        except ValueError:
            return
        left = self._owned.get(address, 0) - 1
        if left > 0:
            self._owned[address] = left
        else:
            self._owned.pop(address, None)

    def owned(self, address: str) -> bool:
        """Whether a handler given to ``on`` owns exactly this address (not a pattern):
        a catch-all such as the refused-command line leaves it to that one."""
        return address in self._owned

    def watch(self, address: str) -> None:
        """Register an address so that incoming wildcard patterns (``/1/fader*``) reach it.

        A watched pattern (``/1/fader*``) instead publishes each concrete address it receives.
        """
        if address in self._watched:
            return
        self._watched.add(address)
        pattern = bool(WILDCARDS.intersection(address))

        def publish(incoming: str, *args: Any) -> None:
            if not (pattern and WILDCARDS.intersection(incoming)):
                self._publish(incoming if pattern else address, *args)

        self.dispatcher.map(address, publish)

    def _publish_unmapped(self, address: str, *args: Any) -> None:
        if WILDCARDS.intersection(address):
            return  # a pattern that matched nothing we know: nothing to publish
        self._publish(address, *args)

    def _publish(self, address: str, *args: Any) -> None:
        name = PREFIX + address
        if name not in self._names:
            if len(self._names) >= self.max_names:
                self.stats.names_full += 1
                self.warn(f"OSC {address[:80]!r} ignored: already {self.max_names} distinct addresses")
                return
            self._names.add(name)
        if not args:
            args = (1.0,)  # a bare message is a bang
        if len(args) > MAX_ARGS:
            self.stats.bad_value += 1
            return
        values = [osc_value(a) for a in args]
        if values[0] is None:
            self.stats.bad_value += 1
            self.warn(f"OSC {address[:80]!r}: value {str(args[0])[:40]!r} refused (need a finite number)")
            return
        now = time.monotonic()
        self.bus.publish(name, values[0], now)
        self.stats.published += 1
        if len(values) > 1:
            for i, value in enumerate(values):
                if value is None:
                    self.stats.bad_value += 1
                else:
                    self.bus.publish(f"{name}.{i}", value, now)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Bind and serve on the running loop; returns the bound (host, port)."""
        loop = asyncio.get_running_loop()
        # python-osc annotates loop as BaseEventLoop, yet only uses AbstractEventLoop's API.
        server = AsyncIOOSCUDPServer((self.bind, self.port), self.dispatcher, loop)  # type: ignore[arg-type]
        try:
            transport, _ = await server.create_serve_endpoint()
        except OSError as exc:
            raise LivernnError(f"OSC: cannot listen on {self.bind}:{self.port} ({exc.strerror or exc})") from None
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        host, port = transport.get_extra_info("sockname")[:2]
        self.port = port
        return host, port

    def start_thread(self) -> tuple[str, int]:
        """Bind now (a taken port is a LivernnError here, not later) and serve from a
        daemon thread; returns the bound (host, port). ``close`` stops the thread."""
        try:
            family = socket.getaddrinfo(self.bind, self.port, type=socket.SOCK_DGRAM)[0][0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise LivernnError(f"OSC: cannot listen on {self.where} ({reason})") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((self.bind, self.port))
        except OSError as exc:
            sock.close()
            raise LivernnError(f"OSC: cannot listen on {self.where} ({exc.strerror or exc})") from None
        # recvfrom wakes at least this often to notice close(): a UDP socket closed from
        # another thread does not reliably wake a blocked recvfrom on Linux.
        sock.settimeout(0.1)
        host, port = sock.getsockname()[:2]
        self.port, self._sock = port, sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), name=f"osc-in-{port}", daemon=True)
        self._thread.start()
        return host, port

    def _serve(self, sock: socket.socket) -> None:
        while self._sock is sock:
            try:
                data, address = sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # closed under us
            try:
                self.dispatcher.call_handlers_for_packet(data, address)
            except Exception as exc:  # the dispatcher catches per packet; this is the last net
                self.stats.handler_errors += 1
                self.warn(f"OSC packet from {address[0]}: {type(exc).__name__}: {exc}"[:200])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        sock, thread = self._sock, self._thread
        self._sock, self._thread = None, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        if sock is not None:
            sock.close()

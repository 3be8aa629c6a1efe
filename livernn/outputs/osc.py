"""OSC out: timestamped bundles sent early, and a generic note output with templates.

Bundles carry the timetag of the event's *logical* time (``Clock.timetag``), so the peer
plays the note on time however late or early the UDP packet went out; ``latency`` is how
far ahead of that time the scheduler hands the event to us (0.2 s, as sclang does).

``OscOutput`` sends one message per note-on and per note-off from an address and an
argument template, so it can talk to whatever the other side expects (a Max
``udpreceive``, a sclang ``OSCdef``, TouchOSC): each template item is a field name
(``pitch``, ``velocity``, ``channel``, ``duration``, ``freq``, ``amp``, ``beat``); any other item
(number or string) is sent as it is.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.errors import LivernnError, kind_of
from livernn.outputs.base import Output, OutputKind

IMMEDIATELY = 1


def message(address: str, args: Sequence = ()) -> bytes:
    """One OSC message as bytes (ints as int32, floats as float32, str as string)."""
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def bundle(timetag: int, *messages: bytes) -> bytes:
    """An OSC bundle of encoded messages at a 64-bit NTP timetag."""
    parts = [b"#bundle\x00", struct.pack(">Q", timetag)]
    for m in messages:
        parts.append(struct.pack(">i", len(m)))
        parts.append(m)
    return b"".join(parts)


def parse_address(host: str, port: int | str) -> tuple[str, int]:
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise LivernnError(f"OSC port must be a number 1..65535, got {port!r}") from None
    if not 1 <= number <= 65535:
        raise LivernnError(f"OSC port must be a number 1..65535, got {port!r}")
    if not host:
        raise LivernnError("OSC host is empty")
    if not isinstance(host, str):  # osc(9000) for osc('127.0.0.1', 9000)
        raise LivernnError(f"OSC host must be a name or address like '127.0.0.1', got {kind_of(host)}")
    return host, number


class OscSender(Output):
    """An output that sends UDP datagrams to one host:port, in bundles ahead of time."""

    kind = "osc"

    def __init__(self, host: str, port: int, latency: float = 0.2) -> None:
        super().__init__()
        self.address = parse_address(host, port)
        if not 0.0 <= float(latency) <= 5.0:
            raise LivernnError(f"OSC latency must be in 0..5 s, got {latency!r}")
        self.latency = float(latency)
        try:  # a name nothing resolves would fail every send, silently, with a lookup each time
            socket.getaddrinfo(self.address[0], self.address[1], socket.AF_INET, socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise LivernnError(f"OSC host {self.address[0]!r} not found ({getattr(exc, 'strerror', None) or exc}); "
                               "give an IP address like 127.0.0.1 or a name this machine resolves") from None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send_at(self, t: float | None, *messages: bytes) -> None:
        """Send messages in one bundle timed at logical time ``t`` (None: immediately)."""
        tag = IMMEDIATELY if t is None or self.clock is None else self.clock.timetag(t)
        self.send_raw(bundle(tag, *messages))

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.address)
            self.sent += 1
        except OSError as exc:  # unreachable peer: count it, keep playing
            self.errors += 1
            self.last_error = str(exc)

    def describe(self) -> str:
        return f"{self.kind} {self.address[0]}:{self.address[1]} latency {self.latency:g} s"

    def close(self) -> None:
        self.sock.close()


class OscOutput(OscSender):
    """Notes as OSC messages from templates (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        address: str = "/livernn/note",
        args: Sequence = ("channel", "pitch", "velocity", "duration"),
        off_address: str | None = "/livernn/off",
        off_args: Sequence = ("channel", "pitch"),
        latency: float = 0.2,
    ) -> None:
        super().__init__(host, port, latency)
        for addr in (address, off_address):
            if addr is not None and not (isinstance(addr, str) and addr.startswith("/")):
                raise LivernnError(f"OSC address must start with '/', got {addr!r}")
        self.on_address, self.on_args = address, tuple(args)
        self.off_address, self.off_args = off_address, tuple(off_args)

    def _fill(self, template: tuple, channel: int, pitch: int, velocity: int,
              t: float, duration: float | None) -> list:
        values = {
            "pitch": pitch,
            "velocity": velocity,
            "channel": channel,
            "duration": float(duration or 0.0),
            "freq": 440.0 * 2.0 ** ((pitch - 69) / 12.0),
            "amp": velocity / 127.0,
            "beat": self.clock.beat(t) if self.clock else 0.0,
        }
        return [values[item] if isinstance(item, str) and item in values else item for item in template]

    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        args = self._fill(self.on_args, channel, pitch, velocity, t, duration)
        self.send_at(t, message(self.on_address, args))

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        if self.off_address is None:
            return
        self.send_at(t, message(self.off_address, self._fill(self.off_args, channel, pitch, 0, t, None)))


def host_port(kind: str, rest: str, default_port: int | None) -> tuple[str, int]:
    """``--out`` text after ``kind:`` (``HOST:PORT``, ``PORT``, ``HOST`` or nothing) -> address."""
    if rest.isdigit():
        host, port = "", rest
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    else:
        host, port = rest, ""
    if port:
        return parse_address(host or "127.0.0.1", port)
    if default_port is None:
        raise LivernnError(f"--out '{kind}:{rest}': {kind} needs HOST:PORT, e.g. {kind}:127.0.0.1:9001")
    return parse_address(host or "127.0.0.1", default_port)


def _build(name: str, options: dict, bpm: float) -> Output:
    options = {k: tuple(v) if k in ("args", "off_args") else v for k, v in options.items()}
    return OscOutput(**options)


KIND = OutputKind(
    "osc",
    {"host": str, "port": int, "address": str, "args": list, "off_address": str, "off_args": list,
     "latency": (int, float)},
    _build, ":HOST:PORT", lambda rest: OscOutput(*host_port("osc", rest, None)),
    lambda rest: host_port("osc", rest, None),
)

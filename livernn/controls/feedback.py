"""OSC feedback: parameter values sent back so a controller layout follows the show.

When the REPL, a scene or automation changes ``lead.temperature``, a TouchOSC fader bound
to it should move too. Voices swap in a new frozen params snapshot on every change, so a
cheap identity check per poll finds what changed. Each change is sent as
``/livernn/<voice>/<param> value``, and to every OSC control mapped onto that parameter
as the control's own value (the mapping inverted), except to a control the performer is
moving right now (that would fight the finger).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.controls.osc_in import PREFIX
from livernn.errors import LivernnError

HANDS_OFF_S = 0.5  # a control touched this recently gets no feedback


class _Inverse(Protocol):
    def inverse(self, y: float) -> float | None: ...


class Binding(Protocol):
    """What feedback reads of a binding (``livernn.controls.runtime.Binding`` is one): a
    protocol, so this module and the runtime that drives it do not import each other."""

    source: str
    voice: str
    param: str
    last_input_t: float

    @property
    def mapping(self) -> _Inverse: ...


class _Voice(Protocol):
    @property
    def params(self) -> Any: ...


def _osc_arg(value: Any) -> int | float | str:
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, int | float | str) else str(value)


class OscFeedback:
    """Send parameter changes to ``host:port`` at most every ``interval`` seconds."""

    def __init__(self, host: str, port: int, interval: float = 0.05) -> None:
        if not 0 < int(port) < 65536:
            raise LivernnError(f"osc feedback port must be 1..65535, got {port!r}")
        self.address = (host, int(port))
        self.interval = interval
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._seen: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._next = 0.0
        self.sent = 0

    def send(self, address: str, value: Any) -> None:
        builder = OscMessageBuilder(address)
        builder.add_arg(_osc_arg(value))
        try:
            self._sock.sendto(builder.build().dgram, self.address)
            self.sent += 1
        except OSError:
            pass  # nobody listening, or a full buffer: feedback is best effort

    def poll(self, voices: Mapping[str, _Voice], bindings: Iterable[Binding], now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.interval
        bindings = list(bindings)
        for name, voice in voices.items():
            params = voice.params
            seen = self._seen.get(name)
            if seen is not None and seen[0] is params:
                continue
            values = params.as_dict()
            old = seen[1] if seen is not None else {}
            self._seen[name] = (params, values)
            for param, value in values.items():
                if old.get(param, object()) == value:
                    continue
                self.send(f"/livernn/{name}/{param}", value)
                for b in bindings:
                    if b.voice == name and b.param == param and b.source.startswith(PREFIX):
                        self._to_control(b, value, now)
        for gone in set(self._seen) - set(voices):
            del self._seen[gone]

    def _to_control(self, binding: Binding, value: Any, now: float) -> None:
        address = binding.source[len(PREFIX):]
        if now - binding.last_input_t < HANDS_OFF_S or not address.startswith("/") or "*" in address:
            return
        if isinstance(value, bool | int | float):
            control = binding.mapping.inverse(float(value))
            if control is not None:
                self.send(address, control)

    def close(self) -> None:
        self._sock.close()

"""Hand features out: onto the ControlBus, and optionally over OSC (Max, TouchOSC, Wekinator).

Bus names are ``hand.<who>.<feature>`` where ``who`` is ``right``, ``left`` or ``any`` (the
hand that has been in view longest), plus ``hand.count``. When two hands claim the same side,
the one seen longest is published under that side. OSC addresses mirror the bus names
(``/hand/right/pinch``), with the 63 landmark coordinates as one message
(``/hand/right/landmarks``). Wekinator gets one flat float vector per frame on
``/wek/inputs``, always the same length (``WEKINATOR_INPUTS``), zeros for a missing hand.
"""

from __future__ import annotations

from pythonosc.udp_client import SimpleUDPClient

from livernn.controls.bus import ControlBus
from livernn.errors import LivernnError
from livernn.gesture.hands import HandFeatures

# bus/OSC feature name -> HandFeatures attribute
FEATURES = {"x": "x", "height": "y", "size": "size", "pinch": "pinch", "openness": "openness",
            "fingers": "fingers", "roll": "roll", "speed": "speed"}
WHO = ("right", "left", "any")
WEKINATOR_PORT = 6448
WEKINATOR_INPUTS = tuple(f"{side}.{name}" for side in ("right", "left") for name in ("present", *FEATURES))


def parse_address(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``, or ``HOST`` with a default port) as a UDP destination."""
    host, _, port = str(text).rpartition(":")
    if not host:  # no colon: a bare port, or a bare host when there is a default port
        host, port = ("127.0.0.1", port) if port.isdigit() or default_port is None else (port, str(default_port))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise LivernnError(f"OSC destination {text!r} must be HOST:PORT with a port 1..65535")
    return host, int(port)


def by_side(hands: list[HandFeatures]) -> dict[str, HandFeatures]:
    """The hand published as right, left and any: per side the one seen longest (lowest id)."""
    chosen: dict[str, HandFeatures] = {}
    for hand in sorted(hands, key=lambda h: h.id):
        chosen.setdefault(hand.side, hand)
        chosen.setdefault("any", hand)
    return chosen


def _client(host: str, port: int) -> SimpleUDPClient:
    try:
        return SimpleUDPClient(host, port)
    except OSError as exc:  # an unknown host name fails here, once, not on every frame
        raise LivernnError(f"OSC destination {host}:{port} cannot be reached ({exc.strerror or exc})") from None


class Publisher:
    """Writes each frame's hands to the bus and to OSC destinations."""

    def __init__(self, bus: ControlBus | None = None, osc: str | None = None,
                 wekinator: str | bool | None = None) -> None:
        self.bus = bus
        self.osc = _client(*parse_address(osc)) if osc else None
        wek = f"127.0.0.1:{WEKINATOR_PORT}" if wekinator is True else wekinator
        self.wekinator = _client(*parse_address(wek, WEKINATOR_PORT)) if wek else None
        self._present: set[str] = set()

    def _send(self, name: str, value: float | str) -> None:
        if self.bus is not None:
            self.bus.publish(name, value)
        if self.osc is not None:
            self.osc.send_message("/" + name.replace(".", "/"), value)

    def publish(self, hands: list[HandFeatures]) -> None:
        chosen = by_side(hands)
        for who in WHO:
            hand = chosen.get(who)
            if hand is None:
                if who in self._present:  # just left the picture: say so once
                    self._send(f"hand.{who}.present", 0.0)
                    self._send(f"hand.{who}.gesture", "none")
                continue
            for name, attr in FEATURES.items():
                self._send(f"hand.{who}.{name}", getattr(hand, attr))
            self._send(f"hand.{who}.gesture", hand.gesture)
            self._send(f"hand.{who}.present", 1.0)
            if self.osc is not None:
                self.osc.send_message(f"/hand/{who}/landmarks", [float(v) for v in hand.landmarks.ravel()])
        self._present = set(chosen)
        self._send("hand.count", float(len(hands)))
        if self.wekinator is not None:
            self.wekinator.send_message("/wek/inputs", wekinator_vector(chosen))


def wekinator_vector(chosen: dict[str, HandFeatures]) -> list[float]:
    """The flat input vector in ``WEKINATOR_INPUTS`` order."""
    vector: list[float] = []
    for side in ("right", "left"):
        hand = chosen.get(side)
        vector.append(1.0 if hand else 0.0)
        vector += [float(getattr(hand, attr)) if hand else 0.0 for attr in FEATURES.values()]
    return vector

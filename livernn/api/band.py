"""Playing with the band (``livernn.engine.band``): ``sync``, ``clock_out`` and ``offset``."""

from __future__ import annotations

from typing import Any

from livernn.api.core import session
from livernn.errors import LivernnError, unknown


def _output_name(out: Any) -> str:
    s = session()
    if isinstance(out, str):
        if out not in s.outputs:
            raise unknown("output", out, list(s.outputs))
        return out
    for name, o in s.outputs.items():
        if o is out:
            return name
    raise LivernnError(f"{out!r} is not one of the session's outputs ({', '.join(s.outputs) or 'none'})")


def sync(source: str = "internal", start_stop: bool = False) -> str:
    """Take the beat from ``"link"`` (Ableton Link), ``"midi:NAME"`` (MIDI clock in on port
    NAME) or ``"internal"``; switching while playing never jumps the beat."""
    return session().sync(source, start_stop)


def clock_out(out: Any, on: bool = True) -> None:
    """Send MIDI clock on a MIDI output: ``clock_out(midi("drums"))``; ``on=False`` stops it."""
    name = _output_name(out)
    if on:
        session().clock_out(name)
    else:
        session().stop_clock_out(name)


def offset(out: Any, ms: float | None = None) -> float:
    """Latency compensation: output ``out`` gets every event ``ms`` later (negative: earlier);
    with no ``ms``, read it."""
    name = _output_name(out)
    s = session()
    if ms is not None:
        s.set_offset(name, ms)
    return s.band.offsets_ms().get(name, 0.0)

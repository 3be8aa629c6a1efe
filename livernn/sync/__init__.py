"""Clock sources: where the beats are (internal, Ableton Link, MIDI clock in).

``livernn.engine.clock.Clock`` keeps one frozen anchor (time, beat, tempo) that the engine
reads; a source runs its own thread (Link: a poll every ``link.POLL`` s; MIDI clock: the
port's callback at every tick) and tells the clock where its beats are with
``clock.follow(t, beat, bpm, hard=False)``. The clock fixes a whole-bar offset when a
source is chosen and slews the rest, so switching never jumps the beat (see
``Clock.follow``). A source also answers ``set_tempo`` (Link sends it to the peers; MIDI
clock in refuses: the external clock leads), ``status()`` and ``stop()``.

``make_source(spec, ...)``: ``"internal"`` (None), ``"link"``, ``"midi:NAME"``. Sources
know the clock's interface only (``follow``, ``beat``, ``beats_per_bar``, ``bpm``); the
session owns them. The transport (MIDI Start/Stop/Continue, Link start/stop sync) reaches
the session through ``on_transport(playing: bool)``.
"""

from __future__ import annotations

from collections.abc import Callable

from livernn.errors import LivernnError

SOURCES = ("internal", "link", "midi:NAME")


def check_spec(spec: object) -> str:
    """A source spec as given by a user, checked: one of ``SOURCES``."""
    if not isinstance(spec, str) or not (spec in ("internal", "link") or
                                         (spec.startswith("midi:") and spec[5:].strip())):
        raise LivernnError(f"clock source must be one of {', '.join(SOURCES)}, got {spec!r}")
    return spec


def make_source(spec: str, bpm: float, beats_per_bar: int, report: Callable[[str], None],
                on_transport: Callable[[bool], None] | None = None, start_stop: bool = False):
    """The source object for ``spec`` (None for internal), not started yet."""
    spec = check_spec(spec)
    if spec == "internal":
        return None
    if spec == "link":
        from livernn.sync.link import LinkSource

        return LinkSource(bpm, beats_per_bar, report, on_transport, start_stop)
    from livernn.sync.midi_clock import MidiClockIn

    return MidiClockIn(spec[5:].strip(), report, on_transport)

"""One time base for the whole session: monotonic seconds, beats and bars.

Everything inside the engine is ``time.monotonic()`` seconds. The tempo map is one frozen
anchor (time, beat, bpm): a tempo change re-anchors at the current beat, so the beat
position is continuous and only the rate changes. OSC timetags are derived from the
*logical* event time through a monotonic->NTP offset measured once, when the clock is
made, never from ``time.time()`` at send: a late send still carries the right time.

Where beats are is the clock *source*'s business (``livernn.sync``): internal (this
clock's own anchor), Ableton Link or MIDI clock in. A source calls ``follow(t, beat, bpm)``
with its own beat position; the clock keeps an offset (a whole number of bars, fixed when
the source is chosen) so bars line up with the source's, and never jumps: a phase error is
closed by slewing the rate (at most +-50 %, proportional to the error) until it is under a
millisecond, then the anchor is the source's own. Only a transport event (``hard``: MIDI
Start/Continue/Song Position, the first lock after ``restart``) moves the beat forward, by
less than a bar, to the source's bar line. ``on_change`` listeners (MIDI clock out, the
session's tempo event) hear every new anchor.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from livernn.errors import LivernnError, shown

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
MIN_BPM, MAX_BPM = 1.0, 999.0


@dataclass(frozen=True, slots=True)
class _Anchor:
    time: float
    beat: float
    bpm: float  # the rate of beats from this anchor on (the tempo, or a slew toward a source's phase)
    tempo: float  # the tempo itself (what status() and "tempo N" show)


SNAP = 0.001  # seconds of phase error under which a source's anchor is taken as it is
SLEW_GAIN = 2.0  # rate correction per beat of phase error (closes an error in about half a beat)
SLEW_MAX = 0.5  # at most +-50 % of the tempo while slewing


def check_bpm(bpm: float) -> float:
    if isinstance(bpm, bool):  # tempo(True) is no tempo (float(True) is 1.0)
        raise LivernnError(f"tempo must be a number of BPM, got {bpm!r}")
    try:
        value = float(bpm)
    except (TypeError, ValueError):
        raise LivernnError(f"tempo must be a number of BPM, got {shown(bpm)}") from None
    except OverflowError:  # an int past float's range (10**400)
        raise LivernnError(f"tempo must be a finite BPM in {MIN_BPM:g}..{MAX_BPM:g}, "
                           "got an integer too big for a float") from None
    if not math.isfinite(value) or not MIN_BPM <= value <= MAX_BPM:
        raise LivernnError(f"tempo must be a finite BPM in {MIN_BPM:g}..{MAX_BPM:g}, got {bpm!r}")
    return value


class Clock:
    """Tempo, beats and bars over ``time.monotonic()``; timetags for OSC."""

    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4) -> None:
        if not isinstance(beats_per_bar, int) or not 1 <= beats_per_bar <= 32:
            raise LivernnError(f"beats_per_bar must be an integer in 1..32, got {beats_per_bar!r}")
        self.beats_per_bar = beats_per_bar
        bpm = check_bpm(bpm)
        self._anchor = _Anchor(time.monotonic(), 0.0, bpm, bpm)
        wall, mono = time.time(), time.monotonic()
        self._unix_offset = wall - mono  # measured once: monotonic -> Unix seconds
        self._listeners: tuple[Callable[[_Anchor], None], ...] = ()
        self._follow_lock = threading.Lock()  # follow()'s read-modify-write of the anchor
        self._offset: float | None = None  # engine beat - source beat (whole bars); None = not yet
        self._hard_next = True  # the first lock after restart() may move to the source's bar line
        self.sync_source = None  # a livernn.sync source object; None = internal

    @property
    def source(self) -> str:
        """Where beats come from: "internal", "link" or "midi:NAME"."""
        src = self.sync_source
        return "internal" if src is None else src.name

    @property
    def peers(self) -> int | None:
        """How many other Link peers share the tempo (None unless the source is Link)."""
        return getattr(self.sync_source, "peers", None)

    @property
    def anchor(self) -> _Anchor:
        return self._anchor

    def on_change(self, callback: Callable[[_Anchor], None]) -> Callable[[], None]:
        """Call ``callback(anchor)`` on every new anchor (any thread); returns unsubscribe."""
        self._listeners = (*self._listeners, callback)

        def off() -> None:
            self._listeners = tuple(c for c in self._listeners if c is not callback)

        return off

    def _set(self, anchor: _Anchor) -> None:
        self._anchor = anchor
        for callback in self._listeners:
            callback(anchor)

    def use_source(self, source, align: bool = False) -> None:
        """From now on ``source`` (None = internal) says where beats are; no jump: the first
        ``follow`` fixes the bar offset and slews the rest. ``align`` (before playing) lets
        the first follow move to the source's bar line instead."""
        self._offset = None
        self._hard_next = align
        self.sync_source = source

    def follow(self, t: float, beat: float, bpm: float, hard: bool = False) -> None:
        """The source's beat at monotonic ``t`` and its tempo (see the module docstring)."""
        bpm = check_bpm(bpm)
        with self._follow_lock:
            mine = self.beat(t)
            size = self.beats_per_bar
            if hard or self._hard_next:
                # Forward to the source's bar phase, by less than a bar: voices drop what the
                # skipped stretch held instead of waiting a bar in silence.
                self._offset = math.ceil((mine - beat) / size - 1e-9) * size
                self._hard_next = False
                self._set(_Anchor(t, beat + self._offset, bpm, bpm))
                return
            if self._offset is None:
                self._offset = round((mine - beat) / size) * size
            error = beat + self._offset - mine  # beats the source is ahead of us
            a = self._anchor
            if a.bpm == a.tempo == bpm and abs(error) * 60.0 / bpm <= SNAP / 10:
                return  # already there: keep the anchor (and the clock-out stream) as it is
            if abs(error) * 60.0 / bpm <= SNAP:
                self._set(_Anchor(t, beat + self._offset, bpm, bpm))
            else:
                factor = 1.0 + max(-SLEW_MAX, min(SLEW_MAX, SLEW_GAIN * error))
                self._set(_Anchor(t, mine, bpm * factor, bpm))

    @staticmethod
    def now() -> float:
        return time.monotonic()

    @property
    def bpm(self) -> float:
        return self._anchor.tempo

    def restart(self, t: float | None = None) -> None:
        """Put beat 0 at ``t`` (default now), keeping the tempo."""
        a = self._anchor
        self._hard_next = True
        self._set(_Anchor(self.now() if t is None else t, 0.0, a.tempo, a.tempo))

    def set_tempo(self, bpm: float, t: float | None = None) -> None:
        """Change tempo at ``t`` (default now) keeping the beat position continuous. With a
        source, the source is asked (Link sends it to the peers; MIDI clock in refuses)."""
        bpm = check_bpm(bpm)
        source = self.sync_source
        if source is not None:
            source.set_tempo(bpm)
            return
        t = self.now() if t is None else t
        self._set(_Anchor(t, self.beat(t), bpm, bpm))

    def beat(self, t: float | None = None) -> float:
        a = self._anchor
        return a.beat + ((self.now() if t is None else t) - a.time) * a.bpm / 60.0

    def bar(self, t: float | None = None) -> float:
        return self.beat(t) / self.beats_per_bar

    def time_of(self, beat: float) -> float:
        a = self._anchor
        return a.time + (beat - a.beat) * 60.0 / a.bpm

    def next_boundary(self, beat: float, unit: str) -> float:
        """The first whole beat (``unit="beat"``) or bar (``"bar"``) at or after ``beat``."""
        size = self.beats_per_bar if unit == "bar" else 1
        return math.ceil(beat / size - 1e-9) * size

    def unix_time(self, t: float) -> float:
        return t + self._unix_offset

    def timetag(self, t: float) -> int:
        """64-bit NTP timetag (32.32 fixed point) of monotonic time ``t``."""
        ntp = self.unix_time(t) + NTP_EPOCH_OFFSET
        seconds = int(ntp)
        return (seconds << 32) | int((ntp - seconds) * 4294967296.0)

    def monotonic_of_timetag(self, tag: int) -> float:
        """Inverse of ``timetag`` (for measuring what a peer received)."""
        return (tag >> 32) + (tag & 0xFFFFFFFF) / 4294967296.0 - NTP_EPOCH_OFFSET - self._unix_offset

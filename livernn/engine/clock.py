"""One time base for the whole session: monotonic seconds, beats and bars.

Everything inside the engine is ``time.monotonic()`` seconds. The tempo map is one frozen
anchor (time, beat, bpm): a tempo change re-anchors at the current beat, so the beat
position is continuous and only the rate changes. OSC timetags are derived from the
*logical* event time through a monotonic->NTP offset measured once, when the clock is
made, never from ``time.time()`` at send: a late send still carries the right time.

``LinkClock`` follows an Ableton Link session instead (optional extra ``link``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from livernn.errors import LivernnError

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
MIN_BPM, MAX_BPM = 1.0, 999.0


@dataclass(frozen=True, slots=True)
class _Anchor:
    time: float
    beat: float
    bpm: float


def check_bpm(bpm: float) -> float:
    try:
        value = float(bpm)
    except (TypeError, ValueError):
        raise LivernnError(f"tempo must be a number of BPM, got {bpm!r}") from None
    if not math.isfinite(value) or not MIN_BPM <= value <= MAX_BPM:
        raise LivernnError(f"tempo must be a finite BPM in {MIN_BPM:g}..{MAX_BPM:g}, got {bpm!r}")
    return value


class Clock:
    """Tempo, beats and bars over ``time.monotonic()``; timetags for OSC."""

    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4) -> None:
        if not isinstance(beats_per_bar, int) or not 1 <= beats_per_bar <= 32:
            raise LivernnError(f"beats_per_bar must be an integer in 1..32, got {beats_per_bar!r}")
        self.beats_per_bar = beats_per_bar
        self._anchor = _Anchor(time.monotonic(), 0.0, check_bpm(bpm))
        wall, mono = time.time(), time.monotonic()
        self._unix_offset = wall - mono  # measured once: monotonic -> Unix seconds

    @staticmethod
    def now() -> float:
        return time.monotonic()

    @property
    def bpm(self) -> float:
        return self._anchor.bpm

    def restart(self, t: float | None = None) -> None:
        """Put beat 0 at ``t`` (default now), keeping the tempo."""
        self._anchor = _Anchor(self.now() if t is None else t, 0.0, self._anchor.bpm)

    def set_tempo(self, bpm: float, t: float | None = None) -> None:
        """Change tempo at ``t`` (default now) keeping the beat position continuous."""
        bpm = check_bpm(bpm)
        t = self.now() if t is None else t
        self._anchor = _Anchor(t, self.beat(t), bpm)

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


class LinkClock(Clock):
    """A clock that follows an Ableton Link session's tempo and beat (needs ``aalink``).

    Link keeps its own beat timeline; this clock re-anchors to it whenever ``sync()`` is
    called (the session does so a few times a second), so the engine keeps reading one
    frozen anchor on its hot path and tempo changes by other peers arrive within ~0.25 s.
    """

    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4) -> None:
        try:
            import aalink
        except ImportError:
            raise LivernnError(
                "Ableton Link needs the optional extra 'link': pip install 'livernn[link]'"
            ) from None
        super().__init__(bpm, beats_per_bar)
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._link = aalink.Link(self.bpm, self._loop)
        self._link.quantum = beats_per_bar
        self._link.enabled = True

    def sync(self) -> None:
        """Re-anchor on Link's current beat and tempo."""
        self._anchor = _Anchor(self.now(), float(self._link.beat), check_bpm(self._link.tempo))

    def set_tempo(self, bpm: float, t: float | None = None) -> None:
        self._link.tempo = check_bpm(bpm)
        super().set_tempo(bpm, t)

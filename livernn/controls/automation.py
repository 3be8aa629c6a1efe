"""Automation: LFOs and ramps that write to the control bus like any other source.

Automation is a function of musical time (beats, from the session clock) or of seconds,
so a patch can script a sweep ("temperature from 0.6 to 1.4 over 32 beats") or a slow
wobble synced to the tempo. The runtime samples each one on its tick and publishes the
value; mappings and triggers downstream cannot tell it from a fader.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from livernn.controls.mapping import interpolate
from livernn.errors import LivernnError

SHAPES = ("sine", "tri", "saw", "square", "random")


@dataclass
class Lfo:
    """A periodic source: ``beats`` (period in beats, tempo-synced) or ``hz`` (free-running)."""

    name: str
    shape: str = "sine"
    beats: float = 0.0
    hz: float = 0.0
    lo: float = 0.0
    hi: float = 1.0
    phase: float = 0.0  # 0..1, where in the cycle beat 0 falls
    seed: int = 0
    _held: tuple[int, float] = field(default=(-1, 0.0), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise LivernnError(f"lfo {self.name}: shape {self.shape!r} is not one of {', '.join(SHAPES)}")
        if (self.beats > 0) == (self.hz > 0) or not math.isfinite(self.beats + self.hz):
            raise LivernnError(f"lfo {self.name}: give exactly one of beats > 0 or hz > 0")
        if not math.isfinite(self.lo + self.hi):
            raise LivernnError(f"lfo {self.name}: lo and hi must be finite")

    def value(self, beat: float, seconds: float) -> float:
        cycles = (beat / self.beats if self.beats > 0 else seconds * self.hz) + self.phase
        u = cycles - math.floor(cycles)
        if self.shape == "sine":
            w = 0.5 - 0.5 * math.cos(2 * math.pi * u)  # starts at lo, like the others
        elif self.shape == "tri":
            w = 2 * u if u < 0.5 else 2 - 2 * u
        elif self.shape == "saw":
            w = u
        elif self.shape == "square":
            w = 0.0 if u < 0.5 else 1.0
        else:  # random: sample and hold, one new value per cycle, reproducible from the seed
            n = math.floor(cycles)
            if self._held[0] != n:
                self._held = (n, random.Random(self.seed * 1_000_003 + n).random())
            w = self._held[1]
        return self.lo + w * (self.hi - self.lo)


@dataclass
class Ramp:
    """Breakpoints in beats: ``points = [(beat, value), ...]``, held at both ends.

    ``loop`` (beats) repeats the shape; ``step = True`` jumps instead of sliding, which makes
    a ramp a cue list ("at beat 32 become 1").
    """

    name: str
    points: Sequence[tuple[float, float]]
    loop: float = 0.0
    step: bool = False

    def __post_init__(self) -> None:
        pts = sorted((float(b), float(v)) for b, v in self.points)
        if not pts or not all(math.isfinite(b) and math.isfinite(v) for b, v in pts):
            raise LivernnError(f"ramp {self.name}: points must be [beat, value] pairs of finite numbers")
        if not (math.isfinite(self.loop) and self.loop >= 0):
            raise LivernnError(f"ramp {self.name}: loop must be a number of beats >= 0")
        self._beats = [b for b, _ in pts]
        self._values = [v for _, v in pts]

    def value(self, beat: float, seconds: float = 0.0) -> float:
        if self.loop > 0:
            beat = beat % self.loop
        beats, values = self._beats, self._values
        if beat <= beats[0]:
            return values[0]
        if beat >= beats[-1]:
            return values[-1]
        if self.step:
            return values[max(i for i, b in enumerate(beats) if b <= beat)]
        return interpolate(beat, beats, values)


Automation = Lfo | Ramp

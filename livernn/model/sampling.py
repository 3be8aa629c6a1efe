"""Sampler parameters: what a performer turns, read by the model at sampling time.

``SamplerParams`` is frozen: a voice swaps in a new object when a control moves, and the
generator reads whichever object it was handed, so no lock is needed on the hot path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from livernn.errors import LivernnError

# Named scales as pitch classes relative to the root.
SCALES: dict[str, tuple[int, ...]] = {
    "chromatic": tuple(range(12)),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
}


@dataclass(frozen=True, slots=True)
class SamplerParams:
    """Parameters the generator applies when it samples one note.

    ``pitch_min``/``pitch_max``/``scale``/``root`` constrain the *output* pitch, i.e. after
    ``transpose``; the model's own state always sees untransposed pitches.
    """

    temperature: float = 1.0  # pitch temperature (0.05 .. 5)
    top_p: float = 1.0  # nucleus sampling over pitch (0.01 .. 1)
    timing_temperature: float = 1.0  # temperature for step and duration (0.05 .. 5)
    pitch_min: int = 0
    pitch_max: int = 127
    transpose: int = 0  # semitones (-48 .. 48)
    scale: str = "chromatic"  # a key of SCALES
    root: int = 0  # pitch class of the scale's root (0 = C)

    def allowed_pitch_classes(self) -> tuple[int, ...]:
        return tuple(sorted((self.root + pc) % 12 for pc in SCALES[self.scale]))

    def validated(self) -> SamplerParams:
        """Return self if every value is finite and in range, else raise LivernnError."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise LivernnError(f"{f.name} must be a finite number, got {value!r}")
        checks = [
            (0.05 <= self.temperature <= 5.0, "temperature must be in 0.05..5"),
            (0.01 <= self.top_p <= 1.0, "top_p must be in 0.01..1"),
            (0.05 <= self.timing_temperature <= 5.0, "timing_temperature must be in 0.05..5"),
            (0 <= self.pitch_min <= self.pitch_max <= 127, "need 0 <= pitch_min <= pitch_max <= 127"),
            (-48 <= self.transpose <= 48, "transpose must be in -48..48"),
            (self.scale in SCALES, f"scale must be one of {', '.join(SCALES)}"),
            (0 <= self.root <= 11, "root must be a pitch class 0..11"),
        ]
        for ok, message in checks:
            if not ok:
                raise LivernnError(message)
        return self

    def with_(self, **changes) -> SamplerParams:
        """A validated copy with some values changed."""
        return replace(self, **changes).validated()

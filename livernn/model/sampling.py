"""Sampler parameters: what a performer turns, read by the model at sampling time.

This module is the one source of truth for every parameter the model reads: its range,
default and meaning (``SAMPLER_SPECS``, which ``livernn.engine.params`` extends with the
engine's own), and the one place scales become pitch classes and allowed pitches (the
generator's mask and the voice's re-constraint of a note in hand both ask here).

``SamplerParams`` is frozen: a voice swaps in a new object when a control moves, and the
generator reads whichever object it was handed, so no lock is needed on the hot path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from livernn.errors import LivernnError, nearest, shown

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
class ParamSpec:
    """One parameter: its kind, range (numbers) or choices, default and a one-line doc."""

    name: str
    kind: str  # "float" | "int" | "bool" | "choice"
    min: float | None = None
    max: float | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    doc: str = ""

    def coerce(self, value: Any, clamp: bool = False) -> Any:
        """Return ``value`` as this parameter's type, or raise LivernnError saying why."""
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            guess = nearest(value, self.choices) if isinstance(value, str) else None  # 'dorain'
            raise LivernnError(f"{self.name} must be one of {', '.join(self.choices)}, got {shown(value)}"
                               + (f"; did you mean {guess!r}?" if guess else ""))
        if isinstance(value, str):
            raise LivernnError(f"{self.name} must be a number, got {shown(value)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LivernnError(f"{self.name} must be a number, got {shown(value)}") from None
        except OverflowError:  # an int past float's range (10**400): as out of range as inf
            raise LivernnError(f"{self.name} must be a finite number, got an integer too big for a float") from None
        if not math.isfinite(number):
            raise LivernnError(f"{self.name} must be a finite number, got {value!r}")
        if self.kind == "bool":
            return number >= 0.5
        assert self.min is not None and self.max is not None  # every numeric spec has a range
        if not self.min <= number <= self.max:
            if not clamp:
                raise LivernnError(f"{self.name} must be in {self.min:g}..{self.max:g}, got {number:g}")
            number = min(max(number, self.min), self.max)
        return round(number) if self.kind == "int" else number


SAMPLER_SPECS: dict[str, ParamSpec] = {s.name: s for s in (
    ParamSpec("temperature", "float", 0.05, 5.0, 1.0, doc="pitch randomness: <1 safer, >1 wilder"),
    ParamSpec("top_p", "float", 0.01, 1.0, 1.0, doc="nucleus sampling over pitch: keep this much mass"),
    ParamSpec("timing_temperature", "float", 0.05, 5.0, 1.0, doc="randomness of steps and durations"),
    ParamSpec("pitch_min", "int", 0, 127, 0, doc="lowest output pitch"),
    ParamSpec("pitch_max", "int", 0, 127, 127, doc="highest output pitch"),
    ParamSpec("transpose", "int", -48, 48, 0, doc="semitones added to the model's pitch"),
    ParamSpec("scale", "choice", default="chromatic", choices=tuple(SCALES), doc="allowed pitch classes"),
    ParamSpec("root", "int", 0, 11, 0, doc="pitch class of the scale's root (0 = C)"),
)}
_D = {name: spec.default for name, spec in SAMPLER_SPECS.items()}


@lru_cache(maxsize=256)
def pitch_classes(scale: str, root: int) -> frozenset[int]:
    """The pitch classes (0..11) of ``scale`` on ``root``."""
    return frozenset((root + pc) % 12 for pc in SCALES[scale])


@lru_cache(maxsize=1024)
def allowed_pitches(pitch_min: int, pitch_max: int, scale: str, root: int,
                    pitches: tuple[int, ...] = ()) -> tuple[int, ...]:
    """Output pitches inside the range and the scale (and among ``pitches`` when given: a
    listening policy's companions or chord tones); the whole range if the scale leaves
    none there (a narrow range between two scale notes still plays, rather than nothing),
    the range and scale alone if ``pitches`` leaves none."""
    classes = pitch_classes(scale, root)
    every = range(pitch_min, pitch_max + 1)
    in_scale = tuple(p for p in every if p % 12 in classes) or tuple(every)
    if pitches:
        chosen = set(pitches)
        return tuple(p for p in in_scale if p in chosen) or in_scale
    return in_scale


@dataclass(frozen=True, slots=True)
class SamplerParams:
    """Parameters the generator applies when it samples one note (see SAMPLER_SPECS).

    ``pitch_min``/``pitch_max``/``scale``/``root`` constrain the *output* pitch, i.e. after
    ``transpose``; the model's own state always sees untransposed pitches.
    """

    temperature: float = _D["temperature"]
    top_p: float = _D["top_p"]
    timing_temperature: float = _D["timing_temperature"]
    pitch_min: int = _D["pitch_min"]
    pitch_max: int = _D["pitch_max"]
    transpose: int = _D["transpose"]
    scale: str = _D["scale"]
    root: int = _D["root"]
    # Output pitches a listening policy allows now (sorted; empty = no such constraint):
    # the companions of a player's note (follow), the held chord's tones (accompany).
    # Set by livernn.engine.listen, not a performer's parameter.
    pitches: tuple[int, ...] = ()

    def validated(self) -> SamplerParams:
        """Return self if every value is finite and in range, else raise LivernnError
        (the same checks and messages as a voice's parameters at the door)."""
        for name, spec in SAMPLER_SPECS.items():
            spec.coerce(getattr(self, name))
        if self.pitch_min > self.pitch_max:
            raise LivernnError(f"need pitch_min <= pitch_max, got {self.pitch_min} > {self.pitch_max}")
        if not all(isinstance(p, int) and 0 <= p <= 127 for p in self.pitches):
            raise LivernnError(f"pitches must be MIDI pitches 0..127, got {self.pitches!r}")
        return self

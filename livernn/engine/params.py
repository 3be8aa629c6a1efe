"""What a performer can turn on a voice: the parameter table and the frozen snapshot.

``VoiceParams`` is frozen. A control change builds a new snapshot and the voice swaps it
in with one attribute assignment, which is atomic under the GIL: the generation thread
reads whichever snapshot it finds, whole, and never takes a lock. Every value is checked
here, at the door (non-finite refused, out of range refused or clamped), so nothing
unchecked ever reaches the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from livernn.errors import LivernnError
from livernn.model.sampling import SCALES, SamplerParams


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
            raise LivernnError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if isinstance(value, str):
            raise LivernnError(f"{self.name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LivernnError(f"{self.name} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise LivernnError(f"{self.name} must be a finite number, got {value!r}")
        if self.kind == "bool":
            return number >= 0.5
        if not self.min <= number <= self.max:
            if not clamp:
                raise LivernnError(f"{self.name} must be in {self.min:g}..{self.max:g}, got {number:g}")
            number = min(max(number, self.min), self.max)
        return int(round(number)) if self.kind == "int" else number


def _specs(*specs: ParamSpec) -> dict[str, ParamSpec]:
    return {s.name: s for s in specs}


PARAM_SPECS: dict[str, ParamSpec] = _specs(
    ParamSpec("temperature", "float", 0.05, 5.0, 1.0, doc="pitch randomness: <1 safer, >1 wilder"),
    ParamSpec("top_p", "float", 0.01, 1.0, 1.0, doc="nucleus sampling over pitch: keep this much mass"),
    ParamSpec("timing_temperature", "float", 0.05, 5.0, 1.0, doc="randomness of steps and durations"),
    ParamSpec("velocity_scale", "float", 0.0, 4.0, 1.0, doc="multiplies the model's velocity"),
    ParamSpec("velocity_offset", "int", -127, 127, 0, doc="added to the velocity after scaling"),
    ParamSpec("pitch_min", "int", 0, 127, 0, doc="lowest output pitch"),
    ParamSpec("pitch_max", "int", 0, 127, 127, doc="highest output pitch"),
    ParamSpec("transpose", "int", -48, 48, 0, doc="semitones added to the model's pitch"),
    ParamSpec("scale", "choice", default="chromatic", choices=tuple(SCALES), doc="allowed pitch classes"),
    ParamSpec("root", "int", 0, 11, 0, doc="pitch class of the scale's root (0 = C)"),
    ParamSpec("density", "float", 0.125, 8.0, 1.0, doc="time scale: 2 = twice as many notes per beat"),
    ParamSpec("quantize", "float", 0.0, 4.0, 0.0, doc="onset grid in beats (0 = off)"),
    ParamSpec("swing", "float", 0.0, 0.75, 0.0, doc="delay of every second grid step, in grid steps"),
    ParamSpec("max_polyphony", "int", 1, 64, 16, doc="most notes sounding at once; the oldest is cut"),
    ParamSpec("max_length", "float", 0.0, 64.0, 8.0, doc="note-length cap in beats (0 = no cap)"),
    ParamSpec("mute", "bool", default=False, doc="keep generating, play nothing"),
)


@dataclass(frozen=True, slots=True)
class VoiceParams:
    """One consistent snapshot of a voice's parameters (see PARAM_SPECS for meaning)."""

    temperature: float = 1.0
    top_p: float = 1.0
    timing_temperature: float = 1.0
    velocity_scale: float = 1.0
    velocity_offset: int = 0
    pitch_min: int = 0
    pitch_max: int = 127
    transpose: int = 0
    scale: str = "chromatic"
    root: int = 0
    density: float = 1.0
    quantize: float = 0.0
    swing: float = 0.0
    max_polyphony: int = 16
    max_length: float = 8.0
    mute: bool = False

    def with_(self, clamp: bool = False, **changes: Any) -> VoiceParams:
        """A checked copy with some values changed; the original is untouched."""
        clean = {}
        for name, value in changes.items():
            spec = PARAM_SPECS.get(name)
            if spec is None:
                raise LivernnError(f"unknown voice parameter {name!r}; known: {', '.join(PARAM_SPECS)}")
            clean[name] = spec.coerce(value, clamp)
        new = replace(self, **clean)
        if new.pitch_min > new.pitch_max:
            if not clamp:
                raise LivernnError(
                    f"need pitch_min <= pitch_max, got {new.pitch_min} > {new.pitch_max}"
                )
            if "pitch_min" in clean:
                new = replace(new, pitch_min=new.pitch_max)
            else:
                new = replace(new, pitch_max=new.pitch_min)
        return new

    def sampler(self) -> SamplerParams:
        """The part of the snapshot the model reads when it samples."""
        return SamplerParams(
            temperature=self.temperature,
            top_p=self.top_p,
            timing_temperature=self.timing_temperature,
            pitch_min=self.pitch_min,
            pitch_max=self.pitch_max,
            transpose=self.transpose,
            scale=self.scale,
            root=self.root,
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


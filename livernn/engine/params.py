"""What a performer can turn on a voice: the parameter table and the frozen snapshot.

``VoiceParams`` is frozen. A control change builds a new snapshot and the voice swaps it
in with one attribute assignment, which is atomic under the GIL: the generation thread
reads whichever snapshot it finds, whole, and never takes a lock. Every value is checked
here, at the door (non-finite refused, out of range refused or clamped), so nothing
unchecked ever reaches the model.

Ranges, defaults and docs live in one table, ``PARAM_SPECS``: the model's own parameters
come from ``livernn.model.sampling.SAMPLER_SPECS`` (the model checks the same ranges), the
engine's are added here, and ``VoiceParams``' defaults are read from the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from livernn.errors import LivernnError, unknown
from livernn.model.sampling import SAMPLER_SPECS, ParamSpec, SamplerParams

__all__ = ["PARAM_SPECS", "ParamSpec", "VoiceParams"]

_S = SAMPLER_SPECS
PARAM_SPECS: dict[str, ParamSpec] = {s.name: s for s in (
    _S["temperature"],
    _S["top_p"],
    _S["timing_temperature"],
    ParamSpec("velocity_scale", "float", 0.0, 4.0, 1.0, doc="multiplies the model's velocity"),
    ParamSpec("velocity_offset", "int", -127, 127, 0, doc="added to the velocity after scaling"),
    _S["pitch_min"],
    _S["pitch_max"],
    _S["transpose"],
    _S["scale"],
    _S["root"],
    ParamSpec("density", "float", 0.125, 8.0, 1.0, doc="time scale: 2 = twice as many notes per beat"),
    ParamSpec("quantize", "float", 0.0, 4.0, 0.0, doc="onset grid in beats (0 = off)"),
    ParamSpec("swing", "float", 0.0, 0.75, 0.0, doc="delay of every second grid step, in grid steps"),
    ParamSpec("max_polyphony", "int", 1, 64, 16, doc="most notes sounding at once; the oldest is cut"),
    ParamSpec("max_length", "float", 0.0, 64.0, 8.0, doc="note-length cap in beats (0 = no cap)"),
    ParamSpec("mute", "bool", default=False, doc="keep generating, play nothing"),
)}
_D = {name: spec.default for name, spec in PARAM_SPECS.items()}


@dataclass(frozen=True, slots=True)
class VoiceParams:
    """One consistent snapshot of a voice's parameters (see PARAM_SPECS for meaning)."""

    temperature: float = _D["temperature"]
    top_p: float = _D["top_p"]
    timing_temperature: float = _D["timing_temperature"]
    velocity_scale: float = _D["velocity_scale"]
    velocity_offset: int = _D["velocity_offset"]
    pitch_min: int = _D["pitch_min"]
    pitch_max: int = _D["pitch_max"]
    transpose: int = _D["transpose"]
    scale: str = _D["scale"]
    root: int = _D["root"]
    density: float = _D["density"]
    quantize: float = _D["quantize"]
    swing: float = _D["swing"]
    max_polyphony: int = _D["max_polyphony"]
    max_length: float = _D["max_length"]
    mute: bool = _D["mute"]
    # The model's view of this snapshot, built once: the generator validates a
    # SamplerParams and builds its pitch mask only when it gets a *different object*, so
    # handing it the same one for every note of a snapshot keeps that work off the notes.
    _sampler: SamplerParams = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sampler", SamplerParams(**{n: getattr(self, n) for n in SAMPLER_SPECS}))

    def with_(self, clamp: bool = False, **changes: Any) -> VoiceParams:
        """A checked copy with some values changed; the original is untouched."""
        clean = {}
        for name, value in changes.items():
            spec = PARAM_SPECS.get(name)
            if spec is None:
                raise unknown("parameter", name, PARAM_SPECS)
            clean[name] = spec.coerce(value, clamp)
        if clean.get("pitch_min", self.pitch_min) > clean.get("pitch_max", self.pitch_max):
            lo, hi = clean.get("pitch_min", self.pitch_min), clean.get("pitch_max", self.pitch_max)
            if not clamp:
                raise LivernnError(f"need pitch_min <= pitch_max, got {lo} > {hi}")
            if "pitch_min" in clean:
                clean["pitch_min"] = hi
            else:
                clean["pitch_max"] = lo
        return replace(self, **clean)

    def sampler(self) -> SamplerParams:
        """The part of the snapshot the model reads when it samples (the same object for
        the snapshot's whole life)."""
        return self._sampler

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PARAM_SPECS}


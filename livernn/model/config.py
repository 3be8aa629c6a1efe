"""The model's configuration and its note representation, in one small dataclass.

Everything needed to rebuild a model from its weights lives here and in config.json:
the architecture (layers, hidden, embedding), the heads (categorical or the original
regression heads) and the representation (time bins, velocity bins, reference tempo).

Representation, and why:

- pitch: 128-way softmax; the input is a learned embedding (or, with ``embed = 0``, the
  original's single ``pitch / 127`` number).
- step: a dedicated *zero* bin (chord notes: step 0 is the most common value in polyphonic
  music, and a density on seconds can't put mass on a point) plus ``time_bins``
  log-spaced bins from ``time_min`` to ``time_max`` seconds; a sampled bin is turned into
  seconds log-uniformly inside it. Categorical bins make rhythm multi-modal (a quarter OR
  an eighth, never the mean of the two), give it a temperature of its own, and an NLL.
- duration: the same log-spaced bins, without the zero bin.
- velocity: ``vel_bins`` equal-width bins over 0..127.
- a step or duration enters the network as ``log1p(seconds / 0.01) / 6`` (~0..1.1 for
  0..8 s): ``net.time_feature_t`` when training, ``generator._feature`` when playing; the
  two must agree.
- ``pitch_given_step``: the pitch head also sees the sampled step bin, so "is the next
  note part of this chord?" is decided first and the pitch follows from it. The factorised
  joint likelihood is then p(step) p(pitch | step) p(duration) p(velocity).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from livernn.errors import LivernnError

N_PITCHES = 128
N_FEATURES = 4  # step, duration, velocity, chord flag: appended to the pitch input

# Upper limits that bound what a (possibly hostile) config.json can make us allocate.
LIMITS = {"hidden": 4096, "layers": 8, "embed": 1024, "time_bins": 1024, "vel_bins": 128}


@dataclass
class ModelConfig:
    hidden: int = 256
    layers: int = 2
    embed: int = 64  # 0 = pitch enters as one number (the original's input)
    dropout: float = 0.2
    heads: str = "categorical"  # or "regression": the original MSE step/duration heads
    pitch_given_step: bool = True
    time_bins: int = 96
    time_min: float = 0.02  # seconds; shorter non-zero steps go to the first bin
    time_max: float = 8.0
    chord_eps: float = 0.01  # steps below this many seconds are "same chord" (bin 0)
    vel_bins: int = 32
    ref_bpm: float = 120.0

    def validated(self) -> ModelConfig:
        """Return self if every field is sane and within LIMITS, else raise LivernnError."""
        for name, top in LIMITS.items():
            value = getattr(self, name)
            low = 0 if name == "embed" else 1
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= top:
                raise LivernnError(f"model config {name} must be an integer in {low}..{top}, got {value!r}")
        if self.heads not in ("categorical", "regression"):
            raise LivernnError(f"model config heads must be 'categorical' or 'regression', got {self.heads!r}")
        floats = ("dropout", "time_min", "time_max", "chord_eps", "ref_bpm")
        for name in floats:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise LivernnError(f"model config {name} must be a finite number, got {value!r}")
        if not (0 <= self.dropout < 1 and 0 < self.chord_eps <= self.time_min < self.time_max
                and 1 <= self.ref_bpm <= 400):
            raise LivernnError("model config needs 0 <= dropout < 1, 0 < chord_eps <= time_min < time_max, ref_bpm in 1..400")
        return self

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise LivernnError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**data).validated()

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def categorical(self) -> bool:
        return self.heads == "categorical"

    @property
    def n_step(self) -> int:
        """Step classes: the zero (chord) bin plus the time bins."""
        return self.time_bins + 1 if self.categorical else 1

    @property
    def n_dur(self) -> int:
        return self.time_bins if self.categorical else 1

    @property
    def input_size(self) -> int:
        return (self.embed or 1) + N_FEATURES

    def time_edges(self) -> np.ndarray:
        """Bin edges in seconds (time_bins + 1 values, log-spaced)."""
        return np.geomspace(self.time_min, self.time_max, self.time_bins + 1)

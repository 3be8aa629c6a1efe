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
- how the previous note's step and duration enter the network (``time_embed``):
  ``time_embed = N > 0`` (new models): their *bins* (the heads' own classes) as learned
  N-dimensional embeddings, like pitch. ``time_embed = 0`` (model files from before the
  field existed, regression heads): ``log1p(seconds / 0.01) / 6`` (~0..1.1 for 0..8 s),
  ``net.time_feature_t`` when training, ``generator._feature`` when playing; the two must
  agree. The number was why the step head learned almost no rhythm (issue 14): an eighth
  and a dotted eighth differ by 0.05-0.1 next to 64 unit-variance pitch numbers, so the
  LSTM hardly told earlier durations apart; a class is as distinct as a pitch.
- ``step_values``/``dur_values``: the seconds the generator plays for a sampled bin, one
  per bin (the training data's median in that bin, see ``train.loop.bin_values``), stored
  when the training data is quantised, so sampled rhythm lands on the data's grid; a model
  trained before the fields existed gets them from its training split with ``livernn
  bin-values`` (``train.bins``; the shipped bach and folk did, ``meta.bin_values`` says from
  what). Empty (performed MIDI, and older models): a time log-uniform inside the bin, which
  keeps the expressive spread of played timing.
- ``pitch_given_step``: the pitch head also sees the sampled step bin, so "is the next
  note part of this chord?" is decided first and the pitch follows from it. The factorised
  joint likelihood is then p(step) p(pitch | step) p(duration) p(velocity).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from livernn.errors import LivernnError

N_PITCHES = 128
N_FEATURES = 4  # step, duration, velocity, chord flag: appended to the pitch input
# With embedded time bins the step and duration columns of the features carry bin indices
# (embedded by the network), and only velocity and the chord flag enter as numbers.
N_CONTINUOUS_EMBEDDED = 2

# Upper limits that bound what a (possibly hostile) config.json can make us allocate.
LIMITS = {"hidden": 4096, "layers": 8, "embed": 1024, "time_bins": 1024, "vel_bins": 128, "time_embed": 256}


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
    # The previous step and duration bins as learned embeddings of this size (0: as one
    # log-compressed number each, as model files without this key were trained; ignored,
    # i.e. 0, for regression heads, which have no bins). See the module docstring.
    time_embed: int = 16
    step_values: list[float] = field(default_factory=list)  # seconds per step bin (n_step) or empty
    dur_values: list[float] = field(default_factory=list)  # seconds per duration bin (n_dur) or empty

    def __post_init__(self) -> None:
        if self.heads == "regression":
            self.time_embed = 0  # no bins to embed: the regression heads read the number

    def validated(self) -> ModelConfig:
        """Return self if every field is sane and within LIMITS, else raise LivernnError."""
        for name, top in LIMITS.items():
            value = getattr(self, name)
            low = 0 if name in ("embed", "time_embed") else 1
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
            raise LivernnError("model config needs 0 <= dropout < 1, 0 < chord_eps <= time_min < time_max, "
                               "ref_bpm in 1..400")
        for name, n in (("step_values", self.n_step), ("dur_values", self.n_dur)):
            values = getattr(self, name)
            if not isinstance(values, list) or not (
                    values == [] or (self.categorical and len(values) == n and all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                        and 0 <= x <= 3600 for x in values))):
                raise LivernnError(f"model config {name} must be empty or {n} finite seconds in 0..3600")
            setattr(self, name, [float(x) for x in values])
        return self

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise LivernnError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        # A model file written before time_embed existed read its times as numbers.
        return cls(**{"time_embed": 0, **data}).validated()

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
    def n_continuous(self) -> int:
        """Features that enter the first layer as numbers (the rest are embedded)."""
        return N_CONTINUOUS_EMBEDDED if self.time_embed else N_FEATURES

    @property
    def input_size(self) -> int:
        return (self.embed or 1) + 2 * self.time_embed + self.n_continuous

    def time_edges(self) -> np.ndarray:
        """Bin edges in seconds (time_bins + 1 values, log-spaced)."""
        return np.geomspace(self.time_min, self.time_max, self.time_bins + 1)

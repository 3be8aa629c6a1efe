"""Training-time augmentation of note windows: transposition, tempo stretch, velocity jitter.

Applied per window on the fly (fresh every epoch), on for training and off for
evaluation. The tempo stretch is for performed MIDI: training turns it off by itself on
quantised data (``corpus_grid_share``), where it only blurs exact values across bins. Transposition is drawn inside the range that keeps every pitch of the window
within 0..127, so no note is ever clipped into a wrong pitch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Augment:
    transpose: int = 6  # semitones, drawn uniformly in [-transpose, transpose] (clipped to range)
    stretch: float = 0.1  # tempo factor drawn log-uniformly in [1/(1+s), 1+s]
    velocity_jitter: int = 0  # +- this much added to each velocity (0 = off)
    # Quantised training data (``corpus_grid_share`` >= QUANTIZED) is not stretched unless
    # this is true: a stretched 0.25 s lands anywhere in two or three of the log-spaced
    # bins, so the step head must learn a blur the data never has, and to undo it it would
    # have to read the window's tempo factor off its inputs to within a bin (6%).
    stretch_quantized: bool = False

    def __call__(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None):
        out = dict(batch)
        pitch, mask = batch["pitch"], batch["mask"]
        b = pitch.shape[0]
        if self.transpose:
            big = torch.where(mask, pitch, torch.full_like(pitch, -1)).amax(dim=1)
            small = torch.where(mask, pitch, torch.full_like(pitch, 128)).amin(dim=1)
            lo = torch.clamp(-small, min=-self.transpose)
            hi = torch.clamp(127 - big, max=self.transpose)
            u = torch.rand(b, generator=generator)
            shift = lo + torch.floor(u * (hi - lo + 1).float()).long().clamp_max(hi - lo)
            out["pitch"] = pitch + shift[:, None]
        if self.stretch:
            r = torch.log1p(torch.tensor(self.stretch))
            factor = torch.exp((torch.rand(b, generator=generator) * 2 - 1) * r)[:, None]
            out["step"] = batch["step"] * factor
            out["duration"] = batch["duration"] * factor
        if self.velocity_jitter:
            j = torch.randint(-self.velocity_jitter, self.velocity_jitter + 1, batch["velocity"].shape,
                              generator=generator)
            out["velocity"] = (batch["velocity"] + j).clamp(1, 127)
        return out


# -- is the data quantised? -------------------------------------------------------------

GRID_DIVISIONS = 12  # a grid step is 1/12 of a piece's commonest step: sixteenths, triplets, dots
GRID_TOLERANCE = 0.01  # of the commonest step


def _on_grid(steps, unit: float):
    import numpy as np

    x = steps / unit * GRID_DIVISIONS
    return np.abs(x - np.round(x)) <= GRID_TOLERANCE * GRID_DIVISIONS


def grid_share(notes, unit: float | None = None) -> tuple[float, int]:
    """Share of a piece's non-zero steps on its rhythmic grid, and how many steps were looked at.

    The grid is 1/12 of ``unit`` (default: the best of the piece's three commonest non-zero
    steps, to 1 ms), so it holds eighths, sixteenths, triplets and dotted values whatever the
    tempo; a step is on it when within 1% of the unit of a grid point. Quantised scores (music21's corpora, any
    notation export) score ~1; performed MIDI ~0.25 (the tolerance band's width).
    """
    import numpy as np

    steps = np.asarray(notes["step"], dtype=np.float64)
    steps = steps[steps >= 0.01]
    if len(steps) == 0:
        return 0.0, 0
    if unit is not None:
        return float(_on_grid(steps, unit).mean()), len(steps)
    values, counts = np.unique(np.round(steps, 3), return_counts=True)
    units = values[np.argsort(-counts, kind="stable")[:3]]  # a dotted commonest step misses triplets
    return max(float(_on_grid(steps, float(u)).mean()) for u in units), len(steps)


def corpus_grid_share(pieces) -> float:
    """Note-weighted ``grid_share`` over pieces (each piece on its own grid)."""
    total, n = 0.0, 0
    for p in pieces:
        share, k = grid_share(p)
        total += share * k
        n += k
    return total / n if n else 0.0


QUANTIZED = 0.9  # a corpus whose steps are this often on their grid is a quantised one

"""Training-time augmentation of note windows: transposition, tempo stretch, velocity jitter.

Applied per window on the fly (fresh every epoch), on for training and off for
evaluation. Transposition is drawn inside the range that keeps every pitch of the window
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

"""Pieces -> fixed-length training windows, gathered straight into torch tensors.

All pieces of a split are concatenated once; a window is a start index into that array,
so memory is one copy of the notes plus one integer per window, even for MAESTRO. A
piece shorter than a window gets one window padded by repeating its last note, with the
padding masked out of the loss.
"""

from __future__ import annotations

import numpy as np
import torch


class WindowSet:
    """Windows of ``seq_len + 1`` notes (inputs and their next-note targets)."""

    def __init__(self, pieces: list[np.ndarray], seq_len: int, stride: int | None = None):
        if not pieces:
            raise ValueError("no pieces to make windows from")
        self.seq_len, width = seq_len, seq_len + 1
        stride = stride or max(1, seq_len // 2)
        notes = np.concatenate(pieces)
        self.pitch = torch.from_numpy(notes["pitch"].astype(np.int64))
        self.step = torch.from_numpy(notes["step"].astype(np.float32))
        self.duration = torch.from_numpy(notes["duration"].astype(np.float32))
        self.velocity = torch.from_numpy(notes["velocity"].astype(np.int64))
        starts, lengths, offset = [], [], 0
        for piece in pieces:
            n = len(piece)
            if n >= width:
                s = list(range(0, n - width + 1, stride))
                if s[-1] != n - width:
                    s.append(n - width)
                starts += [offset + i for i in s]
                lengths += [width] * len(s)
            elif n >= 2:
                starts.append(offset)
                lengths.append(n)
            offset += n
        self.starts = torch.tensor(starts, dtype=torch.int64)
        self.lengths = torch.tensor(lengths, dtype=torch.int64)
        self.n_notes = int(sum(len(p) for p in pieces))

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather windows ``idx`` into (B, seq_len + 1) tensors plus a validity mask."""
        ar = torch.arange(self.seq_len + 1)
        lengths = self.lengths[idx]
        mask = ar[None, :] < lengths[:, None]
        gather = self.starts[idx, None] + torch.minimum(ar[None, :], lengths[:, None] - 1)
        return {"pitch": self.pitch[gather], "step": self.step[gather],
                "duration": self.duration[gather], "velocity": self.velocity[gather], "mask": mask}


def pad_pieces(pieces: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Whole pieces as one padded batch (for evaluation over entire pieces, no windows)."""
    n = max(len(p) for p in pieces)
    out = {"pitch": torch.zeros(len(pieces), n, dtype=torch.int64),
           "step": torch.zeros(len(pieces), n), "duration": torch.full((len(pieces), n), 0.5),
           "velocity": torch.zeros(len(pieces), n, dtype=torch.int64),
           "mask": torch.zeros(len(pieces), n, dtype=torch.bool)}
    for i, p in enumerate(pieces):
        k = len(p)
        out["pitch"][i, :k] = torch.from_numpy(p["pitch"].astype(np.int64))
        out["step"][i, :k] = torch.from_numpy(p["step"].astype(np.float32))
        out["duration"][i, :k] = torch.from_numpy(p["duration"].astype(np.float32))
        out["velocity"][i, :k] = torch.from_numpy(p["velocity"].astype(np.int64))
        out["mask"][i, :k] = True
    return out

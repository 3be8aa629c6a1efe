"""Pieces -> fixed-length training windows, gathered straight into torch tensors.

All pieces of a split are concatenated once; a window is a start index into that array,
so memory is one copy of the notes plus one integer per window, even for MAESTRO. A
piece shorter than a window gets one window padded by repeating its last note, with the
padding masked out of the loss.

Training batches (``length_batches``) group windows of similar lengths and ``batch(...,
trim=True)`` cuts a batch after its longest window, so a corpus of short tunes (Essen's:
median 40 notes, a third of a 64-note window padding) does not spend a third of its LSTM
time on padding. Each window's loss is unchanged: the LSTM runs forwards and the cut
columns are masked padding after every window's last note.
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

    def batch(self, idx: torch.Tensor, trim: bool = False) -> dict[str, torch.Tensor]:
        """Gather windows ``idx`` into (B, seq_len + 1) tensors plus a validity mask; with
        ``trim``, (B, the longest of them)."""
        lengths = self.lengths[idx]
        ar = torch.arange(int(lengths.max()) if trim and len(idx) else self.seq_len + 1)
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


def length_batches(order: torch.Tensor, lengths: torch.Tensor, batch_size: int,
                   generator: torch.Generator, pool: int = 16) -> list[torch.Tensor]:
    """``order`` (window indices, already shuffled) as batches of ``batch_size`` windows of
    similar lengths: each run of ``pool`` batches' worth is sorted by length and cut into
    batches, and the batches are shuffled. With ``pool`` 16 a batch is drawn from 16
    batches' worth of random windows (at batch 32, 512), so which windows meet stays
    random while, trimmed (``WindowSet.batch(trim=True)``), 96% of the positions the LSTM
    computes on Essen's tunes are notes (65% in random batches). ``pool`` 1: the order's
    own batches, unsorted. Every window of ``order`` is in exactly one batch; only the last
    batch may be short."""
    if pool <= 1 or not len(order):
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    for i in range(0, len(order), batch_size * pool):
        chunk = order[i:i + batch_size * pool]
        chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    last = batches.pop() if len(batches[-1]) < batch_size else None  # a short batch stays last
    shuffled = [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]
    return shuffled + ([last] if last is not None else [])


def epoch_batches(lengths: torch.Tensor, batch_size: int, seed: int, *, world: int = 1, rank: int = 0,
                  pool: int = 16) -> list[torch.Tensor]:
    """One epoch's batches of window indices for process ``rank`` of ``world`` (1: the only
    one), ``batch_size`` windows each. Every process draws the same shuffled order from
    ``seed`` and groups it into global batches of ``batch_size * world`` similar-length windows
    (``length_batches``); a process takes every ``world``-th window of each, so at every
    step all processes hold windows of about the same lengths and none waits long for the
    others at DDP's gradient exchange (shards of a plain sampler, each trimmed to its own
    longest window, left the processes of a 2-process run waiting for each other a third
    of the time). A last global batch too small to give each process a window is dropped
    (in every process alike); otherwise every window is in one process's batch once."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=gen)
    batches = length_batches(order, lengths, batch_size * world, gen, pool)
    return [b[rank::world] for b in batches if len(b) >= world]

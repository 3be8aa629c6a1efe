"""Per-note scores of a model over whole pieces, and the unigram reference.

Evaluation runs each piece from its first note to its last in one pass (no windows, no
augmentation), so every note after the first is predicted from its entire history:
the per-note NLL a performer's generator actually faces.
"""

from __future__ import annotations

import numpy as np
import torch

from livernn.data.windows import pad_pieces
from livernn.model.net import HEADS, LossWeights, NoteLSTM, model_step, total_loss


@torch.no_grad()
def evaluate(model: NoteLSTM, pieces: list[np.ndarray], weights: LossWeights,
             device: torch.device | str = "cpu", batch_notes: int = 65536) -> dict[str, float]:
    """Mean per-note loss of each head (NLL in nats for categorical heads) and the total."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    sums = {h: 0.0 for h in HEADS}
    count = 0
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * len(pieces[order[j]]) <= batch_notes:
            j += 1
        group = [pieces[k] for k in order[i:j]]
        batch = {k: v.to(device) for k, v in pad_pieces(group).items()}
        n = int(batch["mask"][:, 1:].sum())
        losses = model_step(model, batch)
        for h in HEADS:
            sums[h] += float(losses[h]) * n
        count += n
        i = j
    model.train(was_training)
    out = {h: sums[h] / max(count, 1) for h in HEADS}
    out["total"] = float(total_loss({h: torch.tensor(out[h]) for h in HEADS}, weights))
    out["notes"] = count
    return out


def pitch_unigram(pieces: list[np.ndarray]) -> np.ndarray:
    """Pitch probabilities of ``pieces`` with add-one smoothing (never zero)."""
    counts = np.ones(128)
    for p in pieces:
        counts += np.bincount(p["pitch"].astype(np.int64), minlength=128)[:128]
    return counts / counts.sum()


def unigram_nll(probs: np.ndarray, pieces: list[np.ndarray]) -> float:
    """Per-note pitch NLL of ``pieces`` (notes after each piece's first) under ``probs``."""
    pitches = np.concatenate([p["pitch"][1:] for p in pieces]).astype(np.int64)
    return float(-np.log(probs[pitches]).mean())

"""Offline generation: N notes from a loaded model into a note array (``livernn generate``)."""

from __future__ import annotations

import numpy as np

from livernn.model.generator import LoadedModel
from livernn.model.sampling import SamplerParams
from livernn.notes import make_notes

PRIME_NOTES = 512  # history beyond this adds little to an LSTM's state and costs time


def generate_notes(model: LoadedModel, n: int, params: SamplerParams | None = None, *,
                   seed: int | None = None, history: np.ndarray | None = None) -> np.ndarray:
    """Generate ``n`` notes, after priming with ``history`` (its last notes) if given."""
    params = (params or SamplerParams()).validated()
    g = model.generator(seed)
    if history is not None and len(history):
        g.prime(history[-PRIME_NOTES:])
    g.warmup()
    cols = np.zeros((n, 4))
    for i in range(n):
        cols[i] = g.next(params)
    return make_notes(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3])

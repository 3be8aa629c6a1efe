"""Honest evaluation figures: the step-marginal pitch NLL, timing MAEs, context-free counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livernn.model.config import ModelConfig
from livernn.model.net import LossWeights, NoteLSTM
from livernn.notes import make_notes
from livernn.train.evaluate import MAE_SKIP, evaluate, references, time_unigram

CFG = ModelConfig(hidden=24, layers=1, embed=8, time_bins=16, vel_bins=8, dropout=0.0)


def pieces(n: int = 4, length: int = 40, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [make_notes(rng.integers(50, 80, length), rng.choice([0.0, 0.25, 0.5], length),
                       rng.choice([0.25, 0.5, 1.0], length), rng.integers(40, 110, length))
            for _ in range(n)]


def model(cfg: ModelConfig = CFG, seed: int = 0) -> NoteLSTM:
    torch.manual_seed(seed)
    return NoteLSTM(cfg).eval()


def test_pitch_head_that_ignores_the_step_gives_equal_conditioned_and_marginal_nll():
    m = model()
    assert m.step_to_pitch is not None and not m.step_to_pitch.weight.any()  # zero: step ignored
    r = evaluate(m, pieces(), LossWeights())
    assert r["pitch_marginal"] == pytest.approx(r["pitch"], abs=1e-5)
    # A regression model has no step bins to sum out: the two are one figure.
    reg = evaluate(model(ModelConfig(hidden=16, layers=1, embed=0, heads="regression")), pieces(), LossWeights())
    assert reg["pitch_marginal"] == pytest.approx(reg["pitch"], abs=1e-5)


def test_marginal_sums_the_step_out_exactly():
    m = model()
    with torch.no_grad():
        m.step_to_pitch.weight.normal_(0, 2.0)  # the pitch now depends on the step bin
    data = pieces(n=2, length=12)
    r = evaluate(m, data, LossWeights())
    # Brute force: for every note, sum p(s) p(pitch | s) over all step bins, one bin at a time.
    total, count = 0.0, 0
    with torch.no_grad():
        for notes in data:
            t = {k: torch.from_numpy(notes[k].astype(np.float32 if k in ("step", "duration") else np.int64))[None]
                 for k in ("pitch", "step", "duration", "velocity")}
            from livernn.model.net import encode_inputs

            pin, feats = encode_inputs(CFG, t["pitch"][:, :-1], t["step"][:, :-1], t["duration"][:, :-1],
                                       t["velocity"][:, :-1])
            out, _ = m.lstm(m.features(pin, feats))
            ps = torch.softmax(m.step_head(out)[0].double(), -1)
            for i in range(out.shape[1]):
                target = int(t["pitch"][0, i + 1])
                prob = sum(float(ps[i, s]) * float(torch.softmax(
                    m.pitch_head(torch.tanh(out[0, i] + m.step_to_pitch.weight[s])).double(), -1)[target])
                    for s in range(CFG.n_step))
                total -= math.log(prob)
                count += 1
    assert r["notes"] == count
    assert r["pitch_marginal"] == pytest.approx(total / count, rel=1e-5)
    assert r["pitch_marginal"] != pytest.approx(r["pitch"], abs=1e-3)


def test_timing_mae_is_the_error_of_each_heads_median_after_the_first_predictions():
    m = model()
    edges = CFG.time_edges()
    with torch.no_grad():  # all the step mass on bin 9, all the duration mass on bin 5
        for head, k in ((m.step_head, 9), (m.dur_head, 5)):
            head.weight.zero_()
            head.bias.fill_(-50.0)
            head.bias[k] = 50.0
    data = pieces(n=3, length=MAE_SKIP + 11)
    r = evaluate(m, data, LossWeights())
    step_median = math.sqrt(edges[8] * edges[9])  # half-way through bin 9 in log space
    dur_median = math.sqrt(edges[5] * edges[6])
    late = np.concatenate([p[1 + MAE_SKIP:] for p in data])
    assert r["mae_notes"] == len(late) == 3 * 10
    assert r["step_mae_ms"] == pytest.approx(1000 * np.abs(late["step"] - step_median).mean(), rel=1e-4)
    assert r["duration_mae_ms"] == pytest.approx(1000 * np.abs(late["duration"] - dur_median).mean(), rel=1e-4)


def test_context_free_step_count_is_add_one_frequencies_of_the_training_bins():
    train = [make_notes([60] * 9, [0.0, 0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.0, 0.25], [0.25] * 9)]
    probs = time_unigram(CFG, train, "step")
    assert probs.shape == (CFG.n_step,) and probs.sum() == pytest.approx(1.0)
    # Notes after the first: one chord step (bin 0), five 0.25 s, two 0.5 s; add one to all 17 bins.
    assert probs[0] == pytest.approx(2 / (8 + CFG.n_step))
    assert probs.max() == pytest.approx(6 / (8 + CFG.n_step))
    ref = references(CFG, train, train)
    expected = -(np.log(2 / 25) + 5 * np.log(6 / 25) + 2 * np.log(3 / 25)) / 8
    assert ref["unigram_step"] == pytest.approx(expected)
    assert {"unigram_pitch", "unigram_step", "unigram_duration"} <= set(ref)

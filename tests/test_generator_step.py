"""The fused numpy step against the torch model it was made from (livernn.model.generator).

The step is rearranged for speed (halved gate rows, padded head blocks, biases inside the
matvecs, max-shifts skipped when a softmax cannot overflow), so these tests pin its maths
to ``NoteLSTM``: the LSTM state after a history of notes, and the exact distribution
each head samples from. The distributions are read off ``next`` itself: the generator's
uniforms are replaced by a fine grid in one slot, so the share of the grid that lands on
each outcome *is* the probability the step gives it (to within one grid cell).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livernn.model import ModelConfig, SamplerParams, load_model
from livernn.model import generator as gen
from livernn.model.checkpoint import load_torch_model, write_model
from livernn.model.config import N_PITCHES
from livernn.model.net import NoteLSTM, encode_inputs
from livernn.model.sampling import SCALES
from livernn.notes import make_notes

N_GRID = 2000
CATEGORICAL = ModelConfig(hidden=32, layers=2, embed=8, time_bins=16, vel_bins=8)
CASES = {
    "categorical": CATEGORICAL,  # time bins embedded (the default for new models)
    "categorical-time-number": ModelConfig(hidden=32, layers=2, embed=8, time_bins=16, vel_bins=8, time_embed=0),
    "three-layers": ModelConfig(hidden=24, layers=3, embed=8, time_bins=12, vel_bins=16),
    "one-layer-regression": ModelConfig(hidden=16, layers=1, embed=0, heads="regression", vel_bins=8),
}


def make_model(tmp_path, cfg: ModelConfig, seed: int = 0):
    """A random model with peaked heads (so a wrong distribution shows) and a step
    conditioning that matters (training starts it at zero)."""
    torch.manual_seed(seed)
    model = NoteLSTM(cfg).eval()
    with torch.no_grad():
        for head in (model.step_head, model.dur_head, model.vel_head, model.pitch_head):
            head.weight.mul_(6.0)
            head.bias.normal_()
        if model.step_to_pitch is not None:
            model.step_to_pitch.weight.normal_()
    path = write_model(tmp_path / "m", cfg, model.state_dict(), {"name": "step"})
    net, _, _ = load_torch_model(path)
    return net, load_model(path)


def history(n: int = 25, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_notes(rng.integers(40, 90, n), rng.choice([0.0, 0.004, 0.25, 0.5], n),
                      rng.uniform(0.1, 1.0, n), rng.integers(30, 120, n))


def torch_state(net: NoteLSTM, notes: np.ndarray):
    """(top layer output, h_n, c_n) of the torch model after ``notes``."""
    t = {k: torch.from_numpy(notes[k].astype(np.float32 if k in ("step", "duration") else np.int64))[None]
         for k in ("pitch", "step", "duration", "velocity")}
    pitch, feats = encode_inputs(net.cfg, t["pitch"], t["step"], t["duration"], t["velocity"])
    with torch.no_grad():
        out, (h_n, c_n) = net.lstm(net.features(pitch, feats))
    return out[0, -1], h_n[:, 0].numpy(), c_n[:, 0].numpy()


class GridRng:
    """Stands in for the generator's numpy Generator: every draw is ``base`` with one slot
    taken from ``values`` in turn."""

    def __init__(self, base: list[float], slot: int, values: np.ndarray):
        self.base, self.slot, self.values = np.array(base), slot, iter(values)

    def random(self, size=None, dtype=np.float64, out=None):
        out[:] = self.base
        out[self.slot] = next(self.values)
        return out


def frequencies(g, params: SamplerParams, slot: int, decode, n_out: int, base=None) -> np.ndarray:
    """How the grid of uniforms in ``slot`` splits over ``decode(note)``, from one state."""
    saved = g._save()
    grid = (np.arange(N_GRID) + 0.5) / N_GRID
    g._rng = GridRng(base or [0.5] * 7, slot, grid)
    counts = np.zeros(n_out)
    for _ in grid:
        g._restore(saved)
        counts[decode(g.next(params))] += 1
    g._restore(saved)
    return counts / N_GRID


def one(g, params: SamplerParams, base: list[float]) -> tuple:
    """The note ``next`` gives for these uniforms, leaving the state as it was."""
    saved = g._save()
    g._rng = GridRng(base, 0, [base[0]])
    note = g.next(params)
    g._restore(saved)
    return note


def softmax(logits: torch.Tensor, temperature: float) -> np.ndarray:
    return torch.softmax(logits.double() / temperature, -1).numpy()


def nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """The smallest set of most likely outcomes holding top_p of the mass, renormalised."""
    order = np.argsort(-p, kind="stable")
    keep = int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1
    out = np.zeros_like(p)
    out[order[:keep]] = p[order[:keep]]
    return out / out.sum()


@pytest.mark.parametrize("case", list(CASES))
def test_state_after_a_history_is_the_torch_lstm_state(tmp_path, case):
    net, m = make_model(tmp_path, CASES[case])
    g = m.generator(seed=0)
    notes = history()
    g.prime(notes)
    _, h_n, c_n = torch_state(net, notes)
    for layer in range(net.cfg.layers):
        assert np.allclose(g._hs[layer], h_n[layer], atol=2e-6), f"h of layer {layer}"
        assert np.allclose(g._cs[layer], c_n[layer], atol=2e-6), f"c of layer {layer}"
    # One more note heard by observe alone moves both the same way.
    g.observe(64, 0.25, 0.4, 70)
    more = np.concatenate([notes, make_notes([64], [0.25], [0.4], [70])])
    _, h_n, c_n = torch_state(net, more)
    assert np.allclose(g._hs[-1], h_n[-1], atol=2e-6) and np.allclose(g._cs[-1], c_n[-1], atol=2e-6)


def _bins(cfg: ModelConfig):
    log_edges = np.log(cfg.time_edges())

    def step_bin(note):
        return 0 if note[1] == 0.0 else int(np.searchsorted(log_edges, np.log(note[1])))

    def dur_bin(note):
        return int(np.searchsorted(log_edges, np.log(note[2]))) - 1

    def vel_bin(note):
        return int(note[3] // (128 / cfg.vel_bins))

    return step_bin, dur_bin, vel_bin


@pytest.mark.parametrize("exp_safe", [gen._EXP_SAFE, 0.0], ids=["unshifted", "max-shifted"])
@pytest.mark.parametrize("timing_temperature", [1.0, 0.6])
def test_step_duration_velocity_are_drawn_from_the_torch_softmax(tmp_path, monkeypatch, exp_safe,
                                                                 timing_temperature):
    monkeypatch.setattr(gen, "_EXP_SAFE", exp_safe)
    cfg = CATEGORICAL
    net, m = make_model(tmp_path, cfg)
    g = m.generator(seed=0)
    notes = history()
    g.prime(notes)
    h, _, _ = torch_state(net, notes)
    params = SamplerParams(timing_temperature=timing_temperature, temperature=1.3)
    step_bin, dur_bin, vel_bin = _bins(cfg)
    with torch.no_grad():
        want = {"step": softmax(net.step_head(h), timing_temperature),
                "dur": softmax(net.dur_head(h), timing_temperature),
                "vel": softmax(net.vel_head(h), 1.0)}  # velocity ignores timing_temperature
    got = {"step": frequencies(g, params, gen.U_STEP, step_bin, cfg.n_step),
           "dur": frequencies(g, params, gen.U_DUR, dur_bin, cfg.n_dur),
           "vel": frequencies(g, params, gen.U_VEL, vel_bin, cfg.vel_bins)}
    for head in want:
        assert want[head].max() > 2.5 / len(want[head]), "the test model's heads should be peaked"
        assert np.allclose(got[head], want[head], atol=1.5 / N_GRID), head


PITCH_PARAMS = {
    "defaults": SamplerParams(),
    "cold": SamplerParams(temperature=0.3),
    "constrained": SamplerParams(temperature=1.7, pitch_min=45, pitch_max=80, transpose=3,
                                 scale="major", root=2),
    "nucleus": SamplerParams(temperature=0.8, top_p=0.7, pitch_min=40, pitch_max=100, transpose=-5,
                             scale="dorian", root=9),
}


@pytest.mark.parametrize("exp_safe", [gen._EXP_SAFE, 0.0], ids=["unshifted", "max-shifted"])
@pytest.mark.parametrize("name", list(PITCH_PARAMS))
def test_pitch_is_drawn_from_the_torch_softmax_given_the_step(tmp_path, monkeypatch, exp_safe, name):
    monkeypatch.setattr(gen, "_EXP_SAFE", exp_safe)
    params = PITCH_PARAMS[name]
    net, m = make_model(tmp_path, CATEGORICAL)
    g = m.generator(seed=0)
    notes = history()
    g.prime(notes)
    h, _, _ = torch_state(net, notes)
    step_bin, _, _ = _bins(CATEGORICAL)
    bins = []
    for u_step in (0.05, 0.95):  # two step bins: the pitch head must see the sampled one
        base = [u_step, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
        sbin = step_bin(one(g, params, base))
        with torch.no_grad():
            logits = net.pitch_head(torch.tanh(h + net.step_to_pitch.weight[sbin]))
        out = np.arange(N_PITCHES) + params.transpose
        allowed = ((out >= params.pitch_min) & (out <= params.pitch_max)
                   & np.isin((out - params.root) % 12, SCALES[params.scale]))
        logits = logits.masked_fill(torch.from_numpy(~allowed), float("-inf"))
        want = nucleus(softmax(logits, params.temperature), params.top_p)
        got = frequencies(g, params, gen.U_PITCH, lambda n: n[0] - params.transpose, N_PITCHES, base)
        assert np.allclose(got, want, atol=1.5 / N_GRID), (name, sbin)
        assert got[~allowed].sum() == 0
        bins.append(sbin)
    assert bins[0] != bins[1]


def test_regression_heads_give_the_torch_outputs_and_a_softmax_velocity(tmp_path):
    cfg = CASES["one-layer-regression"]
    net, m = make_model(tmp_path, cfg)
    g = m.generator(seed=0)
    notes = history()
    g.prime(notes)
    h, _, _ = torch_state(net, notes)
    saved = g._save()
    _, step, dur, _ = g.next(SamplerParams(timing_temperature=0.2))
    g._restore(saved)
    with torch.no_grad():
        assert step == pytest.approx(max(float(net.step_head(h)), 0.0), abs=1e-5)
        assert dur == pytest.approx(max(float(net.dur_head(h)), 1e-3), abs=1e-5)
        want = softmax(net.vel_head(h), 1.0)
        logits = net.pitch_head(h)
    got = frequencies(g, SamplerParams(), gen.U_VEL, _bins(cfg)[2], cfg.vel_bins)
    assert np.allclose(got, want, atol=1.5 / N_GRID)
    pitch = frequencies(g, SamplerParams(temperature=0.7), gen.U_PITCH, lambda n: n[0], N_PITCHES)
    assert np.allclose(pitch, softmax(logits, 0.7), atol=1.5 / N_GRID)


def test_the_shipped_model_step_matches_torch(tmp_path):
    """The real weights (256 wide, peaked heads) through both: state and pitch logits."""
    m = load_model()
    net, _, _ = load_torch_model(m.path)
    g = m.generator(seed=0)
    notes = history(60, seed=4)
    g.prime(notes)
    h, h_n, c_n = torch_state(net, notes)
    assert np.allclose(g._hs[-1], h_n[-1], atol=1e-5) and np.allclose(g._cs[-1], c_n[-1], atol=1e-4)
    params = SamplerParams(temperature=0.9)
    base = [0.02, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]  # the likeliest step bins come first: a chord
    step_bin = _bins(m.config)[0]
    sbin = step_bin(one(g, params, base))
    with torch.no_grad():
        want = softmax(net.pitch_head(torch.tanh(h + net.step_to_pitch.weight[sbin])), 0.9)
    got = frequencies(g, params, gen.U_PITCH, lambda n: n[0], N_PITCHES, base)
    assert np.allclose(got, want, atol=1.5 / N_GRID)

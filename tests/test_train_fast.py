"""Training's fast paths (issue 14, throughput) compute what the plain ones did.

``model_step`` runs the heads time-major, as the LSTM's output lies in memory, and the
step, duration and velocity heads as one stacked matrix product; training's AdamW is fused.
Each is checked against the plain batch-first, head-by-head computation on a fixed seed:
the same losses and the same gradients, to float32 rounding.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from livernn.data import Augment, WindowSet
from livernn.model.config import ModelConfig
from livernn.model.net import (
    HEADS,
    NoteLSTM,
    encode_inputs,
    encode_targets,
    model_step,
    total_loss,
)
from livernn.notes import make_notes
from livernn.train.config import Recipe
from livernn.train.loop import make_optimizer

CONFIGS = {
    "categorical": ModelConfig(hidden=32, layers=2, embed=8, time_bins=16, vel_bins=8, time_embed=4),
    "time-as-number": ModelConfig(hidden=32, layers=2, embed=8, time_bins=16, vel_bins=8, time_embed=0),
    "no-pitch-given-step": ModelConfig(hidden=24, layers=1, embed=8, time_bins=12, pitch_given_step=False),
    "regression": ModelConfig(hidden=16, layers=1, embed=0, heads="regression"),
}


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pieces = []
    for n in (80, 50, 12):  # the short piece gives a padded, masked window
        p = torch.randint(40, 90, (n,), generator=gen).numpy()
        s = torch.tensor([0.0, 0.25, 0.5, 0.125])[torch.randint(0, 4, (n,), generator=gen)].numpy()
        d = (torch.rand(n, generator=gen) + 0.05).numpy()
        v = torch.randint(20, 120, (n,), generator=gen).numpy()
        pieces.append(make_notes(p, s, d, v))
    windows = WindowSet(pieces, 16)
    return Augment(transpose=3, stretch=0.1)(windows.batch(torch.arange(len(windows))), gen)


def plain_losses(model: NoteLSTM, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What model_step computed before the fast paths: batch-first, one Linear per head."""
    cfg = model.cfg
    p, s, d, v, valid = b["pitch"], b["step"], b["duration"], b["velocity"], b["mask"][:, 1:]
    pitch_in, feats = encode_inputs(cfg, p[:, :-1], s[:, :-1], d[:, :-1], v[:, :-1])
    targets = encode_targets(cfg, s[:, 1:], d[:, 1:], v[:, 1:], model.edges)
    out, _ = model.lstm(model.features(pitch_in, feats))
    out = model.drop(out)
    logits = {"step": model.step_head(out), "duration": model.dur_head(out), "velocity": model.vel_head(out),
              "pitch": model.pitch_logits(out, targets["step"] if cfg.categorical else None)}
    m = valid.float()
    denom = m.sum().clamp_min(1.0)

    def ce(lg, tgt):
        return (F.cross_entropy(lg.flatten(0, 1), tgt.flatten(), reduction="none") * m.flatten()).sum() / denom

    losses = {"pitch": ce(logits["pitch"], p[:, 1:]), "velocity": ce(logits["velocity"], targets["velocity"])}
    for head in ("step", "duration"):
        if cfg.categorical:
            losses[head] = ce(logits[head], targets[head])
        else:
            pred = logits[head].squeeze(-1)
            losses[head] = (((pred - targets[head]) ** 2 * m).sum() / denom
                            + 10.0 * (F.relu(-pred) * m).sum() / denom)
    return losses


def grads(model: NoteLSTM, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
@pytest.mark.parametrize("training", [True, False], ids=["dropout", "eval"])
def test_model_step_gives_the_plain_losses_and_gradients(cfg, training):
    cfg = ModelConfig(**{**cfg.to_dict(), "dropout": 0.3})
    torch.manual_seed(0)
    model = NoteLSTM(cfg).train(training)
    model.feature_gain = 3.0
    b = batch()
    weights = Recipe().loss
    torch.manual_seed(7)  # the same dropout masks: both paths draw them in the same order and shape
    fast = model_step(model, b)
    g_fast = grads(model, total_loss(fast, weights))
    torch.manual_seed(7)
    plain = plain_losses(model, b)
    g_plain = grads(model, total_loss(plain, weights))
    for h in HEADS:
        assert torch.allclose(fast[h], plain[h], rtol=1e-5, atol=1e-6), h
    assert set(g_fast) == set(g_plain)
    for k in g_fast:
        assert torch.allclose(g_fast[k], g_plain[k], rtol=1e-4, atol=1e-6), k


def test_the_stacked_heads_are_the_heads():
    """NoteLSTM.heads (evaluation and training use it) gives each Linear's own logits."""
    cfg = CONFIGS["categorical"]
    torch.manual_seed(1)
    model = NoteLSTM(cfg).eval()
    out = torch.randn(3, 5, cfg.hidden)
    sbin = torch.randint(0, cfg.n_step, (3, 5))
    with torch.no_grad():
        logits = model.heads(out, sbin)
        for head, layer in (("step", model.step_head), ("duration", model.dur_head), ("velocity", model.vel_head)):
            assert torch.allclose(logits[head], layer(out), atol=1e-6)
        assert torch.equal(logits["pitch"], model.pitch_logits(out, sbin))


def test_training_adamw_is_fused_and_steps_like_the_plain_one():
    cfg = CONFIGS["categorical"]
    recipe = Recipe(model=cfg)
    torch.manual_seed(0)
    a, b = NoteLSTM(cfg), NoteLSTM(cfg)
    b.load_state_dict(a.state_dict())
    fused = make_optimizer(a, recipe, torch.device("cpu"))
    t = recipe.train
    plain = torch.optim.AdamW(b.parameters(), lr=t.lr, weight_decay=t.weight_decay, betas=(0.9, t.beta2),
                              foreach=False)
    assert fused.param_groups[0]["fused"] is True
    x = batch()
    for _ in range(3):
        for model, opt in ((a, fused), (b, plain)):
            torch.manual_seed(3)
            loss = total_loss(model_step(model, x), recipe.loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (k, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=1e-5, atol=1e-6), k


def short_windows(seed: int = 0) -> WindowSet:
    gen = torch.Generator().manual_seed(seed)
    pieces = []
    for n in (40, 9, 13, 17, 25, 6, 33, 11):  # all shorter than a 32-note window
        p = torch.randint(40, 90, (n,), generator=gen).numpy()
        s = torch.tensor([0.0, 0.25, 0.5])[torch.randint(0, 3, (n,), generator=gen)].numpy()
        pieces.append(make_notes(p, s, (torch.rand(n, generator=gen) + 0.05).numpy(), [80] * n))
    return WindowSet(pieces, 32)


@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_a_trimmed_batch_gives_each_window_its_loss_and_gradients(cfg):
    """A batch cut after its longest window (training's batches) computes what the full-width
    batch did: the cut columns are padding after every window's end, masked."""
    torch.manual_seed(0)
    model = NoteLSTM(cfg).eval()
    windows = short_windows()
    idx = torch.tensor([2, 3, 4, 6, 8])  # pieces of 9, 13, 17, 6 and 11 notes; a window holds 33
    full, cut = windows.batch(idx), windows.batch(idx, trim=True)
    assert full["pitch"].shape[1] == 33 and cut["pitch"].shape[1] == 17
    weights = Recipe().loss
    a, b = model_step(model, full), model_step(model, cut)
    g_a, g_b = grads(model, total_loss(a, weights)), grads(model, total_loss(b, weights))
    for h in HEADS:
        assert torch.allclose(a[h], b[h], rtol=1e-5, atol=1e-6), h
    for k in g_a:
        assert torch.allclose(g_a[k], g_b[k], rtol=1e-4, atol=1e-6), k


def test_length_batches_hold_every_window_once_and_group_similar_lengths():
    from livernn.data import length_batches

    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 66, (1000,), generator=gen)
    order = torch.randperm(1000, generator=gen)

    def useful(batches):  # notes over positions computed, each batch cut after its longest
        return sum(int(lengths[b].sum()) for b in batches) / sum(int(lengths[b].max()) * len(b) for b in batches)

    plain = length_batches(order, lengths, 32, torch.Generator().manual_seed(1), pool=1)
    grouped = length_batches(order, lengths, 32, torch.Generator().manual_seed(1), pool=16)
    for batches in (plain, grouped):
        assert sorted(torch.cat(batches).tolist()) == list(range(1000))
        assert [len(b) for b in batches[:-1]] == [32] * 31 and len(batches[-1]) == 1000 - 31 * 32
    assert torch.equal(torch.cat(plain), order)  # pool 1: the order's own batches
    assert useful(plain) < 0.7 < 0.9 < useful(grouped)
    again = length_batches(order, lengths, 32, torch.Generator().manual_seed(1), pool=16)
    assert all(torch.equal(a, b) for a, b in zip(grouped, again, strict=True))  # seeded
    firsts = [int(b[0]) for b in grouped[:10]]  # shuffled batches, not the pools' sorted order
    assert sorted(lengths[firsts].tolist()) != lengths[firsts].tolist()
    assert length_batches(order[:0], lengths, 32, gen) == []


def test_processes_of_one_run_hold_windows_of_about_the_same_lengths():
    """DDP waits for the slowest process every step: each process's share of a step has
    about the lengths of the others', every window is used once, and one process's epoch
    is the same batches whatever the other does (each draws them from the seed alone)."""
    from livernn.data import epoch_batches

    lengths = torch.randint(5, 66, (1001,), generator=torch.Generator().manual_seed(0))
    ranks = [epoch_batches(lengths, 16, seed=3, world=2, rank=r) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    assert sorted(torch.cat([*ranks[0], *ranks[1]]).tolist()) == list(range(1001))
    gaps = [abs(int(lengths[a].max()) - int(lengths[b].max())) for a, b in zip(*ranks, strict=True)]
    assert max(gaps) <= 3, gaps  # sorted global batches dealt out in turn
    assert all(torch.equal(a, b) for a, b in zip(ranks[0], epoch_batches(lengths, 16, seed=3, world=2, rank=0),
                                                 strict=True))
    one = epoch_batches(lengths, 32, seed=3)  # one process: the same global batches, whole
    assert [sorted(b.tolist()) for b in one] == [sorted(torch.cat([a, b]).tolist())
                                                 for a, b in zip(*ranks, strict=True)]

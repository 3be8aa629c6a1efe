"""The rhythm problem (issue 14): the step head must learn from context on quantised data."""

from __future__ import annotations

import numpy as np
import torch

from livernn.data.augment import QUANTIZED, corpus_grid_share, grid_share
from livernn.model.config import ModelConfig
from livernn.model.generator import generate_notes
from livernn.model.net import NoteLSTM, encode_inputs
from livernn.notes import make_notes, notes_to_midi
from livernn.train import load_recipe, train
from livernn.train.loop import bin_values

TINY = {"model.hidden": 32, "model.layers": 1, "model.embed": 16, "model.time_bins": 48,
        "model.vel_bins": 4, "model.dropout": 0.0, "train.seq_len": 24, "train.batch_size": 8,
        "train.threads": 1, "train.workers": 1, "train.warmup_steps": 5, "train.patience": 50,
        "train.lr": 1e-2, "train.epochs": 8, "augment.transpose": 0}


def rhythmic(folder, n_files: int = 30, seed: int = 0):
    """Quantised tunes: random pitches, a rhythm cycle per tune, each tune at its own tempo.

    The next step is given by the rhythm so far (and equals the last duration, legato),
    never by a context-free count: what a folk tune's step head has to learn.
    """
    rng = np.random.default_rng(seed)
    cycles = [[0.5, 0.25, 0.25], [0.75, 0.25, 0.5, 0.5], [0.25, 0.25, 0.5, 1.0]]
    for i in range(n_files):
        cycle = cycles[i % 3]
        unit = [0.5, 1.0, 1.5][(i // 3) % 3]
        steps = [cycle[k % len(cycle)] * unit for k in range(120)]
        dur = steps[1:] + steps[:1]
        notes_to_midi(make_notes(rng.integers(55, 80, 120), [0.0, *steps[1:]], dur, [80] * 120),
                      folder / f"t{i:02d}.mid")
    return folder


def test_grid_share_tells_quantised_from_performed():
    rng = np.random.default_rng(0)
    score = make_notes([60] * 100, rng.choice([0.25, 0.5, 0.125, 0.375, 1 / 6], 100), [0.2] * 100)
    played = make_notes([60] * 100, rng.choice([0.25, 0.5], 100) * np.exp(rng.normal(0, 0.05, 100)), [0.2] * 100)
    assert grid_share(score)[0] == 1.0
    assert grid_share(played)[0] < 0.5
    assert corpus_grid_share([score, score]) >= QUANTIZED > corpus_grid_share([played, played])


def test_feature_gain_is_folded_into_the_saved_weights():
    cfg = ModelConfig(hidden=16, layers=1, embed=8, time_bins=16, vel_bins=4)
    torch.manual_seed(0)
    trained = NoteLSTM(cfg).eval()
    trained.feature_gain = 8.0
    plain = NoteLSTM(cfg).eval()
    plain.load_state_dict(trained.export_state())  # what a model file holds: gain 1
    again = NoteLSTM(cfg).eval()
    again.feature_gain = 8.0
    again.import_state(trained.export_state())  # a resumed run: back to the gain's weights
    notes = make_notes([60, 62, 64, 65], [0.0, 0.25, 0.5, 0.25], [0.25, 0.5, 0.25, 1.0])
    t = {k: torch.from_numpy(notes[k].astype(np.float32 if k in ("step", "duration") else np.int64))[None]
         for k in ("pitch", "step", "duration", "velocity")}
    pitch, feats = encode_inputs(cfg, t["pitch"], t["step"], t["duration"], t["velocity"])
    bins = torch.zeros_like(pitch)
    with torch.no_grad():
        ref, _ = trained(pitch, feats, bins)
        for other in (plain, again):
            out, _ = other(pitch, feats, bins)
            assert all(torch.allclose(ref[h], out[h], atol=1e-5) for h in ref)
    assert torch.equal(again.lstm.weight_ih_l0, trained.lstm.weight_ih_l0)


def test_tempo_stretch_is_off_on_quantised_data_and_on_for_performed_data(tmp_path):
    rng = np.random.default_rng(1)
    rhythmic(tmp_path / "score", n_files=20)
    for i in range(20):  # the same kind of tunes, played: every onset a little early or late
        steps = rng.choice([0.25, 0.5, 0.75], 60) * np.exp(rng.normal(0, 0.06, 60))
        notes_to_midi(make_notes(rng.integers(55, 80, 60), steps, steps * 0.9, rng.integers(50, 100, 60)),
                      tmp_path / "played" / f"p{i:02d}.mid")
    from livernn.model import load_model

    for folder, quantized, stretch in (("score", True, 0.0), ("played", False, 0.1)):
        recipe = load_recipe(None, {**TINY, "train.epochs": 1, "train.cache_dir": str(tmp_path / "c")})
        assert recipe.augment.stretch == 0.1  # the default recipe asks for a stretch
        train(recipe, tmp_path / folder, tmp_path / f"out_{folder}", progress=False)
        model = load_model(tmp_path / f"out_{folder}")
        data = model.meta["data"]
        assert data["quantized"] is quantized and data["stretch"] == stretch, data
        assert (data["grid_share"] >= QUANTIZED) is quantized
        # Quantised: a sampled bin plays the data's median in it, so every step is one the
        # data has; performed: no stored values, times spread inside their bins.
        cfg = model.config
        steps = generate_notes(model, 200, seed=3)["step"].astype(float)
        if quantized:
            assert len(cfg.step_values) == cfg.n_step and len(cfg.dur_values) == cfg.n_dur
            assert set(np.round(steps, 5)) <= set(np.round(np.float32(cfg.step_values).astype(float), 5))
        else:
            assert cfg.step_values == [] and cfg.dur_values == []
            assert len(set(np.round(steps, 5))) > 50


def test_model_files_without_time_embed_read_times_as_numbers(tmp_path):
    from livernn.model import load_model
    from livernn.model.checkpoint import write_model

    assert ModelConfig().time_embed > 0  # new models embed the time bins
    old = ModelConfig.from_dict({"hidden": 32, "layers": 1, "embed": 8, "time_bins": 16, "vel_bins": 8})
    assert old.time_embed == 0  # a file from before the key
    assert ModelConfig(heads="regression").time_embed == 0  # no bins to embed
    torch.manual_seed(0)
    m = load_model(write_model(tmp_path / "old", old, NoteLSTM(old).state_dict(), {"name": "old"}))
    assert m.config.time_embed == 0 and m._fused.step_table is None and m._fused.n_feats == 4
    assert len(generate_notes(m, 20, seed=1)) == 20
    for name in ("bach", "folk"):  # both retrained with the default recipe: embedded time bins, live too
        shipped = load_model(name)
        assert shipped.config.time_embed == 16 and len(shipped.config.step_values) == shipped.config.n_step
        assert shipped._fused.step_table is not None


def test_bin_values_are_the_training_medians_per_bin():
    cfg = ModelConfig(time_bins=16)
    piece = make_notes([60] * 5, [0.0, 0.25, 0.26, 0.255, 0.004], [0.25, 0.25, 0.25, 0.26, 0.5])
    steps, durs = bin_values(cfg, [piece])
    edges = cfg.time_edges()
    k = int(np.searchsorted(edges, 0.25, "right"))  # step bin k spans edges[k-1..k]
    assert steps[k] == 0.255 and steps[0] == 0.002  # the chord bin: its notes' median
    assert durs[k - 1] == 0.25 and durs[int(np.searchsorted(edges, 0.5, "right")) - 1] == 0.5
    empty = int(np.searchsorted(edges, 4.0, "right"))
    assert np.isclose(steps[empty], np.sqrt(edges[empty - 1] * edges[empty]))


def test_embedded_time_bins_learn_the_rhythm_from_context(tmp_path):
    """The issue's target: the step NLL far below a context-free count of step bins."""
    rhythmic(tmp_path / "score", n_files=30)
    recipe = load_recipe(None, {**TINY, "train.cache_dir": str(tmp_path / "c")})
    assert recipe.model.time_embed > 0
    metrics = train(recipe, tmp_path / "score", tmp_path / "out", progress=False)
    val = metrics["val"]
    assert val["step"] < 0.75 * val["unigram_step"], val

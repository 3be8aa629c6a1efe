"""Bin values (issue 14): a model's sampled step and duration bins play its training data's
own seconds, given to a model after training by ``livernn bin-values`` (livernn.train.bins),
and the shipped models so sample rhythm on their data's grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livernn.cli import main
from livernn.data import split_files
from livernn.errors import LivernnError
from livernn.model import ModelError, SamplerParams, load_model
from livernn.model.checkpoint import write_model
from livernn.model.config import ModelConfig
from livernn.model.generator import generate_notes
from livernn.model.net import NoteLSTM
from livernn.notes import make_notes, notes_to_midi
from livernn.train import musicstats
from livernn.train.bins import add_bin_values, training_recipe

CFG = ModelConfig(hidden=16, layers=1, embed=8, time_bins=24, vel_bins=4, time_embed=0)


def corpus(folder, played: bool = False, n_files: int = 24):
    """Tunes of eighths, quarters and dotted quarters at 120 bpm (or the same, played: every time off by a few %)."""
    rng = np.random.default_rng(0)
    for i in range(n_files):
        steps = rng.choice([0.25, 0.5, 0.75], 40)
        durs = rng.choice([0.25, 0.5, 1.0], 40)
        if played:
            steps, durs = steps * np.exp(rng.normal(0, 0.06, 40)), durs * np.exp(rng.normal(0, 0.06, 40))
        notes_to_midi(make_notes(rng.integers(55, 80, 40), steps, durs, [80] * 40), folder / f"t{i:02d}.mid")
    return folder


def model_dir(path, cfg: ModelConfig = CFG, meta: dict | None = None):
    torch.manual_seed(0)
    meta = {"name": "m", "recipe": {"train": {"group_versions": False, "max_files": 0}}, **(meta or {})}
    return write_model(path, cfg, NoteLSTM(cfg).export_state(), meta)


def test_the_values_are_the_training_splits_medians_per_bin_and_nothing_else_changes(tmp_path):
    data = corpus(tmp_path / "data")
    out = model_dir(tmp_path / "m")
    before = json.loads((out / "config.json").read_text())
    weights = (out / "model.safetensors").read_bytes()
    record = add_bin_values(out, data, cache_dir=str(tmp_path / "c"))

    found = split_files(data, group=False)
    train = np.concatenate([found.notes[p] for p in found.files["train"]])
    assert record["files"] == len(found.files["train"]) and record["notes"] == len(train)
    assert record["group_versions"] is False and record["split"] == "train" and record["grid_share"] == 1.0
    cfg = load_model(out).config
    assert len(cfg.step_values) == cfg.n_step and len(cfg.dur_values) == cfg.n_dur
    edges = cfg.time_edges()
    for key, values, offset in (("step", cfg.step_values, 0), ("duration", cfg.dur_values, 1)):
        for seconds in np.unique(np.round(train[key], 3)):
            k = int(np.searchsorted(edges, seconds, "right")) - offset  # a step bin k spans edges[k-1..k]
            inside = train[key][np.abs(train[key] - seconds) < 0.005]
            assert values[k] == pytest.approx(float(np.median(inside)), abs=1e-6)
    after = json.loads((out / "config.json").read_text())
    for key in ("step_values", "dur_values"):
        after["model"][key] = before["model"].get(key, [])  # [] as a new model writes them; a shipped one: absent
    assert after["meta"].pop("bin_values") == record
    assert after == before
    assert (out / "model.safetensors").read_bytes() == weights
    steps = generate_notes(load_model(out), 100, seed=1)["step"].astype(float)
    assert set(np.round(steps, 5)) <= set(np.round(np.float32(cfg.step_values).astype(float), 5))


def test_the_command_refuses_performed_data_a_model_without_bins_and_values_it_already_has(tmp_path, capsys):
    data = corpus(tmp_path / "score")
    played = corpus(tmp_path / "played", played=True)
    out = model_dir(tmp_path / "m")
    text = (out / "config.json").read_text()
    cache = ["--cache-dir", str(tmp_path / "c")]
    assert main(["bin-values", str(out), "--data", str(played), *cache]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livernn: error: ") and "not quantised" in err and err.count("\n") == 1, err
    assert (out / "config.json").read_text() == text
    regression = model_dir(tmp_path / "r", ModelConfig(hidden=16, layers=1, embed=8, heads="regression"))
    assert main(["bin-values", str(regression), "--data", str(data), *cache]) == 2
    assert "no time bins" in capsys.readouterr().err
    assert main(["bin-values", str(out), "--data", str(data), *cache]) == 0
    assert "the train split of" in capsys.readouterr().out
    assert main(["bin-values", str(out), "--data", str(data), *cache]) == 2
    assert "already has bin values" in capsys.readouterr().err
    assert main(["bin-values", str(out), "--data", str(data), "--replace", *cache]) == 0


def test_values_whose_count_is_not_the_bins_are_a_one_line_error_of_the_loader_and_the_command(tmp_path, capsys):
    data = corpus(tmp_path / "data")
    out = model_dir(tmp_path / "m")
    doc = json.loads((out / "config.json").read_text())
    doc["model"]["step_values"] = [0.25] * CFG.n_dur  # one short: the zero bin is missing
    doc["model"]["dur_values"] = [0.25] * CFG.n_dur
    (out / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=f"step_values must be empty or {CFG.n_step} finite seconds"):
        load_model(out)
    assert main(["bin-values", str(out), "--data", str(data), "--replace"]) == 2
    err = capsys.readouterr().err
    assert "step_values must be empty or" in err and err.count("\n") == 1


def test_the_split_is_the_models_own_training_split():
    assert training_recipe({}).train.group_versions is False  # a run from before version grouping
    recorded = {"recipe": {"train": {"group_versions": True, "max_files": 12, "epochs": 3}}}
    assert (training_recipe(recorded).train.group_versions, training_recipe(recorded).train.max_files) == (True, 12)
    with pytest.raises(LivernnError, match="max_files"):
        training_recipe({"recipe": {"train": {"max_files": "all"}}})


@pytest.mark.parametrize("name", ["bach", "folk"])
def test_a_shipped_model_samples_its_steps_on_the_grid_at_temperature_1(name):
    """Without bin values a sampled step is log-uniform inside its 6%-wide bin: these pieces had
    0.54 (bach) and 0.49 (folk) of their steps on the sixteenth grid, 0.13 and 0.12 of their
    onsets; with them, 0.88 and 1.00 of the steps, and folk 1.00 of the onsets. Both, since
    retrained in beats (one grid, training/README.md), store their values by training and keep
    their onsets on the grid too."""
    model = load_model(name)
    assert model.config.step_values and model.config.dur_values
    assert model.meta["recipe"]["data"]["time"] == "beats" and model.meta["data"]["grid_share"] >= 0.99
    assert "bin_values" not in model.meta  # the training split's own values, not added afterwards
    pieces = [generate_notes(model, 50, SamplerParams(temperature=1.0), seed=seed) for seed in range(8)]
    stats = musicstats.corpus_stats(pieces, model.ref_bpm)
    assert stats["steps"] >= 100
    assert stats["step_grid_share"] >= 0.8, stats
    assert stats["grid_share"] >= 0.8, stats  # every onset of one tempo stays on the grid

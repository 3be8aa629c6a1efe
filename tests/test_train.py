"""Training end to end on tiny data: learning, checkpoints, resume, DDP, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from livernn.cli import main
from livernn.errors import LivernnError
from livernn.model import load_model
from livernn.notes import make_notes, notes_from_midi, notes_to_midi
from livernn.train import load_recipe, train
from test_data import tiny_corpus

TINY = {"model.hidden": 24, "model.layers": 1, "model.embed": 8, "model.time_bins": 16,
        "model.vel_bins": 8, "train.seq_len": 16, "train.batch_size": 16, "train.threads": 1,
        "train.workers": 1, "train.warmup_steps": 5}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"), n_files=16, n_notes=60)


@pytest.fixture(scope="module")
def scales(tmp_path_factory):
    """Pieces that are one pattern (C major up and down, quarter notes): easy to learn."""
    folder = tmp_path_factory.mktemp("scales")
    up = [60, 62, 64, 65, 67, 69, 71, 72]
    pattern = up + up[-2:0:-1]
    for i in range(12):
        pitch = (pattern * 16)[i:i + 200]
        notes_to_midi(make_notes(pitch, [0.5] * 200, [0.5] * 200, [80] * 200), folder / f"s{i}.mid")
    return folder


def test_training_learns_a_predictable_pattern(scales, tmp_path):
    recipe = load_recipe(None, {**TINY, "train.epochs": 12, "train.lr": 2e-2, "train.batch_size": 8,
                                "train.seq_len": 32, "model.dropout": 0.0, "train.cache_dir": str(tmp_path / "c"),
                                "augment.transpose": 0, "augment.stretch": 0.0, "train.patience": 30,
                                "train.group_versions": False})  # 12 copies of one tune: held out on purpose
    metrics = train(recipe, scales, tmp_path / "out", progress=False)
    assert metrics["val"]["pitch"] < 1.0 < np.log(128)  # far below chance
    assert metrics["val"]["pitch"] < metrics["val"]["unigram_pitch"] / 2
    rows = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train"]["total"] < rows[0]["train"]["total"]


def test_checkpoints_and_resume(corpus, tmp_path):
    out = tmp_path / "run"
    base = {**TINY, "train.cache_dir": str(tmp_path / "c")}
    train(load_recipe(None, {**base, "train.epochs": 2}), corpus, out, progress=False)
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "loss.png", "last/optimizer.safetensors",
                 "last/trainer.json", "epochs/epoch_001/model.safetensors", "epochs/epoch_002/config.json"):
        assert (out / name).is_file(), name
    meta = load_model(out).meta
    assert meta["seed"] == 1234 and meta["data"]["files"]["train"] > 0 and "test" in meta["metrics"]
    train(load_recipe(None, {**base, "train.epochs": 3}), corpus, out, resume=True, progress=False)
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]  # resumed at epoch 3, history kept
    assert json.loads((out / "last" / "trainer.json").read_text())["epoch"] == 2


def test_recipe_errors_are_clear(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_text("[model]\nhiden = 3\n")
    with pytest.raises(LivernnError, match="unknown key 'hiden'"):
        load_recipe(bad)
    with pytest.raises(LivernnError, match="no such training recipe"):
        load_recipe(tmp_path / "none.toml")
    with pytest.raises(LivernnError, match="hidden"):
        load_recipe(None, {"model.hidden": 0})


def test_shipped_recipes_parse():
    for name in ("bach", "folk", "baseline", "original"):
        recipe = load_recipe(f"training/{name}.toml")
        assert recipe.model.hidden >= 128
        assert recipe.train.group_versions is False  # the shipped models' training files (the cards' baselines)
    assert load_recipe("training/baseline.toml").model.heads == "regression"
    # each file read in beats through its tempo map (issue 14), folk since its retrain with the default recipe
    assert [load_recipe(f"training/{n}.toml").data.time for n in ("bach", "baseline", "original", "folk")] == [
        "beats", "beats", "beats", "beats"]


def test_two_process_ddp_with_gloo(corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "livernn.cli", "train", "--data", str(corpus), "--out", str(out), "--epochs", "2",
           "--hidden", "16", "--layers", "1", "--seq-len", "16", "--batch-size", "8", "--threads", "1",
           "--workers", "1", "--cache-dir", str(tmp_path / "c"), "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = load_model(out).meta
    assert meta["hardware"]["world_size"] == 2
    assert proc.stdout.count("epoch 2:") == 1  # only rank 0 logs
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_cli_train_eval_generate(corpus, tmp_path, capsys):
    out, cache = tmp_path / "m", str(tmp_path / "c")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text("[model]\nhidden = 16\nlayers = 1\nembed = 8\ntime_bins = 16\n"
                      "[train]\nseq_len = 16\nbatch_size = 16\nthreads = 1\nworkers = 1\n")
    assert main(["train", "--data", str(corpus), "--out", str(out), "--config", str(recipe), "--epochs", "1",
                 "--cache-dir", cache, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--data", str(corpus), "--split", "all", "--json", "--cache-dir", cache]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("pitch", "step", "duration", "velocity", "total", "unigram_pitch", "pitch_marginal",
                "unigram_step", "unigram_duration", "step_mae_ms", "duration_mae_ms"):
        assert np.isfinite(result[key])
    assert result["mae_skip"] == 24 and 0 < result["mae_notes"] < result["notes"]
    assert result["files"] == 16
    assert result["time"] == "beats" == load_model(out).meta["recipe"]["data"]["time"]  # the default, recorded
    midi, png = tmp_path / "g.mid", tmp_path / "g.png"
    assert main(["generate", str(out), "--notes", "50", "--temperature", "1.5", "--seed", "3",
                 "--seed-midi", str(next(corpus.rglob("*.mid"))), "-o", str(midi), "--png", str(png)]) == 0
    notes = notes_from_midi(midi)
    assert len(notes) == 50 and png.stat().st_size > 1000
    assert notes["pitch"].min() >= 0 and notes["pitch"].max() <= 127 and (notes["step"] >= 0).all()
    assert main(["generate", str(tmp_path / "nope"), "-o", str(midi)]) == 2  # one-line error
    assert "no such model" in capsys.readouterr().err


def test_device_choice_is_checked(corpus, tmp_path, capsys):
    import torch

    from livernn.train import pick_device

    assert pick_device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert pick_device("cuda").type == pick_device("auto").type == "cuda"
    else:  # asking for a GPU that is not there: one line, exit 2, nothing trained
        code = main(["train", "--data", str(corpus), "--out", str(tmp_path / "x"), "--device", "cuda"])
        assert code == 2 and "no CUDA GPU" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()

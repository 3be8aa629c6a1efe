"""Resume checkpoints are files from outside too: the checks model files get, one-line errors."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from livernn.model.checkpoint import ModelError, write_model
from livernn.model.config import ModelConfig
from livernn.model.net import NoteLSTM
from livernn.train.state import OPTIM_FILE, TRAINER_FILE, load_trainer_state, save_trainer_state

CFG = ModelConfig(hidden=16, layers=1, embed=4, time_bins=8, vel_bins=4)
INFO = {"epoch": 2, "step": 30, "best": 4.5, "bad_epochs": 1, "elapsed_s": 12.5}


def trained(cfg: ModelConfig = CFG, seed: int = 0):
    torch.manual_seed(seed)
    model = NoteLSTM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99))
    loss = sum((p ** 2).sum() for p in model.parameters())
    loss.backward()
    opt.step()
    return model, opt


def saved(tmp_path, cfg: ModelConfig = CFG):
    model, opt = trained(cfg)
    d = tmp_path / "last"
    write_model(d, cfg, model.state_dict(), {})
    save_trainer_state(d, opt, INFO)
    return d, model


def fresh(cfg: ModelConfig = CFG):
    model = NoteLSTM(cfg)
    return torch.optim.AdamW(model.parameters(), lr=1.0)


def refused(d, opt, match: str) -> str:
    before = {k: v.clone() for k, v in opt.state_dict()["state"].items()} if opt.state else {}
    with pytest.raises(ModelError, match=match) as info:
        load_trainer_state(d, opt)
    message = str(info.value)
    assert "\n" not in message and str(d) in message
    assert {k: v for k, v in opt.state_dict()["state"].items()} == before  # nothing half-loaded
    assert opt.param_groups[0]["lr"] == 1.0
    return message


def test_round_trip_restores_the_optimizer_and_the_counters(tmp_path):
    d, _ = saved(tmp_path)
    _, original = trained()
    opt = fresh()
    assert load_trainer_state(d, opt) == INFO
    assert opt.param_groups[0]["lr"] == 3e-3 and opt.param_groups[0]["betas"] == (0.9, 0.99)
    mine, theirs = original.state_dict()["state"], opt.state_dict()["state"]
    assert set(mine) == set(theirs)
    for idx, st in mine.items():
        assert all(torch.equal(st[k], theirs[idx][k]) for k in st)


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    d, _ = saved(tmp_path)
    (d / OPTIM_FILE).write_bytes((d / "model.safetensors").read_bytes())  # a model's weights
    refused(d, fresh(), "optimizer state does not fit this model")


def test_state_of_another_model_size_is_refused(tmp_path):
    d, _ = saved(tmp_path, ModelConfig(hidden=24, layers=1, embed=4, time_bins=8, vel_bins=4))
    refused(d, fresh(), "does not fit this model|has shape")


@pytest.mark.parametrize("content, match", [
    (b"\x00\x01junk", "truncated"),
    (struct.pack("<Q", 1 << 40) + b"{}", "not a safetensors file"),
    (struct.pack("<Q", 4) + b"[1]x", "not a safetensors file"),
    (b"", "truncated"),
])
def test_junk_optimizer_files_are_refused(tmp_path, content, match):
    d, _ = saved(tmp_path)
    (d / OPTIM_FILE).write_bytes(content)
    refused(d, fresh(), match)


def test_truncated_or_non_finite_optimizer_state_is_refused(tmp_path):
    d, _ = saved(tmp_path)
    data = (d / OPTIM_FILE).read_bytes()
    (d / OPTIM_FILE).write_bytes(data[:-16])
    refused(d, fresh(), "truncated or padded")
    _, opt = trained()
    tensors = {f"{i}.{k}": v.clone() for i, st in opt.state_dict()["state"].items() for k, v in st.items()}
    tensors["0.exp_avg"][0] = float("nan")
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(d / OPTIM_FILE))
    refused(d, fresh(), "NaN")


@pytest.mark.parametrize("doc, match", [
    ("not json{", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"foo": 1}', "epoch must be"),  # junk JSON: was a raw KeyError
    ({**INFO, "epoch": -1}, "epoch must be"),
    ({**INFO, "elapsed_s": "soon"}, "elapsed_s must be"),
    ({**INFO, "param_groups": "x"}, "groups do not fit"),
])
def test_junk_trainer_json_is_refused(tmp_path, doc, match):
    d, _ = saved(tmp_path)
    (d / TRAINER_FILE).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    refused(d, fresh(), match)


def test_bad_hyper_parameters_are_refused(tmp_path):
    d, _ = saved(tmp_path)
    doc = json.loads((d / TRAINER_FILE).read_text())
    doc["param_groups"][0]["lr"] = "fast"
    (d / TRAINER_FILE).write_text(json.dumps(doc))
    refused(d, fresh(), "optimizer setting lr")
    doc["param_groups"][0]["lr"], doc["param_groups"][0]["params"] = 1e-3, [0, 1]
    (d / TRAINER_FILE).write_text(json.dumps(doc))
    refused(d, fresh(), "parameter lists differ")


def test_missing_files_and_oversized_json_are_refused(tmp_path):
    refused(tmp_path / "nothing", fresh(), "missing trainer state")
    d, _ = saved(tmp_path)
    (d / OPTIM_FILE).unlink()
    refused(d, fresh(), "missing optimizer state")
    (d / TRAINER_FILE).write_text(" " * (5 << 20))
    refused(d, fresh(), "more than")


def test_cli_resume_from_a_junk_checkpoint_is_one_line(tmp_path, capsys):
    from livernn.cli import main
    from test_data import tiny_corpus

    corpus = tiny_corpus(tmp_path / "data", n_files=16, n_notes=40)
    out, cache = tmp_path / "run", str(tmp_path / "c")
    args = ["train", "--data", str(corpus), "--out", str(out), "--epochs", "1", "--hidden", "8", "--layers", "1",
            "--seq-len", "8", "--batch-size", "8", "--threads", "1", "--workers", "1", "--cache-dir", cache,
            "--no-progress"]
    assert main(args) == 0
    (out / "last" / TRAINER_FILE).write_text('{"epoch": 0}')
    capsys.readouterr()
    assert main([*args[:5], "--epochs", "2", *args[7:], "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livernn: error:") and err.count("\n") == 1 and "trainer.json" in err


@pytest.mark.parametrize("fused_before, fused_now", [(None, True), (True, None)])
def test_a_state_resumes_into_a_fused_or_unfused_adamw(tmp_path, fused_before, fused_now):
    """Training's AdamW is fused (train.loop.make_optimizer); a state saved by the unfused
    one (every run before that) resumes, and the other way round: fused is how this run
    computes the update, not a setting to restore."""
    torch.manual_seed(0)
    model = NoteLSTM(CFG)
    before = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=fused_before)
    sum((p ** 2).sum() for p in model.parameters()).backward()
    before.step()
    d = tmp_path / "last"
    d.mkdir()
    save_trainer_state(d, before, INFO)
    now = torch.optim.AdamW(model.parameters(), lr=1.0, fused=fused_now)
    assert load_trainer_state(d, now) == INFO
    assert now.param_groups[0]["lr"] == 3e-3 and now.param_groups[0]["fused"] is fused_now
    now.step()  # the restored state is usable by this optimizer
    assert all(torch.isfinite(p).all() for p in model.parameters())

"""Model files and the real-time generator contract (docs/ARCHITECTURE.md, livernn.model)."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
import torch

from livernn.errors import LivernnError
from livernn.model import ModelConfig, ModelError, SamplerParams, default_model_path, load_model
from livernn.model.checkpoint import load_torch_model, write_model
from livernn.model.net import NoteLSTM, encode_inputs, encode_targets
from livernn.model.sampling import pitch_classes
from livernn.notes import make_notes

TINY = ModelConfig(hidden=32, layers=2, embed=8, time_bins=16, vel_bins=8)


def tiny_model(tmp_path, cfg: ModelConfig = TINY, seed: int = 0):
    torch.manual_seed(seed)
    model = NoteLSTM(cfg).eval()
    return model, write_model(tmp_path / "m", cfg, model.state_dict(), {"name": "tiny"})


def history(n: int = 30, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_notes(rng.integers(40, 90, n), rng.choice([0.0, 0.25, 0.5], n),
                      rng.uniform(0.1, 1.0, n), rng.integers(30, 120, n))


@pytest.mark.parametrize("cfg", [TINY, ModelConfig(hidden=16, layers=1, embed=0, heads="regression")],
                         ids=["categorical", "regression"])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, cfg):
    model, path = tiny_model(tmp_path, cfg)
    loaded, meta, _ = load_torch_model(path)
    assert meta["name"] == "tiny" and loaded.cfg == cfg
    notes = history()
    t = {k: torch.from_numpy(notes[k].astype(np.float32 if k in ("step", "duration") else np.int64))[None]
         for k in ("pitch", "step", "duration", "velocity")}
    pitch, feats = encode_inputs(cfg, t["pitch"], t["step"], t["duration"], t["velocity"])
    sbin = encode_targets(cfg, t["step"], t["duration"], t["velocity"], model.edges)["step"]
    with torch.no_grad():
        a, _ = model(pitch, feats, sbin if cfg.categorical else None)
        b, _ = loaded(pitch, feats, sbin if cfg.categorical else None)
    for head in a:
        assert torch.equal(a[head], b[head])
    # The fused numpy step reads the same weights: same step logits after the same history.
    g = load_model(path).generator(seed=3)
    g.prime(notes)
    fw = g._fw
    step_logits = (fw.sdv_w @ g._hs[-1] + fw.sdv_b)[: cfg.n_step]
    assert np.allclose(step_logits, a["step"][0, -1].numpy().reshape(-1), atol=1e-5)


def test_same_seed_same_notes_and_generators_are_independent(tmp_path):
    _, path = tiny_model(tmp_path)
    m = load_model(path)
    p = SamplerParams()
    a, b = m.generator(seed=7), m.generator(seed=7)
    seq_a = [a.next(p) for _ in range(20)]
    other = m.generator(seed=8)
    [other.next(p) for _ in range(5)]  # another voice stepping does not disturb b
    assert [b.next(p) for _ in range(20)] == seq_a
    a.reset()
    b.reset()
    a.warmup()  # warm-up leaves state and RNG as they were
    assert a.next(p) == b.next(p)


def test_generator_respects_range_scale_transpose_and_timing(tmp_path):
    _, path = tiny_model(tmp_path)
    g = load_model(path).generator(seed=0)
    g.prime(history())
    g.warmup()
    params = SamplerParams(temperature=2.0, top_p=0.9, timing_temperature=1.5, pitch_min=50,
                           pitch_max=70, transpose=7, scale="major", root=2)
    allowed = set(pitch_classes(params.scale, params.root))
    for _ in range(300):
        pitch, step, dur, vel = g.next(params)
        assert 50 <= pitch <= 70 and pitch % 12 in allowed
        assert step >= 0 and dur > 0 and 1 <= vel <= 127
        assert isinstance(pitch, int) and isinstance(vel, int)


def test_state_hears_the_untransposed_pitch(tmp_path):
    _, path = tiny_model(tmp_path)
    m = load_model(path)
    played, listener = m.generator(seed=1), m.generator(seed=2)
    played.prime(history())
    listener.prime(history())
    pitch, step, dur, vel = played.next(SamplerParams(transpose=12))
    listener.observe(pitch - 12, step, dur, vel)
    for a, b in zip(played._hs + played._cs, listener._hs + listener._cs):
        assert np.array_equal(a, b)


def test_constraints_that_leave_no_pitch_fall_back_to_the_nearest_allowed(tmp_path):
    _, path = tiny_model(tmp_path)
    g = load_model(path).generator(seed=0)
    impossible = SamplerParams(pitch_min=0, pitch_max=10, transpose=48)  # needs model pitch < 0
    for _ in range(20):
        pitch, *_ = g.next(impossible)
        assert 0 <= pitch <= 10
    single = SamplerParams(pitch_min=61, pitch_max=61, scale="major")  # C# not in C major
    assert g.next(single)[0] == 61


def test_invalid_params_are_refused(tmp_path):
    _, path = tiny_model(tmp_path)
    g = load_model(path).generator()
    with pytest.raises(LivernnError, match="temperature"):
        g.next(SamplerParams(temperature=float("nan")))


def _corrupt_weights(path, mutate):
    weights = path / "model.safetensors"
    weights.write_bytes(mutate(weights.read_bytes()))


def _header(data: bytes) -> tuple[int, dict]:
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n])


def _nan_first_tensor(data: bytes) -> bytes:
    n, header = _header(data)
    begin = 8 + n + header["lstm.weight_hh_l0"]["data_offsets"][0]
    return data[:begin] + np.array([np.nan], np.float32).tobytes() + data[begin + 4:]


@pytest.mark.parametrize("case", ["pickle", "random", "truncated", "nan", "huge-header", "empty"])
def test_foreign_or_corrupt_weights_are_refused_in_one_line(tmp_path, case):
    model, path = tiny_model(tmp_path)
    mutate = {
        "pickle": lambda d: pickle.dumps(model.state_dict()),
        "random": lambda d: np.random.default_rng(0).bytes(len(d)),
        "truncated": lambda d: d[: len(d) // 2],
        "nan": _nan_first_tensor,
        "huge-header": lambda d: struct.pack("<Q", 1 << 40) + d[8:],
        "empty": lambda d: b"",
    }[case]
    _corrupt_weights(path, mutate)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert "\n" not in str(info.value) and "model.safetensors" in str(info.value)


def test_wrong_shapes_are_refused(tmp_path):
    _, small = tiny_model(tmp_path)
    other = ModelConfig(hidden=48, layers=2, embed=8, time_bins=16, vel_bins=8)
    torch.manual_seed(0)
    big = write_model(tmp_path / "big", other, NoteLSTM(other).state_dict(), {})
    (small / "config.json").write_bytes((big / "config.json").read_bytes())
    with pytest.raises(ModelError, match="shape"):
        load_model(small)


def test_a_torch_pickle_is_never_opened(tmp_path):
    model, _ = tiny_model(tmp_path)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ModelError, match="not a livernn model"):
        load_model(tmp_path / "model.pt")


@pytest.mark.parametrize("change", [
    {"format": "something-else"},
    {"model": {"hidden": 10_000_000}},
    {"model": {"hidden": 4096, "layers": 8, "time_bins": 1024}},
    {"model": {"layers": "two"}},
    {"model": {"bogus": 1}},
], ids=["foreign", "huge-hidden", "too-many-params", "bad-type", "unknown-key"])
def test_foreign_or_oversized_configs_are_refused_before_reading_weights(tmp_path, change):
    _, path = tiny_model(tmp_path)
    doc = json.loads((path / "config.json").read_text())
    for key, value in change.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) else value
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert "config.json" in str(info.value) and "\n" not in str(info.value)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no such model"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="missing model config"):
        load_model(tmp_path / "empty")


def test_the_shipped_model_loads_and_plays():
    assert default_model_path().name == "bach"
    m = load_model()
    assert m.name and m.ref_bpm == 120.0 and m.config.hidden <= 512
    g = m.generator(seed=0)
    g.warmup()
    notes = [g.next(SamplerParams()) for _ in range(200)]
    pitches = [n[0] for n in notes]
    assert min(pitches) >= 0 and max(pitches) <= 127 and len(set(pitches)) > 5
    chords = np.mean([n[1] == 0.0 for n in notes])
    assert 0.3 < chords < 0.9  # Bach chorales: about two thirds of the notes join a chord


def test_observing_garbage_timing_cannot_poison_the_state(tmp_path):
    _, path = tiny_model(tmp_path)
    g = load_model(path).generator(seed=0)
    for step, dur in ((float("nan"), 0.5), (float("inf"), float("inf")), (-3.0, -1.0), (1e300, 1e-300)):
        g.observe(60, step, dur, 80)
    assert all(np.isfinite(x).all() for x in g._hs + g._cs)
    pitch, step, dur, _vel = g.next(SamplerParams())
    assert 0 <= pitch <= 127 and step >= 0 and dur > 0

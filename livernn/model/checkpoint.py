"""Model files: ``model.safetensors`` (weights) + ``config.json`` (everything else).

Nothing in a model file can execute: weights are safetensors, the rest is JSON, and no
pickle is ever opened. Every file is checked *before* anything is allocated for it: the
JSON's size, the config's dimensions (bounded by ``config.LIMITS``), the safetensors
header's size, names, dtypes, shapes and offsets against the shapes the config implies,
and the file's length. Only then are the weights read, and they must be finite.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from livernn.errors import LivernnError
from livernn.model.config import N_PITCHES, ModelConfig

FORMAT = "livernn-note-lstm"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MAX_JSON_BYTES = 4 << 20
MAX_HEADER_BYTES = 1 << 20
MAX_PARAMS = 64_000_000  # 256 MB of float32: far above any model worth playing live


class ModelError(LivernnError):
    """A model file that is missing, foreign, corrupt, wrong-shaped, non-finite or too big."""


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor a model with this config has, by its torch state-dict name."""
    h = cfg.hidden
    shapes: dict[str, tuple[int, ...]] = {}
    if cfg.embed:
        shapes["embed.weight"] = (N_PITCHES, cfg.embed)
    if cfg.time_embed:
        shapes["step_embed.weight"] = (cfg.n_step, cfg.time_embed)
        shapes["dur_embed.weight"] = (cfg.n_dur, cfg.time_embed)
    for layer in range(cfg.layers):
        in_size = cfg.input_size if layer == 0 else h
        shapes[f"lstm.weight_ih_l{layer}"] = (4 * h, in_size)
        shapes[f"lstm.weight_hh_l{layer}"] = (4 * h, h)
        shapes[f"lstm.bias_ih_l{layer}"] = (4 * h,)
        shapes[f"lstm.bias_hh_l{layer}"] = (4 * h,)
    for name, n in (("step_head", cfg.n_step), ("dur_head", cfg.n_dur),
                    ("vel_head", cfg.vel_bins), ("pitch_head", N_PITCHES)):
        shapes[f"{name}.weight"] = (n, h)
        shapes[f"{name}.bias"] = (n,)
    if cfg.categorical and cfg.pitch_given_step:
        shapes["step_to_pitch.weight"] = (cfg.n_step, h)
    return shapes


def model_files(path: str | Path) -> tuple[Path, Path]:
    """(weights, config) for a model name, a model directory or either of its two files.

    A string is a name first (``"folk"``: the shipped models, then the user's, see
    ``livernn.library``), so the REPL, the CLI and scripts all take names; a ``Path`` is
    always a path.
    """
    from livernn.library import find_model

    p = find_model(path) if isinstance(path, str) else Path(path)
    if p.is_dir():
        return p / WEIGHTS_FILE, p / CONFIG_FILE
    if p.name == CONFIG_FILE or p.suffix == ".json":
        return p.with_name(WEIGHTS_FILE), p
    if p.suffix == ".safetensors":
        return p, p.with_name(CONFIG_FILE)
    if not p.exists():
        raise ModelError(f"{p}: no such model (give a directory with {WEIGHTS_FILE} and {CONFIG_FILE})")
    hint = f"; a patch plays with: livernn perform {p}" if p.suffix == ".toml" else ""  # `livernn play demo.toml`
    raise ModelError(f"{p}: not a livernn model (expected a directory with {WEIGHTS_FILE} and {CONFIG_FILE}){hint}")


def read_config(path: Path) -> tuple[ModelConfig, dict]:
    """Parse and check config.json; returns (model config, meta)."""
    if not path.is_file():
        raise ModelError(f"{path}: missing model config")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ModelError(f"{path}: config is {path.stat().st_size} bytes, more than {MAX_JSON_BYTES}")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # deep nesting: refused
        raise ModelError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"{path}: not a livernn model config (format must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise ModelError(f"{path}: model format version {doc.get('version')!r}, this livernn reads {VERSION}")
    try:
        cfg = ModelConfig.from_dict(doc.get("model") or {})
    except (LivernnError, TypeError) as exc:
        raise ModelError(f"{path}: {exc}") from None
    n_params = sum(math.prod(s) for s in expected_shapes(cfg).values())
    if n_params > MAX_PARAMS:
        raise ModelError(f"{path}: model would have {n_params} parameters, more than {MAX_PARAMS}")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: meta must be a JSON object")
    return cfg, meta


def read_safetensors_header(path: Path) -> tuple[dict, int, int]:
    """A safetensors file's header (``__metadata__`` dropped), its length and the file's size,
    checked before any tensor data is read: model files and resume checkpoints alike."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelError(f"{path}: truncated (no safetensors header)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise ModelError(f"{path}: not a safetensors file (header length {n} for a {size}-byte file)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ModelError(f"{path}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: not a safetensors file (header is not an object)")
    header.pop("__metadata__", None)
    return header, n, size


def read_weights(path: Path, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Check the safetensors header against ``cfg`` before reading any tensor data."""
    if not path.is_file():
        raise ModelError(f"{path}: missing model weights")
    expected = expected_shapes(cfg)
    header, n, size = read_safetensors_header(path)
    if set(header) != set(expected):
        missing, extra = set(expected) - set(header), set(header) - set(expected)
        what = f"missing {sorted(missing)[:3]}" if missing else f"unexpected {sorted(extra)[:3]}"
        raise ModelError(f"{path}: weights do not match config.json ({what})")
    end = 0
    for name, shape in expected.items():
        info = header[name]
        if not isinstance(info, dict) or info.get("dtype") != "F32":
            raise ModelError(f"{path}: tensor {name} must be F32")
        if tuple(info.get("shape", ())) != shape:
            raise ModelError(f"{path}: tensor {name} has shape {info.get('shape')}, config says {list(shape)}")
        offsets = info.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and o >= 0 for o in offsets)):
            raise ModelError(f"{path}: tensor {name} has no valid data offsets")
        begin, stop = offsets
        if stop - begin != 4 * math.prod(shape):
            raise ModelError(f"{path}: tensor {name} has inconsistent offsets")
        end = max(end, stop)
    if 8 + n + end != size:
        raise ModelError(f"{path}: truncated or padded ({size} bytes, header implies {8 + n + end})")
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{path}: unreadable weights ({exc.__class__.__name__})") from None
    for name, arr in arrays.items():
        if not np.isfinite(arr).all():
            raise ModelError(f"{path}: tensor {name} holds NaN or infinite values")
    return arrays


def read_model(path: str | Path) -> tuple[ModelConfig, dict, dict[str, np.ndarray], Path]:
    """Validated (config, meta, weights, model directory) for a model path."""
    weights_path, config_path = model_files(path)
    cfg, meta = read_config(config_path)
    return cfg, meta, read_weights(weights_path, cfg), config_path.parent


def write_model(out_dir: str | Path, cfg: ModelConfig, state: dict, meta: dict) -> Path:
    """Write weights + config atomically (temp files, then rename) and return the directory."""
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shapes = expected_shapes(cfg)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in state.items() if k in shapes}
    if set(tensors) != set(shapes):
        raise ModelError(f"{out}: state does not match config (missing {sorted(set(shapes) - set(tensors))[:3]})")
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ModelError(f"refusing to save {out}: tensor {name} is not finite")
    tmp_w, tmp_c = out / (WEIGHTS_FILE + ".tmp"), out / (CONFIG_FILE + ".tmp")
    save_file(tensors, str(tmp_w))
    doc = {"format": FORMAT, "version": VERSION, "model": cfg.to_dict(), "meta": meta}
    tmp_c.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    os.replace(tmp_w, out / WEIGHTS_FILE)
    os.replace(tmp_c, out / CONFIG_FILE)
    return out


def load_torch_model(path: str | Path):
    """A ``NoteLSTM`` (eval mode, CPU) with validated weights, plus (meta, directory)."""
    import torch

    from livernn.model.net import NoteLSTM

    cfg, meta, arrays, directory = read_model(path)
    model = NoteLSTM(cfg)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
    return model.eval(), meta, directory

"""Resumable training state without pickle: optimizer tensors in safetensors, the rest JSON.

``torch.save`` would pickle the optimizer; a checkpoint directory must be as safe to open
as a model file, so AdamW's per-parameter tensors are flattened into safetensors and its
hyper-parameters, the step counter and the RNG seeds of the run go into JSON.

A resume directory is a file from outside like any model: it gets the checks model files
get (``livernn.model.checkpoint``) before anything is allocated for it or handed to the
optimizer: the JSON's size and fields, the safetensors header's size, names, dtypes,
shapes and offsets against the optimizer this run built, the file's length, finite
values. Anything else is a ``ModelError`` with a one-line reason, never a raw
``KeyError``/``ValueError`` from deep inside torch.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from livernn.model.checkpoint import MAX_JSON_BYTES, ModelError, read_safetensors_header

OPTIM_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer.json"
RNG_KEY = "rng.torch"
IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")
INFO_KEYS = {"epoch": int, "step": int, "best": float, "bad_epochs": int, "elapsed_s": float}
_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.uint8: "U8", torch.int64: "I64"}


def save_trainer_state(directory: Path, optimizer: torch.optim.Optimizer, info: dict) -> None:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            tensors[f"{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors[RNG_KEY] = torch.get_rng_state()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    tmp = directory / (OPTIM_FILE + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, directory / OPTIM_FILE)
    doc = {**info, "param_groups": groups}
    tmp = directory / (TRAINER_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, directory / TRAINER_FILE)


def _expected(optimizer: torch.optim.Optimizer) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (safetensors dtype, shape) of every tensor this optimizer's state holds."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    idx = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            shape = tuple(p.shape)
            out[f"{idx}.step"] = ("F32", ())
            out[f"{idx}.exp_avg"] = ("F32", shape)
            out[f"{idx}.exp_avg_sq"] = ("F32", shape)
            if group.get("amsgrad"):
                out[f"{idx}.max_exp_avg_sq"] = ("F32", shape)
            idx += 1
    out[RNG_KEY] = ("U8", (torch.get_rng_state().numel(),))
    return out


def _check_header(path: Path, expected: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """The safetensors header against ``expected``, before any tensor data is read."""
    if not path.is_file():
        raise ModelError(f"{path}: missing optimizer state (not a resumable training directory)")
    header, n, size = read_safetensors_header(path)
    # A parameter that never had a gradient has no state: all of its tensors or none.
    have = {name.split(".", 1)[0] for name in header if name != RNG_KEY}
    wanted = {name for name in expected if name == RNG_KEY or name.split(".", 1)[0] in have}
    if set(header) != wanted:
        missing, extra = wanted - set(header), set(header) - set(expected)
        what = f"unexpected {sorted(extra)[:3]}" if extra else f"missing {sorted(missing)[:3]}"
        raise ModelError(f"{path}: optimizer state does not fit this model ({what})")
    end = 0
    for name in wanted:
        dtype, shape = expected[name]
        info = header[name]
        if not isinstance(info, dict) or info.get("dtype") != dtype:
            raise ModelError(f"{path}: tensor {name} must be {dtype}")
        if tuple(info.get("shape", ())) != shape:
            raise ModelError(f"{path}: tensor {name} has shape {info.get('shape')}, this model needs {list(shape)}")
        offsets = info.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and o >= 0 for o in offsets)):
            raise ModelError(f"{path}: tensor {name} has no valid data offsets")
        width = 1 if dtype == "U8" else 4
        if offsets[1] - offsets[0] != width * math.prod(shape):
            raise ModelError(f"{path}: tensor {name} has inconsistent offsets")
        end = max(end, offsets[1])
    if 8 + n + end != size:
        raise ModelError(f"{path}: truncated or padded ({size} bytes, header implies {8 + n + end})")


def _read_info(path: Path, optimizer: torch.optim.Optimizer) -> tuple[dict, list[dict]]:
    """trainer.json, checked: its size, the counters, and param groups that fit ``optimizer``."""
    if not path.is_file():
        raise ModelError(f"{path}: missing trainer state (not a resumable training directory)")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ModelError(f"{path}: trainer state is {path.stat().st_size} bytes, more than {MAX_JSON_BYTES}")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{path}: not a livernn trainer state (a JSON object is needed)")
    info = {}
    for key, kind in INFO_KEYS.items():
        value = doc.get(key)
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and (kind is float or float(value).is_integer()) and not math.isnan(value)
              and (key == "best" or (math.isfinite(value) and value >= 0)))
        if not ok:
            raise ModelError(f"{path}: not a livernn trainer state ({key} must be a "
                             f"{'non-negative integer' if kind is int else 'number'}, got {value!r})")
        info[key] = kind(value)
    groups = doc.get("param_groups")
    own = optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(own):
        raise ModelError(f"{path}: optimizer groups do not fit this model ({len(own)} needed)")
    checked = []
    for mine, theirs in zip(own, groups):
        if not isinstance(theirs, dict) or theirs.get("params") != mine["params"]:
            raise ModelError(f"{path}: optimizer groups do not fit this model (parameter lists differ)")
        group = dict(mine)
        for key, value in theirs.items():
            # How this run's optimizer computes its update (fused or not) is its own choice, not
            # a setting to restore: a state saved before AdamW was fused resumes into a fused one.
            if key in ("params", *IMPLEMENTATION_KEYS) or key not in mine:
                continue
            if not _same_kind(mine[key], value):
                raise ModelError(f"{path}: optimizer setting {key} must look like {mine[key]!r}, got {value!r}")
            group[key] = tuple(value) if isinstance(mine[key], tuple) else value
        checked.append(group)
    return info, checked


def _same_kind(ours, theirs) -> bool:
    if ours is None or isinstance(ours, bool):
        return type(theirs) is type(ours)
    if isinstance(ours, (int, float)):
        return (isinstance(theirs, (int, float)) and not isinstance(theirs, bool)
                and math.isfinite(theirs))
    if isinstance(ours, (tuple, list)):
        return (isinstance(theirs, list) and len(theirs) == len(ours)
                and all(_same_kind(a, b) for a, b in zip(ours, theirs)))
    return type(theirs) is type(ours)


def load_trainer_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer and torch's RNG from ``directory``; return the trainer info.

    Every file is checked first (see the module docstring); on any problem the optimizer
    and the RNG are left as they were and a one-line ``ModelError`` says what is wrong.
    """
    directory = Path(directory)
    info, groups = _read_info(directory / TRAINER_FILE, optimizer)
    path = directory / OPTIM_FILE
    expected = _expected(optimizer)
    _check_header(path, expected)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{path}: unreadable optimizer state ({exc.__class__.__name__})") from None
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name == RNG_KEY:
            continue
        if not torch.isfinite(value).all() or (name.endswith("sq") and (value < 0).any()):
            raise ModelError(f"{path}: tensor {name} holds NaN, infinite or impossible values")
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        torch.set_rng_state(tensors[RNG_KEY])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:  # checked above: a torch change
        raise ModelError(f"{directory}: optimizer state does not fit this model ({exc.__class__.__name__})") from None
    return info

"""Resumable training state without pickle: optimizer tensors in safetensors, the rest JSON.

``torch.save`` would pickle the optimizer; a checkpoint directory must be as safe to open
as a model file, so AdamW's per-parameter tensors are flattened into safetensors and its
hyper-parameters, the step counter and the RNG seeds of the run go into JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from livernn.model.checkpoint import ModelError

OPTIM_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer.json"


def save_trainer_state(directory: Path, optimizer: torch.optim.Optimizer, info: dict) -> None:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            tensors[f"{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    tmp = directory / (OPTIM_FILE + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, directory / OPTIM_FILE)
    doc = {**info, "param_groups": groups}
    tmp = directory / (TRAINER_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, directory / TRAINER_FILE)


def load_trainer_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer and torch's RNG from ``directory``; return the trainer info."""
    try:
        doc = json.loads((directory / TRAINER_FILE).read_text())
        tensors = load_file(str(directory / OPTIM_FILE))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory}: no resumable training state ({exc.__class__.__name__})") from None
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name == "rng.torch":
            continue
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": doc.pop("param_groups")})
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{directory}: optimizer state does not fit this model ({exc})") from None
    torch.set_rng_state(tensors["rng.torch"])
    return doc

"""Fine-tuning: a trained model's weights, a little more training on new material.

Two callers: ``learn(v)`` (livernn.engine.learn, through the process in
``livernn.train.learn``) tunes a voice's model on what it and its player just played, a
few hundred notes in seconds; ``livernn train --init MODEL`` starts a whole training run
from a model's weights instead of random ones (``init_recipe``).

Either way the architecture is the model's: a fine-tune can change weights, never shapes.
A recipe may still set the dropout; any other ``[model]`` key it sets must equal the
model's, or the run stops before it starts with one line naming the key.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from livernn.data.windows import WindowSet
from livernn.errors import LivernnError
from livernn.model.checkpoint import read_model
from livernn.model.config import ModelConfig
from livernn.model.net import LossWeights, NoteLSTM, model_step, total_loss
from livernn.train.config import Recipe
from livernn.train.evaluate import evaluate

TUNABLE = ("dropout",)  # [model] keys a fine-tune may change; the rest are the weights' shapes and meaning


def explicit_model_keys(recipe_path: str | Path | None, overrides: dict) -> set[str]:
    """The ``[model]`` keys a recipe file and the CLI's overrides set (not defaulted)."""
    keys = {k.split(".", 1)[1] for k in overrides if k.startswith("model.")}
    if recipe_path is not None:  # load_recipe has read and checked it already
        doc = tomllib.loads(Path(recipe_path).read_text(encoding="utf-8"))
        keys |= set(doc.get("model", {}))
    return keys


def compatible(base: ModelConfig, asked: ModelConfig, keys: Iterable[str], what: str) -> ModelConfig:
    """``base`` (the model's config) with the tunable keys of ``asked`` that were set;
    a LivernnError naming the first architecture key ``asked`` sets differently."""
    cfg = base
    for key in sorted(keys):
        mine, theirs = getattr(base, key), getattr(asked, key)
        if key in TUNABLE:
            cfg = replace(cfg, **{key: theirs})
        elif mine != theirs:
            raise LivernnError(f"{what} has {key} = {mine!r}, the recipe asks for {theirs!r}: fine-tuning keeps "
                               f"the model's architecture (set only {', '.join(TUNABLE)}, or train from scratch)")
    return cfg.validated()


def init_recipe(recipe: Recipe, init: str | Path, keys: Iterable[str]) -> tuple[Recipe, dict[str, np.ndarray], dict]:
    """The recipe a ``--init`` run trains (the model's architecture), the model's weights
    and what to record about it. A name or a path, checked like any model file."""
    cfg, meta, arrays, directory = read_model(init)
    what = f"--init {init}"
    recipe = replace(recipe, model=compatible(cfg, recipe.model, keys, what))
    return recipe, arrays, {"name": str(meta.get("name") or directory.name), "path": str(directory)}


def nll(model: NoteLSTM, pieces: list[np.ndarray], weights: LossWeights, device: torch.device | str) -> float:
    """The model's NLL per note on ``pieces`` (every head; the training loss's total)."""
    return float(evaluate(model, pieces, weights, device, detail=False)["total"])


def finetune(model: NoteLSTM, pieces: list[np.ndarray], *, seconds: float, steps: int | None = None,
             lr: float = 1e-3, seq_len: int = 64, batch_size: int = 16, seed: int = 0,
             device: torch.device | str = "cpu", weights: LossWeights | None = None,
             progress: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """Train ``model`` in place on random windows of ``pieces`` until ``seconds`` have
    passed or ``steps`` steps are done; returns the NLL per note before and after, the
    steps taken and the seconds spent. Adam without weight decay, gradients clipped at 1:
    a few hundred steps on a few hundred notes, nudging a trained model, not remaking it."""
    weights = weights or LossWeights()
    if not pieces or sum(len(p) for p in pieces) < 2:
        raise LivernnError("nothing to learn from: fewer than 2 notes")
    windows = WindowSet(pieces, seq_len, stride=1)
    gen = torch.Generator().manual_seed(seed)
    before = nll(model, pieces, weights, device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start = time.monotonic()
    step, last_loss = 0, math.nan
    while (steps is None or step < steps) and time.monotonic() - start < seconds:
        idx = torch.randint(len(windows), (batch_size,), generator=gen)
        batch = {k: v.to(device) for k, v in windows.batch(idx).items()}
        loss = total_loss(model_step(model, batch), weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        last_loss = float(loss.detach())
        if progress is not None:
            progress(step, last_loss)
    spent = time.monotonic() - start
    model.eval()
    return {"before": before, "after": nll(model, pieces, weights, device), "steps": step,
            "seconds": spent, "last_loss": last_loss}

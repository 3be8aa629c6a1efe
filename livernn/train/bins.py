"""Give a trained model its bin values (``step_values``/``dur_values``) without retraining.

The seconds a sampled step or duration bin plays are not weights: they are a statistic of
the training data, the median of the training split's times in each bin
(``loop.bin_values``), which training stores when the data is quantised (see
``model.config``). A model trained before the fields existed (the shipped bach and folk)
draws a time log-uniformly inside its 6%-wide bin, so its sampled rhythm leaves the
data's grid (issue 14). ``add_bin_values`` computes the values from the model's training
split, exactly as training would have, and writes them into its ``config.json``:

- the split is the one the model was trained on: the hash split of ``data_dir`` with the
  recipe's ``max_files`` and ``group_versions`` as ``meta.recipe.train`` records them (a
  recipe without ``group_versions`` predates version grouping: ungrouped), read in the
  time unit ``meta.recipe.data.time`` records (none: seconds, the run predates the option);
- the training split must be quantised (``meta.data.grid_share`` >= ``augment.QUANTIZED``,
  the same test as training); performed MIDI keeps the spread inside a bin;
- ``config.json`` is rewritten with only ``model.step_values``, ``model.dur_values`` and
  ``meta.bin_values`` added (where they came from: the folder, the split's files and notes,
  its grid share, and whether those are the files the model was trained on), everything
  else as it was; the weights are not touched.

``livernn bin-values MODEL --data DIR`` is the command.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from livernn.data.augment import QUANTIZED
from livernn.errors import LivernnError
from livernn.model.checkpoint import ModelError, model_files, read_config
from livernn.model.config import ModelConfig
from livernn.train.config import DataConfig, Recipe, TrainConfig, model_time_unit

TOOL = "livernn bin-values"


def training_recipe(meta: dict) -> Recipe:
    """The split settings of the model's own training run, from its meta (defaults where absent;
    ``group_versions`` absent = false: the run predates version grouping)."""
    recipe = meta.get("recipe")
    table = recipe.get("train") if isinstance(recipe, dict) else None
    table = table if isinstance(table, dict) else {}
    max_files, group = table.get("max_files", 0), table.get("group_versions", False)
    if not (isinstance(max_files, int) and max_files >= 0 and isinstance(group, bool)):
        raise LivernnError(f"the model's meta.recipe.train has max_files {max_files!r}, group_versions {group!r}")
    return Recipe(data=DataConfig(time=model_time_unit(meta)),
                  train=TrainConfig(max_files=max_files, group_versions=group))


def compute_bin_values(cfg: ModelConfig, meta: dict, data_dir: str | Path, *, cache_dir: str | None = None,
                       workers: int | None = None) -> tuple[list[float], list[float], dict[str, Any]]:
    """(step_values, dur_values, record for meta.bin_values) from the model's training split of
    ``data_dir``; a one-line LivernnError when the model has no bins or the data is not quantised."""
    from livernn.train.loop import bin_values, load_splits

    if not cfg.categorical:
        raise LivernnError("the model has regression timing heads: no time bins to give values to")
    recipe = training_recipe(meta)
    recipe = replace(recipe, model=cfg, train=replace(recipe.train, cache_dir=cache_dir or "", workers=workers or 0))
    pieces, stats = load_splits(Path(data_dir), recipe, progress=False, verbose=False)
    if not stats["quantized"]:
        raise LivernnError(f"{data_dir}: the training split is not quantised ({100 * stats['grid_share']:.1f}% "
                           f"of steps on their grid, {100 * QUANTIZED:.0f}% needed): bin values are for "
                           "quantised data; a model of performed MIDI keeps the spread inside each bin")
    steps, durs = bin_values(cfg, pieces["train"])
    if len(steps) != cfg.n_step or len(durs) != cfg.n_dur:  # bin_values follows cfg; a guard, not a path
        raise LivernnError(f"bin values {len(steps)}/{len(durs)} do not match the model's bins "
                           f"{cfg.n_step}/{cfg.n_dur}")
    trained = meta.get("data") or {}
    t = recipe.train
    record: dict[str, Any] = {
        "by": TOOL, "data": str(data_dir), "split": "train", "files": stats["files"]["train"],
        "notes": stats["notes"]["train"], "grid_share": stats["grid_share"],
        "group_versions": t.group_versions, "max_files": t.max_files,
    }
    same = ((trained.get("files") or {}).get("train") == record["files"]
            and (trained.get("notes") or {}).get("train") == record["notes"])
    record["same_as_training"] = bool(same)
    return steps, durs, record


def add_bin_values(model: str | Path, data_dir: str | Path, *, cache_dir: str | None = None,
                   workers: int | None = None, replace_existing: bool = False) -> dict[str, Any]:
    """Compute the model's bin values from its training split of ``data_dir`` and write them
    into its config.json (nothing else changes); returns the ``meta.bin_values`` record."""
    _, config_path = model_files(model)
    cfg, meta = read_config(config_path)
    if (cfg.step_values or cfg.dur_values) and not replace_existing:
        source = (meta.get("bin_values") or {}).get("data") or "its training data"
        raise LivernnError(f"{config_path}: the model already has bin values (from {source}); "
                           "--replace to compute them again")
    steps, durs, record = compute_bin_values(cfg, meta, data_dir, cache_dir=cache_dir, workers=workers)
    doc = json.loads(config_path.read_bytes().decode("utf-8"))
    doc["model"] = {**doc["model"], "step_values": steps, "dur_values": durs}
    doc["meta"] = {**(doc.get("meta") or {}), "bin_values": record}
    ModelConfig.from_dict(doc["model"])  # the loader's own check (lengths = bins) before anything is written
    tmp = config_path.with_name(config_path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    try:
        read_config(tmp)
    except ModelError:
        tmp.unlink()
        raise
    os.replace(tmp, config_path)
    return record

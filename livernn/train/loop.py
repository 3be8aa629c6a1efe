"""The training loop, top to bottom: data, model, AdamW + warm-up/cosine, epochs, checkpoints.

One process trains on CPU, CUDA or MPS; under DDP (WORLD_SIZE > 1: ``livernn train``'s own
processes on a multi-core CPU, ``train.spawn``, or ``torchrun``) each process takes its share
of every batch (``data.windows.epoch_batches``) and DDP averages gradients (gloo on CPU,
nccl on CUDA); only rank 0 logs and writes files. The output directory ends up holding the best model
(``model.safetensors`` + ``config.json``, loadable by ``livernn.model.load_model``) plus
``last/`` (resumable), ``epochs/`` (one model per epoch), ``metrics.jsonl`` and ``loss.png``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from livernn.data import WindowSet, epoch_batches
from livernn.data.augment import QUANTIZED, corpus_grid_share
from livernn.data.split import split_files
from livernn.errors import LivernnError
from livernn.model.checkpoint import read_model, write_model
from livernn.model.config import ModelConfig
from livernn.model.net import HEADS, NoteLSTM, model_step, time_bins_t, total_loss
from livernn.notes import chord_rate
from livernn.train.config import Recipe
from livernn.train.evaluate import class_log_priors, evaluate, references
from livernn.train.finetune import init_recipe
from livernn.train.plots import plot_losses
from livernn.train.state import load_trainer_state, save_trainer_state


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` prefers CUDA, then MPS, then CPU; an explicit device must exist."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else (
            "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise LivernnError("--device cuda: no CUDA GPU is available (try --device cpu)")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LivernnError("--device mps: Metal is not available (try --device cpu)")
    return torch.device(name)


def make_optimizer(model: torch.nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.AdamW:
    """AdamW per the recipe; fused (one kernel over all parameters: the same update, a
    third of the foreach version's time on CPU) where torch has that kernel for the device."""
    t = recipe.train
    return torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, betas=(0.9, t.beta2),
                             fused=device.type in ("cpu", "cuda") or None)


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_frac``."""
    t = recipe.train
    warm = min(1.0, (step + 1) / max(1, t.warmup_steps))
    progress = min(1.0, step / max(1, total))
    cos = t.min_lr_frac + (1 - t.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))
    return t.lr * warm * cos


def load_splits(data_dir: Path, recipe: Recipe, *, progress: bool, verbose: bool = True) -> tuple[dict, dict]:
    """Note arrays per split (versions of one piece kept together), and the data facts for config.json."""
    t = recipe.train
    found = split_files(data_dir, max_files=t.max_files or None, cache_dir=t.cache_dir or None,
                        workers=t.workers or None, progress=progress, group=t.group_versions,
                        time=recipe.data.time, ref_bpm=recipe.model.ref_bpm)
    pieces = {split: [found.notes[p] for p in paths] for split, paths in found.files.items()}
    stats = {"root": str(data_dir), "files": {s: len(v) for s, v in pieces.items()},
             "notes": {s: int(sum(len(n) for n in v)) for s, v in pieces.items()},
             "skipped": found.skipped, "time": recipe.data.time,
             "grouped": {"files": found.grouped, "groups": len(found.groups), "moved": found.moved}}
    if not pieces["train"] or not pieces["val"]:
        raise LivernnError(f"{data_dir}: need MIDI files in both train and val splits "
                           f"(found {stats['files']}); add files or raise --max-files")
    if verbose and found.groups:
        print(f"{found.grouped} files are versions of {len(found.groups)} pieces: each kept in one split "
              f"({found.moved} moved)", flush=True)
    train_notes = np.concatenate(pieces["train"])
    stats["chord_rate"] = chord_rate(train_notes)
    grid_share = corpus_grid_share(pieces["train"])
    stats["grid_share"] = grid_share
    stats["quantized"] = grid_share >= QUANTIZED
    vals, counts = np.unique(train_notes["pitch"], return_counts=True)
    vvals, vcounts = np.unique(train_notes["velocity"], return_counts=True)
    stats["start_note"] = {"pitch": int(vals[counts.argmax()]), "step": 0.0,
                           "duration": float(np.median(train_notes["duration"])),
                           "velocity": int(vvals[vcounts.argmax()])}
    return pieces, stats


def bin_values(cfg: ModelConfig, pieces: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """The median seconds of the training notes' steps and durations in each of the model's
    bins (a bin no note fell in: its log-centre; the chord bin: 0 if empty), what the
    generator plays for a sampled bin of a model trained on quantised data (see config)."""
    notes = np.concatenate(pieces)
    edges = cfg.time_edges()
    t = {k: torch.from_numpy(notes[k].astype(np.float32)) for k in ("step", "duration")}
    sbin, dbin = time_bins_t(cfg, t["step"], t["duration"], torch.tensor(edges, dtype=torch.float32))
    centre = np.sqrt(edges[:-1] * edges[1:])
    out = []
    for bins, seconds, default in ((sbin.numpy(), notes["step"], [0.0, *centre]),
                                   (dbin.numpy(), notes["duration"], list(centre))):
        values = []
        for k, fallback in enumerate(default):
            inside = seconds[bins == k]
            values.append(round(float(np.median(inside)), 6) if len(inside) else float(fallback))
        out.append(values)
    return out[0], out[1]


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def train(recipe: Recipe, data_dir: str | Path, out_dir: str | Path, *,
          resume: bool = False, progress: bool = True, init: str | Path | None = None,
          init_keys: Iterable[str] = (), split_batch: bool = False, threads_after: int = 0) -> dict:
    """Train per ``recipe``; returns the final metrics (also in ``out_dir/config.json``).

    ``init``: start from this model's weights (a name or a path) instead of random ones;
    its architecture is kept, and a ``[model]`` key in ``init_keys`` (the ones the recipe
    set) that differs from it is a one-line error (``train.finetune.init_recipe``).

    Under DDP, ``split_batch`` (``livernn train``'s own processes, ``train.spawn``) gives each
    process an equal share of the recipe's batch, so the global batch is the recipe's; under
    ``torchrun`` each process takes the whole ``batch_size``. ``threads_after``: the torch
    threads rank 0 scores the best model with once the others have left (0: unchanged).
    """
    init_weights, init_info = None, None
    if init is not None:
        if resume:
            raise LivernnError("--init and --resume: a resumed run continues from OUT/last; give one of them")
        recipe, init_weights, init_info = init_recipe(recipe, init, init_keys)
    t, cfg = recipe.train, recipe.model
    rank, world, local_rank = _distributed()
    device = pick_device(t.device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    main = rank == 0
    if split_batch and t.batch_size % world:
        raise LivernnError(f"batch_size {t.batch_size} does not split evenly across {world} processes")
    batch_size = t.batch_size // world if split_batch else t.batch_size
    if t.threads:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed + rank)
    np.random.seed(t.seed + rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    out, data_dir = Path(out_dir), Path(data_dir)

    # -- data: rank 0 parses (and fills the cache) first, the others then read the cache
    if world > 1 and not main:
        dist.barrier()
    pieces, stats = load_splits(data_dir, recipe, progress=progress and main, verbose=main)
    if world > 1 and main:
        dist.barrier()
    windows = WindowSet(pieces["train"], t.seq_len, t.stride or None)
    augment = recipe.augment
    if stats["quantized"] and augment.stretch and not augment.stretch_quantized:
        augment = replace(augment, stretch=0.0)
        if main:
            print(f"training data is quantised ({100 * stats['grid_share']:.1f}% of steps on their grid): "
                  "no tempo stretch (set augment.stretch_quantized = true to stretch anyway)", flush=True)
    stats["stretch"] = augment.stretch
    if cfg.categorical and init_weights is None:  # a model started from keeps its own bin values
        # Quantised data: a sampled bin plays the data's own value in it (on the grid);
        # performed data keeps the expressive spread inside a bin (config's docstring).
        values = bin_values(cfg, pieces["train"]) if stats["quantized"] else ([], [])
        cfg = replace(cfg, step_values=values[0], dur_values=values[1]).validated()
        recipe = replace(recipe, model=cfg)

    # -- model and optimiser
    model = NoteLSTM(cfg)
    model.feature_gain = float(t.feature_gain)
    if t.prior_init and init_weights is None:  # a resumed run's weights replace these below
        model.set_output_priors(class_log_priors(cfg, pieces["train"]))
    if init_weights is not None:
        model.import_state({k: torch.from_numpy(v) for k, v in init_weights.items()})
    model = model.to(device)
    opt = make_optimizer(model, recipe, device)
    def batches_of(epoch: int) -> list[torch.Tensor]:  # the same in every process: see epoch_batches
        return epoch_batches(windows.lengths, batch_size, t.seed + epoch, world=world, rank=rank,
                             pool=t.length_pool)

    steps_per_epoch = len(batches_of(0))
    total_steps = steps_per_epoch * t.epochs
    start_epoch, step, best, bad, elapsed = 0, 0, float("inf"), 0, 0.0
    if resume:
        last = out / "last"
        _, _, arrays, _ = read_model(last)
        model.import_state({k: torch.from_numpy(v) for k, v in arrays.items()})
        info = load_trainer_state(last, opt)
        start_epoch, step, best, bad, elapsed = (info["epoch"] + 1, info["step"], info["best"],
                                                 info["bad_epochs"], info["elapsed_s"])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    amp_dtype = None
    if device.type == "cuda" and t.amp != "off":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else nullcontext

    meta_base = {"name": out.name, "data": stats, "recipe": recipe.to_dict(), "seed": t.seed,
                 "start_note": stats["start_note"], **({"init": init_info} if init_info else {}),
                 "hardware": {"device": str(device), "world_size": world, "batch_per_process": batch_size,
                              "torch": torch.__version__,
                              "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}}
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            (out / "metrics.jsonl").write_text("")
    gen = torch.Generator().manual_seed(t.seed * 1000 + rank)
    wall0 = time.perf_counter()

    for epoch in range(start_epoch, t.epochs):
        model.train()
        sums, n_notes, t0 = {h: 0.0 for h in HEADS}, 0, time.perf_counter()
        batches = batches_of(epoch)
        bar = None
        if progress and main:
            from tqdm import tqdm

            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch", leave=False)
        try:
            for idx in batches if bar is None else bar:
                batch = augment(windows.batch(idx, trim=True), gen)
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total_steps, recipe)
                with autocast():
                    losses = model_step(net, batch)
                    loss = total_loss(losses, recipe.loss)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
                scaler.step(opt)
                scaler.update()
                step += 1
                n = int(batch["mask"][:, 1:].sum())
                n_notes += n
                for h in HEADS:
                    sums[h] += float(losses[h].detach()) * n
                if bar is not None:
                    bar.set_postfix({h[:3]: f"{sums[h] / n_notes:.3f}" for h in HEADS})
        except torch.cuda.OutOfMemoryError:
            raise LivernnError(
                f"CUDA out of memory with batch {batch_size} x seq {t.seq_len} "
                f"(hidden {cfg.hidden}, layers {cfg.layers}); try --batch-size {max(1, t.batch_size // 2)} "
                f"or --seq-len {max(2, t.seq_len // 2)}") from None
        train_s = time.perf_counter() - t0
        elapsed += train_s
        val = evaluate(model, pieces["val"], recipe.loss, device, detail=False)
        record = {"epoch": epoch + 1, "step": step, "lr": opt.param_groups[0]["lr"],
                  "train": {h: sums[h] / max(n_notes, 1) for h in HEADS},
                  "val": {h: val[h] for h in (*HEADS, "total")},
                  "notes_per_s": n_notes * world / train_s, "epoch_s": train_s, "elapsed_s": elapsed,
                  "wall_s": time.perf_counter() - wall0}
        record["train"]["total"] = float(total_loss({h: torch.tensor(v) for h, v in record["train"].items()},
                                                    recipe.loss))
        improved = val["total"] < best
        best, bad = (val["total"], 0) if improved else (best, bad + 1)
        if main:
            meta = {**meta_base, "metrics": {"epoch": epoch + 1, "val": record["val"]}}
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if improved:
                write_model(out, cfg, model.export_state(), meta)
            write_model(out / "last", cfg, model.export_state(), meta)
            save_trainer_state(out / "last", opt, {"epoch": epoch, "step": step, "best": best,
                                                   "bad_epochs": bad, "elapsed_s": elapsed})
            if t.epoch_checkpoints:
                write_model(out / "epochs" / f"epoch_{epoch + 1:03d}", cfg, model.export_state(), meta)
            plot_losses(out / "metrics.jsonl", out / "loss.png")
            print(f"epoch {epoch + 1}: train {record['train']['total']:.3f} val {val['total']:.3f} "
                  f"(pitch {val['pitch']:.3f} step {val['step']:.3f} dur {val['duration']:.3f} "
                  f"vel {val['velocity']:.3f}) {record['notes_per_s']:.0f} notes/s"
                  f"{' *' if improved else ''}", flush=True)
        stop = bad >= t.patience or bool(t.time_limit_min and elapsed > 60 * t.time_limit_min)
        if world > 1:  # rank 0's clock and verdict: a rank that stopped alone would hang the others
            flag = torch.tensor([int(stop)], device=device)
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            break

    result = {}
    if world > 1:
        dist.barrier()
    if main:
        if threads_after:
            torch.set_num_threads(threads_after)
        result = finalize(out, pieces, recipe, device)
    if world > 1:
        dist.destroy_process_group()
    return result


def finalize(out: Path, pieces: dict, recipe: Recipe, device: torch.device) -> dict:
    """Score the best model on val and test (and the unigram), and store it in config.json."""
    cfg, meta, arrays, _ = read_model(out)
    model = NoteLSTM(cfg).to(device)  # from the file: feature gain 1
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    results: dict[str, dict[str, float] | int | float] = {}
    for split in ("val", "test"):
        if pieces[split]:
            scores = evaluate(model, pieces[split], recipe.loss, device)
            scores.update(references(cfg, pieces["train"], pieces[split]))
            results[split] = scores
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    results["epochs_run"] = len(lines)
    results["train_s"] = lines[-1]["elapsed_s"] if lines else 0.0
    results["notes_per_s"] = float(np.mean([r["notes_per_s"] for r in lines])) if lines else 0.0
    meta["metrics"] = {**meta.get("metrics", {}), **results}
    write_model(out, cfg, model.export_state(), meta)
    return meta["metrics"]

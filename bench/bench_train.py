"""Training throughput: livernn's recipes against an original-style model, in one process.

Run: .venv/bin/python bench/bench_train.py [--data DIR] [--seconds S] [--rounds R] [--threads N]
All models train on the same windows (the train split of DIR if given, else random notes)
with their own recipe's batch and sequence length, the training loop's optimizer (fused
AdamW) and its clipping; a note is one predicted position (inputs x targets), as the
loop's ``notes_per_s`` counts. The rows:

- ``default``: what ``livernn train --data DIR`` trains with no config (ModelConfig and
  TrainConfig defaults: 2 x 256, pitch embedding 64, time-bin embeddings 16, categorical
  heads, batch 64, seq 64); issue 14's throughput target is about this one;
- ``bach``: training/bach.toml (the shipped model: batch 32, times as numbers);
- ``original``: training/original.toml (1 x 128, pitch as one number, seq 50, regression
  heads), the in-process baseline every ratio is against: on a noisy machine the ratio
  moves less than the absolute figure. Its last-note-only rate is what the Keras script
  learned from (it predicted only each window's last note).

The models take turns, ``--seconds`` each per round, for ``--rounds`` rounds, so contention
from other jobs falls on all of them alike; each figure is printed as min..max over the
rounds with the median, the ratios from the medians, and the load average before and after
(``os.getloadavg``). notes/CPU-s (median; per CPU-second this process got, its threads
together) moves less with the load than the wall-clock rate; times the number of cores it
is about what they would give with nobody else on them. The target line compares the
default recipe's median (and best round) with issue 14's 13,581 notes/s (3 x the Keras
peer's 4,527 on the same 2 cores). On a CUDA machine the same figures are printed for the
GPU (with the recipe's autocast).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from livernn.data import Augment, WindowSet, find_midi_files, load_notes
from livernn.model.net import NoteLSTM, model_step, total_loss
from livernn.notes import make_notes
from livernn.train import load_recipe
from livernn.train.config import Recipe
from livernn.train.loop import make_optimizer

REPO = Path(__file__).resolve().parents[1]
KERAS_PEER = 4527  # the Keras peer's training notes/s on the same 2 cores (issue 14)
TARGET = 3 * KERAS_PEER


def pieces_for(data: str | None) -> list[np.ndarray]:
    if data:
        files = find_midi_files(data)["train"]
        return [n for _, n in load_notes(files)[0]]
    rng = np.random.default_rng(0)
    return [make_notes(rng.integers(40, 90, 400), rng.choice([0.0, 0.25, 0.5], 400), [0.5] * 400)
            for _ in range(50)]


def recipe_for(name: str) -> Recipe:
    return Recipe() if name == "default" else load_recipe(REPO / "training" / f"{name}.toml")


def trainer(recipe: Recipe, pieces, device: torch.device) -> Callable[[], int]:
    """One training step of the loop (data, augmentation, forward, backward, clip, AdamW);
    returns the notes it predicted."""
    t = recipe.train
    torch.manual_seed(0)
    windows = WindowSet(pieces, t.seq_len)
    model = NoteLSTM(recipe.model).to(device)
    opt = make_optimizer(model, recipe, device)
    amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    augment = Augment(**vars(recipe.augment))
    gen = torch.Generator().manual_seed(0)

    def one_step() -> int:
        idx = torch.randint(0, len(windows), (t.batch_size,), generator=gen)
        batch = {k: v.to(device) for k, v in augment(windows.batch(idx), gen).items()}
        with torch.autocast(device.type, dtype=amp) if amp else torch.autocast("cpu", enabled=False):
            loss = total_loss(model_step(model, batch), recipe.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
        opt.step()
        return int(batch["mask"][:, 1:].sum())

    for _ in range(3):
        one_step()
    return one_step


def rates(names: list[str], pieces, device: torch.device, seconds: float,
          rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Notes per wall-clock second and per CPU-second of this process, per round."""
    steps = {name: trainer(recipe_for(name), pieces, device) for name in names}
    out: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            n, t0, c0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < seconds:
                n += step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            out[name].append(n / (time.perf_counter() - t0))
            cpu[name].append(n / (time.process_time() - c0))
    return out, cpu


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="MIDI folder (its train split); default: random notes")
    ap.add_argument("--seconds", type=float, default=3.0, help="per model per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pieces = pieces_for(args.data)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    names = ["default", "bach", "original"]
    for device in devices:
        before = load()
        r, cpu = rates(names, pieces, device, args.seconds, args.rounds)
        label = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {args.threads} threads"
        med = {k: statistics.median(v) for k, v in r.items()}
        base = med["original"]
        print(f"[{label}; {args.rounds} rounds of {args.seconds:g} s each; load average {before} before, "
              f"{load()} after]")
        print(f"  {'':50s} {'notes/s min..max':>18s} {'median':>8s}  x original  notes/CPU-s")
        rows = [("default", "livernn default recipe (2x256, b64, seq 64)"),
                ("bach", "livernn bach recipe (2x256, b32, seq 64)"),
                ("original", "original-style (1x128, b64, seq 50), all targets")]
        for key, text in rows:
            v = r[key]
            print(f"  {text:50s} {min(v):8.0f}..{max(v):<8.0f} {med[key]:8.0f}  {med[key] / base:9.2f}x"
                  f"  {statistics.median(cpu[key]):11.0f}")
        seq = recipe_for("original").train.seq_len
        print(f"  {'original-style, last-note targets only':50s} {'':18s} {base / seq:8.0f}  {1 / seq:.3f}x"
              "  (what the Keras script learned from)")
        best, typical = max(r["default"]), med["default"]
        print(f"  target: default recipe >= {TARGET} notes/s (3 x the Keras peer's {KERAS_PEER}): median "
              f"{typical:.0f} ({typical / TARGET:.2f} of it), best round {best:.0f} ({best / TARGET:.2f}): "
              f"{'met' if typical >= TARGET else 'met in the best round only' if best >= TARGET else 'not met'}")


if __name__ == "__main__":
    main()

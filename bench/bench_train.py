"""Training throughput: livernn's recipe vs an original-style model, in one process.

Run: .venv/bin/python bench/bench_train.py [--data DIR] [--seconds S] [--threads N]
Both models train on the same windows (the Bach chorales if DIR is given, else random
notes) with their own recipe's batch and sequence length; a note is one predicted
position (inputs x targets). The original Keras script predicted only the *last* note of
each window, so its useful rate is also shown per predicted note. On a CUDA machine the
same figures are printed for the GPU (with the recipe's autocast).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from livernn.data import Augment, WindowSet, find_midi_files, load_notes
from livernn.model.net import NoteLSTM, model_step, total_loss
from livernn.notes import make_notes
from livernn.train import load_recipe

REPO = Path(__file__).resolve().parents[1]


def pieces_for(data: str | None) -> list[np.ndarray]:
    if data:
        files = find_midi_files(data)["train"]
        return [n for _, n in load_notes(files)[0]]
    rng = np.random.default_rng(0)
    return [make_notes(rng.integers(40, 90, 400), rng.choice([0.0, 0.25, 0.5], 400), [0.5] * 400)
            for _ in range(50)]


def notes_per_second(recipe_name: str, pieces, device: torch.device, seconds: float) -> tuple[float, int]:
    recipe = load_recipe(REPO / "training" / f"{recipe_name}.toml")
    t = recipe.train
    torch.manual_seed(0)
    windows = WindowSet(pieces, t.seq_len)
    model = NoteLSTM(recipe.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    augment = Augment(**vars(recipe.augment))

    def one_step() -> int:
        idx = torch.randint(0, len(windows), (t.batch_size,))
        batch = {k: v.to(device) for k, v in augment(windows.batch(idx)).items()}
        with torch.autocast(device.type, dtype=amp) if amp else torch.autocast("cpu", enabled=False):
            loss = total_loss(model_step(model, batch), recipe.loss)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return int(batch["mask"][:, 1:].sum())

    for _ in range(3):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, steps, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += one_step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0), t.seq_len


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="MIDI folder (its train split); default: random notes")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pieces = pieces_for(args.data)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        ours, _ = notes_per_second("bach", pieces, device, args.seconds)
        orig, seq = notes_per_second("original", pieces, device, args.seconds)
        label = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {args.threads} threads"
        print(f"[{label}]")
        print(f"  livernn bach recipe (2x256, seq 64)        {ours:10.0f} notes/s  1.00x")
        print(f"  original-style (1x128, seq {seq}), all targets {orig:10.0f} notes/s  {orig / ours:.2f}x")
        print(f"  original-style, last-note targets only    {orig / seq:10.0f} notes/s  "
              f"{orig / seq / ours:.3f}x  (what the Keras script learned from)")


if __name__ == "__main__":
    main()

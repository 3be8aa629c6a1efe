"""Training throughput: livernn's recipes against an original-style model, in one run.

Run: .venv/bin/python bench/bench_train.py [--data DIR] [--seconds S] [--rounds R] [--threads N]
    [--processes N]
All models train on the same windows (the train split of DIR if given, else random notes)
with their own recipe's batch and sequence length, drawn as the training loop draws them
(batches of similar lengths, each cut after its longest window), the loop's optimizer
(fused AdamW) and its clipping; a note is one predicted position (inputs x targets), as the
loop's ``notes_per_s`` counts. The rows:

- ``default``, 1 process: what ``livernn train --data DIR`` trains with no config
  (ModelConfig and TrainConfig defaults: 2 x 256, pitch embedding 64, time-bin embeddings
  16, categorical heads, batch 32, seq 64) in this process with ``--threads`` threads;
- the default recipe as ``livernn train`` runs it on this machine: ``train.spawn.plan``'s
  processes (one per core, one thread each, DDP, each its share of every batch; started
  once and kept between rounds), where the plan gives more than one; issue 14's
  throughput target is about this row (else about the one above);
- ``bach``: training/bach.toml in this process (the default recipe pinned since bach's
  retrain, so about the default's figure);
- ``original``: training/original.toml (1 x 128, pitch as one number, seq 50, regression
  heads), the in-process baseline every ratio is against: on a noisy machine the ratio
  moves less than the absolute figure. Its last-note-only rate is what the Keras script
  learned from (it predicted only each window's last note).

The rows take turns, ``--seconds`` each per round, for ``--rounds`` rounds, so contention
from other jobs falls on all of them alike; each figure is printed as min..max over the
rounds with the median, the ratios from the medians, and the load average before and after
(``os.getloadavg``). notes/CPU-s (median; per CPU-second the row's process or processes got,
threads together) moves less with the load than the wall-clock rate; times the number of
cores it is about what they would give with nobody else on them. The target line compares
the median (and best round) with issue 14's 13,581 notes/s (3 x the Keras peer's 4,527 on
the same 2 cores). On a CUDA machine the one-process rows are printed for the GPU too
(with the recipe's autocast).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from livernn.data import Augment, WindowSet, epoch_batches, find_midi_files, load_notes
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


def trainer(recipe: Recipe, pieces, device: torch.device, ddp: bool = False,
            world: int = 1, rank: int = 0) -> Callable[[], int]:
    """One training step of the loop (data, augmentation, forward, backward, clip, AdamW;
    under DDP when ``ddp``, as a process of ``livernn train``'s); returns the notes it predicted."""
    t = recipe.train
    torch.manual_seed(0)
    windows = WindowSet(pieces, t.seq_len)
    model = NoteLSTM(recipe.model).to(device)
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    opt = make_optimizer(model, recipe, device)
    amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    augment = Augment(**vars(recipe.augment))
    gen = torch.Generator().manual_seed(rank)
    queue: list[torch.Tensor] = []
    epoch = [0]

    def one_step() -> int:
        if not queue:  # an epoch's batches for this process, drawn as the training loop draws them
            queue.extend(reversed(epoch_batches(windows.lengths, t.batch_size, epoch[0], world=world, rank=rank,
                                                pool=t.length_pool)))
            epoch[0] += 1
        idx = queue.pop()
        batch = {k: v.to(device) for k, v in augment(windows.batch(idx, trim=True), gen).items()}
        with torch.autocast(device.type, dtype=amp) if amp else torch.autocast("cpu", enabled=False):
            loss = total_loss(model_step(net, batch), recipe.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
        opt.step()
        return int(batch["mask"][:, 1:].sum())

    for _ in range(3):
        one_step()
    return one_step


def _worker(rank: int, world: int, port: int, threads: int, data: str | None, conn) -> None:
    """One of ``livernn train``'s processes (train.spawn): the default recipe's step under
    DDP with its share of the batch, run for as long as the parent asks, in lockstep with
    the others (DDP averages the gradients every step, as in training)."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    recipe = recipe_for("default")
    share = replace(recipe, train=replace(recipe.train, batch_size=recipe.train.batch_size // world))
    step = trainer(share, pieces_for(data), torch.device("cpu"), ddp=True, world=world, rank=rank)
    while (seconds := conn.recv()) is not None:
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            n += step()
            done = torch.tensor([time.perf_counter() - t0 >= seconds], dtype=torch.int32)
            dist.all_reduce(done)  # all stop after the same step
            if done.item():
                break
        conn.send((n, time.perf_counter() - t0, time.process_time() - c0))
    dist.destroy_process_group()


class Processes:
    """The default recipe as ``livernn train`` runs it on this CPU: ``train.spawn.plan``'s
    processes, kept between rounds; one call runs them all for ``seconds`` and gives notes
    per wall-clock second (all together) and per CPU-second (theirs together)."""

    def __init__(self, processes: int, threads: int, data: str | None):
        import torch.multiprocessing as mp

        from livernn.train.spawn import _free_port

        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(processes)]
        self.conns = [a for a, _ in pipes]
        port = _free_port()
        self.procs = [ctx.Process(target=_worker, args=(r, processes, port, threads, data, b), daemon=True)
                      for r, (_, b) in enumerate(pipes)]
        for p in self.procs:
            p.start()

    def __call__(self, seconds: float) -> tuple[float, float]:
        for c in self.conns:
            c.send(seconds)
        results = [c.recv() for c in self.conns]
        n = sum(r[0] for r in results)
        return n / max(r[1] for r in results), n / sum(r[2] for r in results)

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(30)


def rates(names: list[str], pieces, device: torch.device, seconds: float, rounds: int,
          processes: Processes | None = None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Notes per wall-clock second and per CPU-second of this process (of the ``processes``
    for the row ``processes``), per round."""
    steps = {name: trainer(recipe_for(name), pieces, device) for name in names}
    rows = [*names, *(["processes"] if processes else [])]
    out: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        if processes:
            wall, per_cpu = processes(seconds)
            out["processes"].append(wall)
            cpu["processes"].append(per_cpu)
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
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the one-process rows (default: the usable cores)")
    ap.add_argument("--processes", type=int, default=0,
                    help="processes of the `livernn train` row (default: train.spawn.plan's, as training starts)")
    args = ap.parse_args()
    from livernn.train.spawn import plan, usable_cores

    threads = args.threads or usable_cores()
    torch.set_num_threads(threads)
    pieces = pieces_for(args.data)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    names = ["default", "bach", "original"]
    default = recipe_for("default")
    if args.processes:
        default = replace(default, train=replace(default.train, processes=args.processes))
    n_proc, proc_threads = plan(default, "cpu")
    for device in devices:
        before = load()
        group = Processes(n_proc, proc_threads, args.data) if device.type == "cpu" and n_proc > 1 else None
        try:
            r, cpu = rates(names, pieces, device, args.seconds, args.rounds, group)
        finally:
            if group:
                group.close()
        label = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {threads} threads"
        med = {k: statistics.median(v) for k, v in r.items()}
        base = med["original"]
        print(f"[{label}; {args.rounds} rounds of {args.seconds:g} s each; load average {before} before, "
              f"{load()} after]")
        print(f"  {'':58s} {'notes/s min..max':>18s} {'median':>8s}  x original  notes/CPU-s")

        def shape(name: str) -> str:
            m, t = recipe_for(name).model, recipe_for(name).train
            return f"{m.layers}x{m.hidden}, b{t.batch_size}, seq {t.seq_len}"

        rows = [("default", f"livernn default recipe ({shape('default')}), 1 process"),
                ("bach", f"livernn bach recipe ({shape('bach')}), 1 process"),
                ("original", f"original-style ({shape('original')}), all targets")]
        if group:
            rows.insert(1, ("processes", f"default recipe as `livernn train` runs it: {n_proc} x {proc_threads} thr"))
        for key, text in rows:
            v = r[key]
            print(f"  {text:58s} {min(v):8.0f}..{max(v):<8.0f} {med[key]:8.0f}  {med[key] / base:9.2f}x"
                  f"  {statistics.median(cpu[key]):11.0f}")
        seq = recipe_for("original").train.seq_len
        print(f"  {'original-style, last-note targets only':58s} {'':18s} {base / seq:8.0f}  {1 / seq:.3f}x"
              "  (what the Keras script learned from)")
        key = "processes" if group else "default"
        best, typical = max(r[key]), med[key]
        how = f"{n_proc} processes" if group else f"one process, {threads if device.type == 'cpu' else 'GPU'}"
        print(f"  target: default recipe as `livernn train` runs it ({how}) >= {TARGET} notes/s (3 x the Keras "
              f"peer's {KERAS_PEER}): median {typical:.0f} ({typical / TARGET:.2f} of it), best round {best:.0f} "
              f"({best / TARGET:.2f}): "
              f"{'met' if typical >= TARGET else 'met in the best round only' if best >= TARGET else 'not met'}")


if __name__ == "__main__":
    main()

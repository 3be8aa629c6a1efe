"""Per-note cost of generation inside the engine, for the shipped model.

A voice's ``fill`` does, per note: one stateful model step (``NoteGenerator.next``), then
the engine's share: seconds -> beats, quantize/swing, length cap, polyphony, velocity, a
Note handed to the scheduler's heap and to the recorder. Measured here note by note on the
generation path itself (the session's clock is driven forward so each ``fill`` emits the
notes of one step), beside the bare ``next`` in the same process as the baseline.

    .venv/bin/python bench/bench_engine.py [--notes 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livernn.engine import Session
from livernn.model import SamplerParams, load_model


def bare_next(n: int) -> np.ndarray:
    g = load_model().generator(seed=1)
    g.warmup()
    params = SamplerParams()
    costs = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        g.next(params)
        costs[i] = time.perf_counter() - t
    return costs * 1000.0


def engine_fill(n: int, tmp: Path) -> np.ndarray:
    """Time each note's generation and scheduling inside Voice.fill."""
    s = Session(bpm=120.0, switch_interval=None, realtime=False)
    s.record(tmp / "bench_engine.mid")
    v = s.add_voice("lead", seed=1, quantize=0.25, swing=0.2, max_polyphony=8)
    now = time.monotonic()
    v.fill(now)  # places the cursor
    costs = []
    while len(costs) < n:
        before = v.generated
        t = time.perf_counter()
        v.fill(now)
        elapsed = time.perf_counter() - t
        made = v.generated - before
        if made:
            costs.extend([elapsed / made] * made)
        now += 0.05  # the clock moves on; the next fill finds the next notes due
        if s.scheduler.pending() > 10000:
            s.scheduler.panic(all_notes_off=False)
    s.stop()
    return np.array(costs[:n]) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=3000)
    args = parser.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    rounds = 5  # interleaved, so both paths see the same machine load
    parts: dict[str, list[np.ndarray]] = {"bare": [], "engine": []}
    for _ in range(rounds):
        parts["bare"].append(bare_next(args.notes // rounds))
        parts["engine"].append(engine_fill(args.notes // rounds, tmp))
    base, engine = np.concatenate(parts["bare"]), np.concatenate(parts["engine"])
    print(f"per-note cost, shipped model ({load_model().config.layers}x{load_model().config.hidden}), "
          f"{args.notes} notes; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'path':<28} {'p50 ms':>7} {'p99 ms':>7}  p50 vs bare next")
    for label, c in (("bare NoteGenerator.next", base), ("engine: Voice.fill per note", engine)):
        print(f"{label:<28} {np.percentile(c, 50):7.3f} {np.percentile(c, 99):7.3f}  "
              f"{np.percentile(c, 50) / np.percentile(base, 50):5.2f}x")


if __name__ == "__main__":
    main()

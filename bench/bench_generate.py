"""Per-note generation cost: the fused numpy step vs stepping nn.LSTM vs re-running a window.

Run: .venv/bin/python bench/bench_generate.py [MODEL] [--steps N]
All three produce the next note's distributions from the same weights; the fused step
and the nn.LSTM step carry (h, c), the window re-run is what the original generator did
(the whole last 50 notes through the network for every note).

The figure that matters is the fused step against its own floor: the same matrix-vector
products (``FusedWeights.matrices``) and nothing else. The two are timed in alternating
rounds in this process, so both see the same machine load, and the ratio step/floor is
printed (as p50/p50, p99/p99 and the median of the rounds' own ratios; the target is
under 3x). BLAS is held to one thread as the engine holds it while playing (see
engine.session); ``--blas-threads`` leaves it alone, to see what a worker thread costs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from livernn.model import SamplerParams, load_model
from livernn.model.checkpoint import load_torch_model
from livernn.model.net import encode_inputs


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    us = np.array(samples_ns) / 1e3
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


def raw(fn, n: int) -> list[int]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return out


def timed(fn, n: int) -> tuple[float, float]:
    return percentiles(raw(fn, n))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=30, help="alternations of step and floor")
    ap.add_argument("--blas-threads", action="store_true", help="don't hold BLAS to one thread")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.blas_threads:
        threadpool_limits(limits=1, user_api="blas")
    m = load_model(args.model)
    net, _, _ = load_torch_model(m.path)
    cfg = m.config
    params = SamplerParams()
    rng = np.random.default_rng(0)

    g = m.generator(seed=0)
    g.warmup()
    fw = g._fw
    mats = fw.matrices
    vecs = [np.ones(a.shape[1], np.float32) for a in mats]
    outs = [np.empty(a.shape[0], np.float32) for a in mats]

    def matvecs():
        for a, v, o in zip(mats, vecs, outs):
            np.dot(a, v, out=o)

    per_round = max(1, args.steps // args.rounds)
    step_ns: list[int] = []
    floor_ns: list[int] = []
    round_ratios = []
    for _ in range(args.rounds):
        a, b = raw(lambda: g.next(params), per_round), raw(matvecs, per_round)
        step_ns += a
        floor_ns += b
        round_ratios.append(np.median(a) / np.median(b))
    fused, floor = percentiles(step_ns), percentiles(floor_ns)
    weight_bytes = sum(a.nbytes for a in mats) + fw.pitch_table.itemsize * fw.pitch_table.shape[1]

    state = {"hc": None, "pitch": 60}

    @torch.no_grad()
    def torch_step():
        p = torch.tensor([[state["pitch"]]])
        s, d, v = torch.tensor([[0.5]]), torch.tensor([[0.5]]), torch.tensor([[80]])
        pitch, feats = encode_inputs(cfg, p, s, d, v)
        out, state["hc"] = net.lstm(net.features(pitch, feats), state["hc"])
        h = out[:, -1]
        sbin = int(torch.argmax(net.step_head(h)))
        z = torch.tanh(h + net.step_to_pitch.weight[sbin]) if net.step_to_pitch is not None else h
        logits = net.pitch_head(z)[0].numpy()
        net.dur_head(h), net.vel_head(h)
        probs = np.exp(logits - logits.max())
        state["pitch"] = int(rng.choice(128, p=probs / probs.sum()))

    for _ in range(50):
        torch_step()
    stepped = timed(torch_step, args.steps)

    window = {"p": torch.randint(50, 80, (1, 50))}

    @torch.no_grad()
    def rerun_window():
        p = window["p"]
        s, d, v = torch.full((1, 50), 0.5), torch.full((1, 50), 0.5), torch.full((1, 50), 80)
        pitch, feats = encode_inputs(cfg, p, s, d, v)
        out, _ = net.lstm(net.features(pitch, feats))
        h = out[:, -1]
        sbin = int(torch.argmax(net.step_head(h)))
        z = torch.tanh(h + net.step_to_pitch.weight[sbin]) if net.step_to_pitch is not None else h
        logits = net.pitch_head(z)[0].numpy()
        probs = np.exp(logits - logits.max())
        nxt = int(rng.choice(128, p=probs / probs.sum()))
        window["p"] = torch.cat([p[:, 1:], torch.tensor([[nxt]])], dim=1)

    for _ in range(20):
        rerun_window()
    rerun = timed(rerun_window, max(200, args.steps // 10))

    print(f"model {m.name}: {cfg.layers} x {cfg.hidden} LSTM, {cfg.heads} heads, "
          f"{weight_bytes / 1e6:.2f} MB of weights read per step; torch threads 1, BLAS threads "
          f"{'as numpy starts them' if args.blas_threads else 1}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'path':34s} {'p50 us':>9s} {'p99 us':>9s} {'p50 vs fused':>13s}")
    rows = [("fused numpy step (livernn)", fused), ("matvec floor (dots only)", floor),
            ("nn.LSTM step, carried (h, c)", stepped), ("re-run 50-note window", rerun)]
    for name, (p50, p99) in rows:
        print(f"{name:34s} {p50:9.1f} {p99:9.1f} {p50 / fused[0]:12.2f}x")
    print(f"fused step / matvec floor: p50 {fused[0] / floor[0]:.2f}x, p99 {fused[1] / floor[1]:.2f}x, "
          f"median of {args.rounds} alternating rounds {np.median(round_ratios):.2f}x (target < 3x)")
    print(f"fused step: p99 {fused[1]:.0f} us = {fused[1] / 500:.2f} of the 0.5 ms budget; "
          f"nn.LSTM stepping is {stepped[0] / fused[0]:.1f}x slower, window re-run {rerun[0] / fused[0]:.0f}x")


if __name__ == "__main__":
    main()

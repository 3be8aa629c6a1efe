"""Per-note generation cost: the fused numpy step vs stepping nn.LSTM vs re-running a window.

Run: .venv/bin/python bench/bench_generate.py [MODEL] [--steps N]
All three produce the next note's distributions from the same weights; the fused step
and the nn.LSTM step carry (h, c), the window re-run is what the original generator did
(the whole last 50 notes through the network for every note). Also printed: the time of
the step's matrix-vector products alone (the arithmetic floor the fused step is measured
against) and the weight bytes one step reads. Run it twice, with and without
``OPENBLAS_NUM_THREADS=1``: on a busy 2-core machine numpy's BLAS handing each
matrix-vector product to a second thread is what sets the p99.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from livernn.model import SamplerParams, load_model
from livernn.model.checkpoint import load_torch_model
from livernn.model.net import encode_inputs


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    us = np.array(samples_ns) / 1e3
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


def timed(fn, n: int) -> tuple[float, float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return percentiles(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = load_model(args.model)
    net, _, _ = load_torch_model(m.path)
    cfg = m.config
    params = SamplerParams()
    rng = np.random.default_rng(0)

    g = m.generator(seed=0)
    g.warmup()
    fused = timed(lambda: g.next(params), args.steps)

    fw = g._fw
    mats = [*fw.mats, fw.sdv_w, fw.pitch_w]
    vecs = [np.ones(a.shape[1], np.float32) for a in mats]
    outs = [np.empty(a.shape[0], np.float32) for a in mats]

    def matvecs():
        for a, v, o in zip(mats, vecs, outs):
            np.dot(a, v, out=o)

    floor = timed(matvecs, args.steps)
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
          f"{weight_bytes / 1e6:.2f} MB of weights read per step; torch threads 1, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"{'path':34s} {'p50 us':>9s} {'p99 us':>9s} {'p50 vs fused':>13s}")
    rows = [("fused numpy step (livernn)", fused), ("matvec floor (dots only)", floor),
            ("nn.LSTM step, carried (h, c)", stepped), ("re-run 50-note window", rerun)]
    for name, (p50, p99) in rows:
        print(f"{name:34s} {p50:9.1f} {p99:9.1f} {p50 / fused[0]:12.2f}x")
    print(f"fused step: p99 {fused[1]:.0f} us = {fused[1] / 500:.2f} of the 0.5 ms budget; "
          f"nn.LSTM stepping is {stepped[0] / fused[0]:.1f}x slower, window re-run {rerun[0] / fused[0]:.0f}x")


if __name__ == "__main__":
    main()

"""Write models/bach/README.md (the model card) and its samples from the training runs.

Run after training the shipped model and the two comparison models on the same data:

    .venv/bin/python training/make_card.py --model models/bach --baseline runs/baseline \
        --original runs/original --data data/bach

Everything in the card is read from the runs' config.json/metrics.jsonl or measured here
(samples, chord rates, step time), so the card can't drift from the files it describes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from livernn.data import find_midi_files, load_notes
from livernn.model import SamplerParams, load_model
from livernn.model.generator import generate_notes
from livernn.notes import chord_rate, notes_to_midi
from livernn.plot import piano_roll_png

TEMPERATURES = (0.8, 1.0, 1.5, 2.0)
HEADS = ("pitch", "step", "duration", "velocity", "total")


def epochs_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def row(name: str, m: dict, split: str) -> str:
    s = m[split]
    cells = " | ".join(f"{s[h]:.3f}" for h in HEADS)
    return f"| {name} | {cells} | {s['unigram_pitch']:.3f} |"


def step_times(model, n: int = 3000) -> tuple[float, float]:
    g = model.generator(seed=0)
    g.warmup()
    p = SamplerParams()
    t = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        g.next(p)
        t.append(time.perf_counter_ns() - t0)
    us = np.array(t) / 1e3
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/bach")
    ap.add_argument("--baseline", default="runs/baseline")
    ap.add_argument("--original", default="runs/original")
    ap.add_argument("--data", default="data/bach")
    ap.add_argument("--notes", type=int, default=300)
    ap.add_argument("--wall-min", type=float, help="wall-clock minutes of the training run, if known")
    args = ap.parse_args()
    out = Path(args.model)
    model = load_model(out)
    meta, m = model.meta, model.meta["metrics"]
    base, orig = load_model(args.baseline).meta, load_model(args.original).meta
    files = find_midi_files(args.data)
    train_notes = np.concatenate([n for _, n in load_notes(files["train"])[0]])
    samples, gen_rates = out / "samples", {}
    for temp in TEMPERATURES:
        notes = generate_notes(model, args.notes, SamplerParams(temperature=temp), seed=1)
        stem = f"bach_t{temp:.1f}"
        notes_to_midi(notes, samples / f"{stem}.mid", bpm=model.ref_bpm, name=model.name)
        piano_roll_png(notes, samples / f"{stem}.png", title=f"models/bach, temperature {temp}")
        gen_rates[temp] = (chord_rate(notes), int(notes["pitch"].min()), int(notes["pitch"].max()),
                           float(notes["step"].min()))
    p50, p99 = step_times(model)
    ours_ep, base_ep, orig_ep = epochs_of(out), epochs_of(Path(args.baseline)), epochs_of(Path(args.original))
    k = min(len(ours_ep), len(base_ep), len(orig_ep))
    eq = (ours_ep[k - 1]["val"]["pitch"], base_ep[k - 1]["val"]["pitch"], orig_ep[k - 1]["val"]["pitch"])
    hw = meta["hardware"]
    wall = f" ({args.wall_min:.0f} min wall clock with per-epoch validation)" if args.wall_min else ""
    best_rate = max(r["notes_per_s"] for r in ours_ep)
    cfg = model.config
    data = meta["data"]
    lines = [
        "# models/bach — the shipped note model",
        "",
        f"A {cfg.layers} x {cfg.hidden} LSTM (pitch embedding {cfg.embed}, dropout {cfg.dropout}) with "
        f"categorical heads: pitch (128), step ({cfg.time_bins} log-spaced bins "
        f"{cfg.time_min}-{cfg.time_max} s plus a zero bin for chords), duration ({cfg.time_bins} bins) and "
        f"velocity ({cfg.vel_bins} bins); the pitch head sees the sampled step bin. Times are seconds at "
        f"{cfg.ref_bpm:g} bpm. Files: `model.safetensors` (weights), `config.json` (architecture, "
        "representation, data facts, metrics, seed, recipe).",
        "",
        "## Data and split",
        "",
        f"music21's Bach chorales written as MIDI by `livernn data music21 --corpus bach` "
        f"({sum(data['files'].values())} files). Split per file by a hash of its path: "
        f"train {data['files']['train']} files / {data['notes']['train']} notes, "
        f"val {data['files']['val']} / {data['notes']['val']}, test {data['files']['test']} / "
        f"{data['notes']['test']}. Augmentation: transposition within ±{meta['recipe']['augment']['transpose']} "
        "semitones (kept inside 0..127); no tempo stretch (the chorales are quantised).",
        "",
        "## Scores (per-note NLL in nats, whole pieces, no augmentation)",
        "",
        "| model | pitch | step | duration | velocity | total | unigram pitch |",
        "|---|---|---|---|---|---|---|",
        row("bach (val)", m, "val"),
        row("bach (test)", m, "test"),
        row("baseline: original first model (test)", base["metrics"], "test"),
        row("original last tuning (test)", orig["metrics"], "test"),
        "",
        "The baseline and original rows use the original script's regression heads: their step and "
        "duration columns are MSE + positive pressure in seconds², not NLL, and their total is weighted "
        "by their own loss weights; only their pitch NLL is comparable. "
        f"Test pitch NLL: bach {m['test']['pitch']:.3f} vs baseline {base['metrics']['test']['pitch']:.3f} "
        f"({100 * (1 - m['test']['pitch'] / base['metrics']['test']['pitch']):.0f}% lower), vs original "
        f"{orig['metrics']['test']['pitch']:.3f} ({100 * (1 - m['test']['pitch'] / orig['metrics']['test']['pitch']):.0f}% lower), "
        f"vs unigram {m['test']['unigram_pitch']:.3f} ({100 * (1 - m['test']['pitch'] / m['test']['unigram_pitch']):.0f}% lower). "
        f"At equal epochs ({k}): val pitch NLL bach {eq[0]:.3f}, baseline {eq[1]:.3f}, original {eq[2]:.3f} "
        f"({100 * (1 - eq[0] / eq[2]):.0f}% lower than the original). Note that bach's pitch NLL is "
        "conditioned on the next step's bin (chord or not), which the others do not model.",
        "",
        "## Generated music",
        "",
        f"Chord rate (notes with step 0) of the training data: {chord_rate(train_notes):.3f}. "
        f"Generated, {args.notes} notes each (seed 1):",
        "",
        "| temperature | chord rate | pitch range | min step | files |",
        "|---|---|---|---|---|",
    ]
    for temp, (rate, lo, hi, mstep) in gen_rates.items():
        stem = f"bach_t{temp:.1f}"
        lines.append(f"| {temp} | {rate:.3f} | {lo}..{hi} | {mstep:.3f} s | "
                     f"[MIDI](samples/{stem}.mid), [roll](samples/{stem}.png) |")
    lines += [
        "",
        "## Training",
        "",
        f"{m['epochs_run']} epochs (best at epoch {m['epoch']}), {m['train_s'] / 60:.1f} min of training "
        f"steps{wall} on {hw['cpu']} CPU, {hw['threads']} torch threads, shared with other jobs; "
        f"throughput {m['notes_per_s']:.0f} predicted notes/s on average, {best_rate:.0f} in the least "
        "contended epoch. Loss curves: [loss.png](loss.png); per epoch: "
        "[metrics.jsonl](metrics.jsonl). Seed " + str(meta["seed"]) + ", torch " + hw["torch"] + ".",
        "",
        "Reproduce:",
        "",
        "```",
        "livernn data music21 --corpus bach --out data/bach",
        "livernn train --data data/bach --out models/bach --config training/bach.toml",
        "livernn train --data data/bach --out runs/baseline --config training/baseline.toml --epochs 22 --patience 100",
        "livernn train --data data/bach --out runs/original --config training/original.toml --epochs 20 --patience 100",
        "livernn eval models/bach --data data/bach --split test",
        ".venv/bin/python training/make_card.py --data data/bach",
        "```",
        "",
        "## Live step",
        "",
        f"One `NoteGenerator.next` while this card was made: p50 {p50:.0f} µs, p99 {p99:.0f} µs "
        "(fused numpy cell; 2-core machine shared with other jobs, whose preemptions set the p99). "
        "See bench/bench_generate.py for the comparison with nn.LSTM stepping and window re-runs. "
        "For live use, `OPENBLAS_NUM_THREADS=1` keeps numpy's matrix-vector products on the calling thread.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

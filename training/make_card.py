"""Write models/bach/README.md (the model card) and its samples from the training runs.

Run after training the shipped model and the two comparison models on the same data:

    .venv/bin/python training/make_card.py --model models/bach --baseline runs/baseline \
        --original runs/original --data data/bach

Everything in the card is read from the runs' config.json/metrics.jsonl or measured here
(samples, chord rates, step time), so the card can't drift from the files it describes.

Every model is scored here on the test split by ``livernn.train.evaluate`` (the same code
as ``livernn eval --json``), each at its best-validation checkpoint, and the comparison
uses the pitch NLL with the step summed out (``pitch_marginal``) only: a
``pitch_given_step`` model's ``pitch`` is conditioned on the true next step, which the
regression baselines are never told. The baseline runs' config.json (no weights),
metrics.jsonl and eval JSON are copied into ``MODEL/baselines/NAME/`` so each comparison
row can be checked from the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from livernn.data import split_files
from livernn.model import SamplerParams, load_model
from livernn.model.checkpoint import load_torch_model
from livernn.model.generator import generate_notes
from livernn.model.net import LossWeights
from livernn.notes import chord_rate, notes_to_midi
from livernn.plot import piano_roll_png
from livernn.train.evaluate import MAE_SKIP, evaluate, references

TEMPERATURES = (0.8, 1.0, 1.5, 2.0)
HEADS = ("pitch", "step", "duration", "velocity", "total")


def epochs_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def row(name: str, e: dict) -> str:
    """One comparison row from an eval JSON: marginal pitch, step vs its count, MAEs."""
    step = f"{e['step']:.3f} (count {e['unigram_step']:.3f})" if "unigram_step" in e else "MSE, not an NLL"
    return (f"| {name} | {e['pitch_marginal']:.3f} | {e['unigram_pitch']:.3f} | {step} | "
            f"{e['step_mae_ms']:.1f} | {e['duration_mae_ms']:.1f} |")


def score(run: Path, found, out_dir: Path | None = None) -> dict:
    """Test-split eval JSON of a run's best checkpoint (copied with its config/metrics to ``out_dir``)."""
    model, meta, _ = load_torch_model(run)
    train = [found.notes[p] for p in found.files["train"]]
    test = [found.notes[p] for p in found.files["test"]]
    result = evaluate(model, test, LossWeights(**(meta.get("recipe", {}).get("loss") or {})))
    result.update(references(model.cfg, train, test), split="test", files=len(test), mae_skip=MAE_SKIP)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "metrics.jsonl"):
            shutil.copy(run / name, out_dir / name)
        (out_dir / "eval.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


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
    found = split_files(args.data)
    train_notes = np.concatenate([found.notes[p] for p in found.files["train"]])
    ours_e = score(out, found)
    (out / "eval_test.json").write_text(json.dumps(ours_e, indent=1) + "\n")
    base_e = score(Path(args.baseline), found, out / "baselines" / "baseline")
    orig_e = score(Path(args.original), found, out / "baselines" / "original")
    samples, gen_rates = out / "samples", {}
    for temp in TEMPERATURES:
        notes = generate_notes(model, args.notes, SamplerParams(temperature=temp), seed=1)
        stem = f"bach_t{temp:.1f}"
        notes_to_midi(notes, samples / f"{stem}.mid", bpm=model.ref_bpm, name=model.name)
        piano_roll_png(notes, samples / f"{stem}.png", title=f"models/bach, temperature {temp}")
        gen_rates[temp] = (chord_rate(notes), int(notes["pitch"].min()), int(notes["pitch"].max()),
                           float(notes["step"].min()))
    p50, p99 = step_times(model)
    ours_ep = epochs_of(out)
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
        f"({sum(data['files'].values())} files). Split per file by a hash of its path, versions of one "
        f"chorale kept in one split ({data.get('grouped', {}).get('files', 0)} files grouped): "
        f"train {data['files']['train']} files / {data['notes']['train']} notes, "
        f"val {data['files']['val']} / {data['notes']['val']}, test {data['files']['test']} / "
        f"{data['notes']['test']}. Augmentation: transposition within ±{meta['recipe']['augment']['transpose']} "
        "semitones (kept inside 0..127); no tempo stretch (the chorales are quantised).",
        "",
        "## Scores (test split, whole pieces, no augmentation)",
        "",
        "Pitch: per-note NLL in nats with the next step summed out, the figure every model has. "
        "Step: the step head's NLL beside a context-free count of its bins (train frequencies, "
        f"add-one). MAE: of each head's median (the regression heads' output), each piece's first {MAE_SKIP} "
        "predictions left out so every model is scored on the same notes. Each model at its "
        "best-validation checkpoint; `eval_test.json` and `baselines/*/eval.json` hold every figure.",
        "",
        "| model | pitch NLL | pitch count | step NLL | step MAE ms | duration MAE ms |",
        "|---|---|---|---|---|---|",
        row("bach", ours_e),
        row("baseline: original first model", base_e),
        row("original last tuning", orig_e),
        "",
        f"Pitch NLL: bach {ours_e['pitch_marginal']:.3f} vs baseline {base_e['pitch_marginal']:.3f} "
        f"({100 * (1 - ours_e['pitch_marginal'] / base_e['pitch_marginal']):.0f}% lower), vs original "
        f"{orig_e['pitch_marginal']:.3f} "
        f"({100 * (1 - ours_e['pitch_marginal'] / orig_e['pitch_marginal']):.0f}% lower), "
        f"vs the context-free count {ours_e['unigram_pitch']:.3f}. Given the true next step, bach's pitch NLL is "
        f"{ours_e['pitch']:.3f}: that figure is not comparable with the others and is not used here.",
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

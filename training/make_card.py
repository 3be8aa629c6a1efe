"""Write the shipped models' cards (models/bach/README.md, models/folk/README.md) and samples.

    .venv/bin/python training/make_card.py bach folk

Everything in a card is read from files in the repository or measured here, so a card
can't drift from what it describes: the model's config.json/metrics.jsonl, the baseline
runs' ``training/baselines/NAME/`` (config.json without weights, metrics.jsonl, eval.json)
and the model's own ``models/NAME/eval_test.json``.

Every model is scored on the test split of its corpus (``--data``, default
``data/NAME``) by ``livernn.train.evaluate``, the code behind ``livernn eval --json``, each
at its best-validation checkpoint, and the comparison uses the pitch NLL with the step
summed out (``pitch_marginal``) only: a ``pitch_given_step`` model's ``pitch`` is
conditioned on the true next step, which the regression baselines are never told. Beside
it: the step head's NLL and the context-free count of the step bins (``unigram_step``),
and the step/duration MAE of each head's median. A baseline is re-scored, and its
``training/baselines/NAME/`` refreshed, when its trained run (weights) is in
``--runs/NAME``; otherwise its row is read from the stored eval.json. The generated-music
table is ``livernn eval --generate`` (``train.evaluate.generated_music``) at pitch
temperatures 0.8, 1.0 and 1.5 beside the test pieces. training/README.md has the commands
that train the baseline runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from livernn.data import split_files
from livernn.model import SamplerParams, load_model
from livernn.model.checkpoint import load_torch_model, read_model
from livernn.model.generator import LoadedModel, generate_notes
from livernn.model.net import LossWeights
from livernn.notes import notes_to_midi
from livernn.plot import piano_roll_png
from livernn.train.config import model_time_unit
from livernn.train.evaluate import GEN_TEMPERATURES, MAE_SKIP, evaluate, generated_music, references
from livernn.train.musicstats import STATS, corpus_stats, grid_share

ROOT = Path(__file__).resolve().parent.parent
BASELINES = ROOT / "training" / "baselines"
SAMPLE_TEMPERATURES = (0.8, 1.0, 1.5, 2.0)
GENERATE_NOTES = 4000
TRAIN_FLAGS = "--threads 1 --patience 100"  # as the baseline runs were trained (1 thread each, two at a time)


@dataclass(frozen=True)
class Baseline:
    name: str  # training/baselines/NAME, runs/NAME
    label: str  # the card's row
    recipe: str
    epochs: int  # on the shipped model's training files, as many as it had


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    corpus: str  # music21 corpus name for `livernn data music21`
    about: str  # the paragraph under the title (architecture is appended)
    data_note: str  # what the test split is, in this checkout
    baselines: tuple[Baseline, ...]
    wall_min: float | None  # wall-clock minutes of the shipped model's run, for one whose metrics.jsonl has no wall_s


CARDS = {
    "bach": Card(
        name="bach", title="models/bach — the default shipped model: Bach chorales, four-part harmony",
        corpus="bach",
        about="Plays four-part chorale texture: chords are runs of notes with step 0.",
        data_note=("Scored here on the test split of the same export with versions of one chorale grouped "
                   "(livernn's split since the model was trained; grouping only moves files train-ward, so "
                   "these are test files the model never saw)."),
        baselines=(Baseline("bach-baseline", "baseline: original first model", "training/baseline.toml", 20),
                   Baseline("bach-original", "original last tuning", "training/original.toml", 20)),
        wall_min=14,
    ),
    "folk": Card(
        name="folk", title="models/folk — the second shipped model: folk melodies",
        corpus="essenFolksong",
        about=("Plays single-line tunes where bach plays four-part chords, so swapping between the two is "
               "audible: `patches/demo.toml` swaps its lead voice from bach to folk on bar 8."),
        data_note=("Scored here on the test split of the same export with versions of one tune grouped "
                   "(grouping only moves files train-ward, so these are test files the model never saw)."),
        baselines=(Baseline("folk-baseline", "baseline: original first model", "training/baseline.toml", 12),
                   Baseline("folk-original", "original last tuning", "training/original.toml", 12)),
        wall_min=9,
    ),
}


def epochs_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def score(run: Path, found, data: Path) -> dict[str, Any]:
    """Test-split eval JSON of a run's best checkpoint, as ``livernn eval --json`` writes it."""
    model, meta, _ = load_torch_model(run)
    train = [found.notes[p] for p in found.files["train"]]
    test = [found.notes[p] for p in found.files["test"]]
    result: dict[str, Any] = evaluate(model, test, LossWeights(**(meta.get("recipe", {}).get("loss") or {})))
    result.update(references(model.cfg, train, test))
    result.update(split="test", files=len(test), heads=model.cfg.heads, mae_skip=MAE_SKIP,
                  pitch_given_step=bool(model.cfg.categorical and model.cfg.pitch_given_step),
                  grouped_files=found.grouped, model=_shown(run), data=_shown(data))
    return result


def _shown(path: Path) -> str:
    """A path as the repository's commands name it (relative to the checkout when inside it)."""
    path = Path(path).absolute()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def baseline_eval(b: Baseline, runs: Path, found, data: Path, notes: int) -> dict[str, Any]:
    """A baseline's eval JSON: re-scored from ``runs/NAME`` if trained here (with its generated
    music at temperature 1, ``notes`` notes), else the stored one."""
    stored = BASELINES / b.name
    run = runs / b.name
    if (run / "model.safetensors").is_file():
        result = score(run, found, data)
        test = [found.notes[p] for p in found.files["test"]]
        result["generated"] = generated_music(load_model(run), test, notes, (1.0,))
        stored.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "metrics.jsonl"):
            shutil.copy(run / name, stored / name)
        (stored / "eval.json").write_text(json.dumps(result, indent=1) + "\n")
        return result
    if not (stored / "eval.json").is_file():
        raise SystemExit(f"{b.name}: no trained run in {run} and no stored {stored / 'eval.json'}")
    return json.loads((stored / "eval.json").read_text())


def row(label: str, e: dict, epochs: int) -> str:
    """One comparison row from an eval JSON: marginal pitch, step NLL, MAEs."""
    step = f"{e['step']:.3f}" if e.get("heads") == "categorical" else "— (MSE head)"
    return (f"| {label} | {epochs} | {e['pitch_marginal']:.3f} | {step} | "
            f"{e['step_mae_ms']:.0f} | {e['duration_mae_ms']:.0f} |")


def lower(a: float, b: float) -> str:
    """``a`` beside ``b`` in per cent: whole per cents, one decimal under 2%."""
    pct = 100 * abs(1 - a / b)
    figure = f"{pct:.1f}%" if pct < 2 else f"{pct:.0f}%"
    return figure + (" lower" if a <= b else " higher")


def step_times(model, rounds: int = 5, n: int = 1000) -> dict[str, float]:
    """p50/p99 of one ``next`` in µs: over all ``rounds`` x ``n`` steps, and in the least contended
    round (lowest p50), as the shared machine's load comes and goes."""
    g = model.generator(seed=0)
    g.warmup()
    p = SamplerParams()
    per_round = []
    for _ in range(rounds):
        t = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            g.next(p)
            t.append(time.perf_counter_ns() - t0)
        per_round.append(np.array(t) / 1e3)
    best = min(per_round, key=lambda us: float(np.percentile(us, 50)))
    every = np.concatenate(per_round)
    return {"p50": float(np.percentile(every, 50)), "p99": float(np.percentile(every, 99)),
            "best_p50": float(np.percentile(best, 50)), "best_p99": float(np.percentile(best, 99))}


def without_bin_values(model: LoadedModel) -> LoadedModel:
    """The same weights drawing each sampled time log-uniformly inside its bin (as before ``step_values``)."""
    cfg, meta, weights, directory = read_model(model.path)
    return LoadedModel(replace(cfg, step_values=[], dur_values=[]), meta, weights, directory)


def rhythm_note(card: Card, cfg, meta: dict, gen: dict[str, Any], train: dict[str, Any],
                plain: dict[str, Any] | None) -> str:
    """Where sampled onsets and steps land beside the data's grid, and why (the bin values, issue 14)."""
    t1, held = gen["temperatures"]["1.0"], gen["held_out"]
    figures = (f"at T 1.0, {t1['step_grid_share']:.2f} of the sampled steps are a whole number of sixteenths "
               f"and {t1['grid_share']:.2f} of the onsets are on the grid, against {held['step_grid_share']:.2f} "
               f"and {held['grid_share']:.2f} in the test pieces and {train['step_grid_share']:.2f} and "
               f"{train['grid_share']:.2f} in the training split here")
    if not cfg.step_values:
        return (f"{card.name} has no `step_values`: a sampled step is drawn log-uniformly inside its bin "
                f"({cfg.time_bins} bins from {cfg.time_min} to {cfg.time_max} s, each "
                f"{100 * ((cfg.time_max / cfg.time_min) ** (1 / cfg.time_bins) - 1):.0f}% wide), so one step off "
                f"the grid moves every later onset off it: {figures}. `livernn bin-values` gives a model trained "
                "on quantised data its values (training/README.md).")
    source = meta.get("bin_values")
    if source:
        where = (f"added after training by `livernn bin-values models/{card.name} --data {source['data']}` from "
                 f"the train split of {source['files']} files ({source['notes']} notes, "
                 f"{100 * source['grid_share']:.1f}% of steps on their grid, versions "
                 f"{'grouped' if source['group_versions'] else 'not grouped, as the model was trained'})")
        if source["same_as_training"]:
            where += f", the files {card.name} was trained on"
        else:
            d = meta["data"]
            where += (f", this checkout's export: not the {d['files']['train']} files ({d['notes']['train']} notes) "
                      f"{card.name} was trained on, of its export's {sum(d['files'].values())}")
    else:
        where = "stored by training"
    text = (f"{card.name} plays each sampled step and duration bin's median in its training data "
            f"(`step_values`/`dur_values`, {where}): {figures}.")
    if plain is not None:
        p1 = plain["temperatures"]["1.0"]
        text += (f" The same weights and pieces drawing each time log-uniformly inside its "
                 f"{100 * ((cfg.time_max / cfg.time_min) ** (1 / cfg.time_bins) - 1):.0f}%-wide bin (no values, "
                 f"as before): {p1['step_grid_share']:.2f} of steps and {p1['grid_share']:.2f} of onsets.")
    if held["grid_share"] - t1["grid_share"] > 0.2:
        text += (" The onsets stay below the test pieces' because the training data mixes tempos (music21's "
                 "exports carry each score's own: a piece at another tempo is off the 120 bpm grid, and "
                 f"{train['off_tempo_files']} of the {train['files']} training files here have under 90% of their "
                 "onsets on it): the model sometimes plays such a piece's step inside a 120 bpm one, and that "
                 "step takes the rest of the piece off the grid.")
    return text


def generated_rows(gen: dict[str, Any], others: dict[str, dict[str, Any]]) -> list[str]:
    """The statistics table: the test pieces, the model at each temperature, ``others`` (label -> a
    baseline's ``generated``, same notes and pieces) at T 1.0."""
    temps = list(gen["temperatures"])
    lines = ["| statistic | test pieces | " + " | ".join(f"T {t}" for t in temps)
             + "".join(f" | {label}, T 1.0" for label in others) + " |",
             "|---|---|" + "---|" * (len(temps) + len(others))]
    for key, label in STATS.items():
        cells = [gen["held_out"][key], *(gen["temperatures"][t][key] for t in temps),
                 *(o["temperatures"]["1.0"].get(key) for o in others.values())]  # a stored run may predate a key
        lines.append(f"| {label} | " + " | ".join("—" if c is None else f"{c:.3f}" if key != "pitch_range"
                                                     else f"{c:.1f}" for c in cells) + " |")
    return lines


def processes(hw: dict) -> str:
    """How a run used the CPU: its DDP processes (``livernn train``'s own on a multi-core CPU,
    or torchrun's) and torch threads each."""
    world, threads = hw.get("world_size", 1), hw["threads"]
    each = f"{threads} torch thread{'s' if threads != 1 else ''}"
    return f"{world} training processes (DDP) of {each} each" if world > 1 else each


def make_card(card: Card, data: Path, runs: Path, notes: int, cache_dir: str | None = None) -> str:
    out = ROOT / "models" / card.name
    model = load_model(out)
    meta, m = model.meta, model.meta["metrics"]
    cfg, d = model.config, model.meta["data"]
    unit = model_time_unit(meta)
    found = split_files(data, cache_dir=cache_dir, time=unit, ref_bpm=cfg.ref_bpm)
    test = [found.notes[p] for p in found.files["test"]]
    base = {b.name: baseline_eval(b, runs, found, data, notes) for b in card.baselines}
    ours = score(out, found, data)
    ours["generated"] = generated_music(model, test, notes, GEN_TEMPERATURES)
    plain = generated_music(without_bin_values(model), test, notes, (1.0,)) if cfg.step_values else None
    if plain is not None:
        ours["generated_without_bin_values"] = plain
    train = [found.notes[p] for p in found.files["train"]]
    train_stats = corpus_stats(train, model.ref_bpm)
    train_stats["files"] = len(train)
    train_stats["off_tempo_files"] = sum(grid_share(p, model.ref_bpm)[0] < 0.9 for p in train)
    (out / "eval_test.json").write_text(json.dumps(ours, indent=1) + "\n")
    epochs = m["epochs_run"]

    samples = out / "samples"
    for temp in SAMPLE_TEMPERATURES:
        sample = generate_notes(model, 300, SamplerParams(temperature=temp), seed=1)
        stem = f"{card.name}_t{temp:.1f}"
        notes_to_midi(sample, samples / f"{stem}.mid", bpm=model.ref_bpm, name=model.name)
        piano_roll_png(sample, samples / f"{stem}.png", title=f"models/{card.name}, temperature {temp}")
    load = os.getloadavg()[0]
    steps = step_times(model)
    ours_ep = epochs_of(out)
    hw = meta["hardware"]
    wall_min = ours_ep[-1]["wall_s"] / 60 if "wall_s" in ours_ep[-1] else card.wall_min  # measured, where logged
    wall = f" (about {wall_min:.0f} min wall clock with per-epoch validation)" if wall_min else ""
    best_rate = max(r["notes_per_s"] for r in ours_ep)
    gen = ours["generated"]
    comparisons = "".join(f", {lower(ours['pitch_marginal'], base[b.name]['pitch_marginal'])} than "
                          f"{b.label} ({base[b.name]['pitch_marginal']:.3f})" for b in card.baselines)
    lines = [
        f"# {card.title}",
        "",
        f"{card.about} A {cfg.layers} x {cfg.hidden} LSTM (pitch embedding {cfg.embed}, dropout {cfg.dropout}) "
        f"with categorical heads: pitch (128), step ({cfg.time_bins} log-spaced bins {cfg.time_min}-"
        f"{cfg.time_max} s plus a zero bin for chords), duration ({cfg.time_bins} bins) and velocity "
        f"({cfg.vel_bins} bins); the pitch head sees the sampled step bin. Times are seconds at "
        f"{cfg.ref_bpm:g} bpm" + (
            f", read from each file's beats through its own tempo map (`[data] time = \"beats\"`: one beat "
            f"is {60 / cfg.ref_bpm:g} s whatever tempo the file carries)" if unit == "beats" else
            " as each file plays (`[data] time = \"seconds\"`)")
        + ". Files: `model.safetensors` (weights), `config.json` (architecture, "
        "representation, data facts, metrics, seed, recipe), `metrics.jsonl` and `loss.png` (per epoch), "
        "`eval_test.json` (every figure below).",
        "",
        "## Data and split",
        "",
        f"music21's `{card.corpus}` corpus written as MIDI by `livernn data music21 --corpus {card.corpus}` "
        f"({sum(d['files'].values())} files). "
        f"Trained on a split per file by a hash of its path: train {d['files']['train']} files / "
        f"{d['notes']['train']} notes, val {d['files']['val']} / {d['notes']['val']}, test "
        f"{d['files']['test']} / {d['notes']['test']}. Augmentation: transposition within "
        f"±{meta['recipe']['augment']['transpose']} semitones (kept inside 0..127); no tempo stretch "
        f"(the scores are quantised). {card.data_note} Test split here: {len(test)} files, "
        f"{sum(len(p) for p in test)} notes.",
        "",
        "## Scores (test split, whole pieces, no augmentation)",
        "",
        "Pitch: per-note NLL in nats with the next step summed out (`pitch_marginal`), the figure every "
        "model has. Step: the step head's NLL, beside the context-free count of its bins (train "
        f"frequencies, add-one): {ours['unigram_step']:.3f}. MAE: of each head's median (the regression "
        f"heads' output), each piece's first {MAE_SKIP} predictions left out so every model is scored on the "
        "same notes. Each model at its best-validation checkpoint; `eval_test.json` and "
        "`training/baselines/*/eval.json` (with each run's config.json and metrics.jsonl) hold every figure.",
        "",
        "| model | epochs | pitch NLL | step NLL | step MAE ms | duration MAE ms |",
        "|---|---|---|---|---|---|",
        row(card.name, ours, epochs),
        *(row(b.label, base[b.name], b.epochs) for b in card.baselines),
        f"| context-free count (train split here) | | {ours['unigram_pitch']:.3f} | {ours['unigram_step']:.3f} | | |",
        "",
        f"Pitch NLL: {card.name} {ours['pitch_marginal']:.3f}{comparisons}, "
        f"{lower(ours['pitch_marginal'], ours['unigram_pitch'])} than the context-free count "
        f"({ours['unigram_pitch']:.3f}). Step NLL "
        f"{ours['step']:.3f} against its count {ours['unigram_step']:.3f} "
        f"({ours['step'] / ours['unigram_step']:.2f} x). Given the true next step, {card.name}'s pitch NLL is "
        f"{ours['pitch']:.3f}: that figure is not comparable with the others and is not used here.",
        "",
        "## Generated music",
        "",
        f"`livernn eval models/{card.name} --data data/{card.name} --generate {notes}`: {notes} notes at each "
        f"pitch temperature (timing temperature {gen['timing_temperature']:g}), in {gen['pieces']} pieces as "
        "long as the test pieces (seed k for piece k, from the model's start note), beside the test pieces. "
        "Pitch-class entropy (bits), scale consistency (best share of notes in one major or natural minor "
        "scale), pitch range and groove consistency (1 - mean Hamming distance of neighbouring bars' "
        "sixteenth onset patterns, 4-beat bars) as MusPy defines them, means over pieces; chord rate (notes "
        "with step 0), onsets within 0.01 beat of the sixteenth grid at "
        f"{gen['bpm']:g} bpm, and non-zero steps within 0.01 beat of a whole number of sixteenths (one odd "
        "step moves every later onset off the grid; this counts it once), pooled over notes "
        "(`livernn/train/musicstats.py`)" + ("; — where a stored run predates the statistic" if any(
            set(STATS) - set(base[b.name]["generated"]["temperatures"]["1.0"]) for b in card.baselines
            if "generated" in base[b.name]) else "") + ".",
        "",
        *generated_rows(gen, {b.label: base[b.name]["generated"]
                              for b in card.baselines if "generated" in base[b.name]}),
        "",
        rhythm_note(card, cfg, meta, gen, train_stats, plain),
        "",
        "Samples, 300 notes each (seed 1): " + ", ".join(
            f"T {t} [MIDI](samples/{card.name}_t{t:.1f}.mid) ([roll](samples/{card.name}_t{t:.1f}.png))"
            for t in SAMPLE_TEMPERATURES) + ".",
        "",
        "## Training",
        "",
        f"{m['epochs_run']} epochs (best at epoch {m['epoch']}), {m['train_s'] / 60:.1f} min of training "
        f"steps{wall} on {hw['cpu']} CPU, {processes(hw)}, shared with other jobs; "
        f"throughput {m['notes_per_s']:.0f} predicted notes/s on average, {best_rate:.0f} in the least "
        "contended epoch. Loss curves: [loss.png](loss.png); per epoch: "
        f"[metrics.jsonl](metrics.jsonl). Seed {meta['seed']}, torch {hw['torch']}.",
        "",
        "Reproduce (the baselines as trained for this card: one thread each, two runs at a time):",
        "",
        "```",
        f"livernn data music21 --corpus {card.corpus} --out data/{card.name}",
        f"livernn train --data data/{card.name} --out models/{card.name} --config training/{card.name}.toml",
        *(f"livernn train --data data/{card.name} --out runs/{b.name} --config {b.recipe} --epochs {b.epochs} "
          f"{TRAIN_FLAGS}" for b in card.baselines),
        f"livernn eval models/{card.name} --data data/{card.name} --split test --generate {notes}",
        f".venv/bin/python training/make_card.py {card.name}",
        "```",
        "",
        "## Live step",
        "",
        f"One `NoteGenerator.next` while this card was made (fused numpy cell, `OPENBLAS_NUM_THREADS=1` as for "
        f"live use, niceness {os.nice(0)}; 2-core machine shared with other jobs, load average {load:.1f}): "
        f"p50 {steps['p50']:.0f} µs, p99 {steps['p99']:.0f} µs over 5 rounds of 1000 steps; p50 "
        f"{steps['best_p50']:.0f} µs, p99 {steps['best_p99']:.0f} µs in the least contended "
        "round. The other jobs' preemptions set the p99. See bench/bench_generate.py for the comparison with "
        "nn.LSTM stepping and window re-runs; `OPENBLAS_NUM_THREADS=1` keeps numpy's matrix-vector products "
        "on the calling thread.",
        "",
    ]
    text = "\n".join(lines)
    (out / "README.md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(CARDS), choices=list(CARDS), help="cards to write")
    ap.add_argument("--data", help="corpus folder (default data/NAME; one model only)")
    ap.add_argument("--runs", default="runs", help="folder of trained baseline runs (runs/NAME)")
    ap.add_argument("--cache-dir", default="data/cache", help="note cache directory")
    ap.add_argument("--generate", type=int, default=GENERATE_NOTES, help="notes for the generated-music table")
    args = ap.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":  # the live set-up the step times are for (numpy reads it once)
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    if args.data and len(args.models) != 1:
        ap.error("--data names the corpus of one model")
    for name in args.models:
        print(make_card(CARDS[name], Path(args.data or f"data/{name}"), Path(args.runs), args.generate,
                         args.cache_dir))


if __name__ == "__main__":
    main()

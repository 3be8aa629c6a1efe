"""``livernn eval``: per-note scores of a model on a data split, beside context-free counts.

Reported (JSON keys): each head's NLL (``pitch``, ``step``, ``duration``, ``velocity``,
``total``); ``pitch_marginal``, the pitch NLL with the next step summed out (the figure to
compare between models: ``pitch`` of a ``pitch_given_step`` model is conditioned on the
true next step); ``step_mae_ms``/``duration_mae_ms``, the error of each head's median
with each piece's first 24 predictions left out; and the context-free references counted
on the training split with add-one smoothing: ``unigram_pitch``, and for categorical
heads ``unigram_step`` and ``unigram_duration``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROWS = (("pitch", "pitch | true next step"), ("pitch_marginal", "pitch, step summed out"),
        ("unigram_pitch", "pitch, context-free count"), ("step", "step"),
        ("unigram_step", "step, context-free count"), ("duration", "duration"),
        ("unigram_duration", "duration, context-free count"), ("velocity", "velocity"),
        ("total", "total"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="score a model on MIDI data (per-note NLL per head, timing MAE)")
    p.add_argument("model", help="model directory")
    p.add_argument("--data", help="folder of MIDI files (default: the model's training corpus, if it is here)")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="test")
    p.add_argument("--max-files", type=int, help="first N files of the folder, as in training")
    p.add_argument("--cache-dir", help="note cache directory")
    p.add_argument("--time", choices=["beats", "seconds"],
                   help="read the files' times in this unit (default: the model's, meta.recipe.data.time)")
    p.add_argument("--generate", type=int, metavar="N",
                   help="also sample N notes at each temperature and measure them beside the split's pieces")
    p.add_argument("--temperatures", default="0.8,1.0,1.5", help="pitch temperatures for --generate (comma-separated)")
    p.add_argument("--timing-temperature", type=float, default=1.0, help="step/duration temperature for --generate")
    p.add_argument("--beats-per-bar", type=int, default=4, help="bar length for groove consistency (--generate)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.data import split_files
    from livernn.errors import LivernnError
    from livernn.model.checkpoint import load_torch_model
    from livernn.model.net import LossWeights
    from livernn.train.config import model_time_unit
    from livernn.train.evaluate import MAE_SKIP, evaluate, references

    model, meta, directory = load_torch_model(args.model)
    weights = LossWeights(**(meta.get("recipe", {}).get("loss") or {}))
    temperatures = _temperatures(args.temperatures)
    if args.generate is not None and not 1 <= args.generate <= 1_000_000:
        raise LivernnError(f"--generate takes 1..1000000 notes, got {args.generate}")
    if args.beats_per_bar < 1:
        raise LivernnError(f"--beats-per-bar must be at least 1, got {args.beats_per_bar}")
    data = args.data or (meta.get("data") or {}).get("root")
    if not data:
        raise LivernnError(f"{directory}: give --data (the model records no corpus)")
    if not args.data and not Path(data).is_dir():
        raise LivernnError(f"{directory}: give --data (the model's training corpus {data} is not here)")
    time = args.time or model_time_unit(meta)
    found = split_files(data, max_files=args.max_files, cache_dir=args.cache_dir, time=time,
                        ref_bpm=model.cfg.ref_bpm)
    pieces = [found.notes[p] for s, ps in found.files.items() for p in ps if args.split in ("all", s)]
    if not pieces:
        raise LivernnError(f"{data}: no files in split {args.split!r}")
    train = [found.notes[p] for p in found.files["train"]] or pieces
    result: dict[str, Any] = evaluate(model, pieces, weights)  # then strings, ints and bools join the floats
    result.update(references(model.cfg, train, pieces))
    result.update(model=str(directory), split=args.split, files=len(pieces), heads=model.cfg.heads,
                  pitch_given_step=bool(model.cfg.categorical and model.cfg.pitch_given_step),
                  mae_skip=MAE_SKIP, grouped_files=found.grouped, data=str(data), time=time)
    if args.generate is not None:
        from livernn.model import load_model
        from livernn.train.evaluate import generated_music

        result["generated"] = generated_music(load_model(directory), pieces, args.generate, temperatures,
                                              args.beats_per_bar, args.timing_temperature)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    unit = "NLL nats/note" if model.cfg.categorical else "loss/note (step, duration: MSE + pressure)"
    print(f"{directory} on {data} [{args.split}, times in {time}]: {len(pieces)} files, {result['notes']} notes, {unit}"
          f" ({found.grouped} files of the folder are versions of another, kept in one split)")
    for key, label in ROWS:
        if key in result:
            print(f"  {label:30s} {result[key]:.4f}")
    print(f"  step MAE {result['step_mae_ms']:.1f} ms, duration MAE {result['duration_mae_ms']:.1f} ms "
          f"(median of each head; {result['mae_notes']} notes, each piece's first {MAE_SKIP} predictions left out)")
    if "generated" in result:
        print(generated_table(result["generated"], args.split))
    return 0


def _temperatures(text: str) -> list[float]:
    from livernn.errors import LivernnError

    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or not all(0.05 <= v <= 5.0 for v in values):
        raise LivernnError(f"--temperatures takes comma-separated numbers in 0.05..5, got {text!r}")
    return values


def generated_table(gen: dict[str, Any], split: str = "test") -> str:
    """The human-readable table of ``generated`` (``livernn eval --generate``): a row per statistic."""
    from livernn.train.musicstats import STATS

    temps = list(gen["temperatures"])
    lines = [f"generated: {gen['notes']} notes in {gen['pieces']} pieces (seeds 0..{gen['pieces'] - 1}, "
             f"lengths of the {split} pieces), pitch temperatures {', '.join(temps)}, timing temperature "
             f"{gen['timing_temperature']:g}; grid 1/16 beat (±{gen['grid_tolerance_beats']:g} beat) at "
             f"{gen['bpm']:g} bpm, {gen['beats_per_bar']} beats a bar",
             f"  {'':30s} {split:>9s}" + "".join(f" {'T ' + t:>9s}" for t in temps)]
    columns = [gen["held_out"], *(gen["temperatures"][t] for t in temps)]
    for key, label in STATS.items():
        lines.append(f"  {label:30s}" + "".join(f" {c[key]:9.3f}" for c in columns))
    return "\n".join(lines)

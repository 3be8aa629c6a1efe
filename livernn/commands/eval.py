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
from typing import Any

ROWS = (("pitch", "pitch | true next step"), ("pitch_marginal", "pitch, step summed out"),
        ("unigram_pitch", "pitch, context-free count"), ("step", "step"),
        ("unigram_step", "step, context-free count"), ("duration", "duration"),
        ("unigram_duration", "duration, context-free count"), ("velocity", "velocity"),
        ("total", "total"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="score a model on MIDI data (per-note NLL per head, timing MAE)")
    p.add_argument("model", help="model directory")
    p.add_argument("--data", required=True, help="folder of MIDI files")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="test")
    p.add_argument("--max-files", type=int, help="first N files of the folder, as in training")
    p.add_argument("--cache-dir", help="note cache directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.data import split_files
    from livernn.errors import LivernnError
    from livernn.model.checkpoint import load_torch_model
    from livernn.model.net import LossWeights
    from livernn.train.evaluate import MAE_SKIP, evaluate, references

    model, meta, directory = load_torch_model(args.model)
    weights = LossWeights(**(meta.get("recipe", {}).get("loss") or {}))
    found = split_files(args.data, max_files=args.max_files, cache_dir=args.cache_dir)
    pieces = [found.notes[p] for s, ps in found.files.items() for p in ps if args.split in ("all", s)]
    if not pieces:
        raise LivernnError(f"{args.data}: no files in split {args.split!r}")
    train = [found.notes[p] for p in found.files["train"]] or pieces
    result: dict[str, Any] = evaluate(model, pieces, weights)  # then strings, ints and bools join the floats
    result.update(references(model.cfg, train, pieces))
    result.update(model=str(directory), split=args.split, files=len(pieces), heads=model.cfg.heads,
                  pitch_given_step=bool(model.cfg.categorical and model.cfg.pitch_given_step),
                  mae_skip=MAE_SKIP, grouped_files=found.grouped)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    unit = "NLL nats/note" if model.cfg.categorical else "loss/note (step, duration: MSE + pressure)"
    print(f"{directory} on {args.data} [{args.split}]: {len(pieces)} files, {result['notes']} notes, {unit}"
          f" ({found.grouped} files of the folder are versions of another, kept in one split)")
    for key, label in ROWS:
        if key in result:
            print(f"  {label:30s} {result[key]:.4f}")
    print(f"  step MAE {result['step_mae_ms']:.1f} ms, duration MAE {result['duration_mae_ms']:.1f} ms "
          f"(median of each head; {result['mae_notes']} notes, each piece's first {MAE_SKIP} predictions left out)")
    return 0

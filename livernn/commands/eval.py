"""``livernn eval``: per-note NLL of a model on a data split (and the unigram reference)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="score a model on MIDI data (per-note NLL per head)")
    p.add_argument("model", help="model directory")
    p.add_argument("--data", required=True, help="folder of MIDI files")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="test")
    p.add_argument("--max-files", type=int, help="first N files of the folder, as in training")
    p.add_argument("--cache-dir", help="note cache directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.data import find_midi_files, load_notes
    from livernn.errors import LivernnError
    from livernn.model.checkpoint import load_torch_model
    from livernn.model.net import LossWeights
    from livernn.train.evaluate import evaluate, pitch_unigram, unigram_nll

    model, meta, directory = load_torch_model(args.model)
    weights = LossWeights(**(meta.get("recipe", {}).get("loss") or {}))
    files = find_midi_files(args.data, max_files=args.max_files)
    chosen = [p for s, ps in files.items() for p in ps if args.split in ("all", s)]
    if not chosen:
        raise LivernnError(f"{args.data}: no files in split {args.split!r}")
    pieces = [n for _, n in load_notes(chosen, cache_dir=args.cache_dir)[0]]
    train = [n for _, n in load_notes(files["train"], cache_dir=args.cache_dir)[0]] or pieces
    result = evaluate(model, pieces, weights)
    result["unigram_pitch"] = unigram_nll(pitch_unigram(train), pieces)
    result.update(model=str(directory), split=args.split, files=len(pieces), heads=model.cfg.heads)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    unit = "NLL nats/note" if model.cfg.categorical else "loss/note (step, duration: MSE + pressure)"
    print(f"{directory} on {args.data} [{args.split}]: {len(pieces)} files, {result['notes']} notes, {unit}")
    for key in ("pitch", "step", "duration", "velocity", "total", "unigram_pitch"):
        print(f"  {key:14s} {result[key]:.4f}")
    return 0

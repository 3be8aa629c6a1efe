"""``livernn train``: train a note model from a folder of MIDI files and a recipe."""

from __future__ import annotations

import argparse
import json

# CLI flag -> recipe key it overrides
OVERRIDES = {
    "epochs": "train.epochs", "batch_size": "train.batch_size", "seq_len": "train.seq_len",
    "lr": "train.lr", "seed": "train.seed", "device": "train.device", "threads": "train.threads",
    "processes": "train.processes",
    "workers": "train.workers", "max_files": "train.max_files", "time_limit": "train.time_limit_min",
    "cache_dir": "train.cache_dir", "amp": "train.amp", "patience": "train.patience",
    "hidden": "model.hidden", "layers": "model.layers", "dropout": "model.dropout",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a note model on a folder of MIDI files",
                              description="Train a note LSTM. On a CPU with several cores it starts one training "
                              "process per core (DDP, each a share of the batch; --processes 1: one); "
                              "under torchrun it trains with DDP across torchrun's processes.")
    p.add_argument("--data", required=True, help="folder of MIDI files (searched recursively)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--config", help="training recipe (TOML), e.g. training/bach.toml")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--init", metavar="MODEL",
                   help="start from this model's weights (a name or a path; its architecture is kept)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    for flag, typ in (("epochs", int), ("batch-size", int), ("seq-len", int), ("lr", float),
                      ("seed", int), ("threads", int), ("processes", int), ("workers", int), ("max-files", int),
                      ("hidden", int), ("layers", int), ("dropout", float), ("patience", int),
                      ("time-limit", float), ("cache-dir", str)):
        p.add_argument(f"--{flag}", type=typ, help=f"override the recipe's {OVERRIDES[flag.replace('-', '_')]}")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--amp", choices=["auto", "off"], help="mixed precision on CUDA")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.train import load_recipe, pick_device, train
    from livernn.train.finetune import explicit_model_keys
    from livernn.train.spawn import plan, train_processes

    overrides = {key: getattr(args, name) for name, key in OVERRIDES.items()
                 if getattr(args, name, None) is not None}
    recipe = load_recipe(args.config, overrides)
    keys = explicit_model_keys(args.config, overrides) if args.init else set()
    processes, threads = plan(recipe, pick_device(recipe.train.device).type)
    if processes > 1:
        metrics = train_processes(recipe, args.data, args.out, processes=processes, threads=threads,
                                  resume=args.resume, progress=not args.no_progress, init=args.init, init_keys=keys)
    else:
        metrics = train(recipe, args.data, args.out, resume=args.resume, progress=not args.no_progress,
                        init=args.init, init_keys=keys)
    if metrics:
        print(json.dumps({k: metrics[k] for k in ("val", "test") if k in metrics}, indent=1))
    return 0

"""``livernn bin-values``: store the seconds each step/duration bin plays in a trained model.

The training split's median per bin (``livernn.train.bins``), what training stores itself
for quantised data; for models trained before ``step_values`` existed. Only config.json
changes (the weights are not touched).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bin-values", help="store a model's per-bin step/duration seconds from its (quantised) training data",
        description="Compute the median seconds of the training split's steps and durations in each of the "
                    "model's bins (as training does for quantised data) and write them into its config.json, "
                    "so sampled rhythm plays the data's values. The split is the model's own: the hash split "
                    "of --data with the max_files and group_versions its meta records.")
    p.add_argument("model", help="model directory (or a name)")
    p.add_argument("--data", required=True, help="the model's training corpus: a folder of MIDI files")
    p.add_argument("--cache-dir", help="note cache directory")
    p.add_argument("--workers", type=int, help="MIDI parsing processes (default one per core)")
    p.add_argument("--replace", action="store_true", help="recompute values the model already has")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.train.bins import add_bin_values

    record = add_bin_values(args.model, args.data, cache_dir=args.cache_dir, workers=args.workers,
                            replace_existing=args.replace)
    same = ("the files it was trained on" if record["same_as_training"]
            else "NOT the files it was trained on (meta.data differs)")
    print(f"{args.model}: step_values and dur_values from the train split of {record['data']} "
          f"({record['files']} files, {record['notes']} notes, {100 * record['grid_share']:.1f}% of steps on "
          f"their grid; group_versions {str(record['group_versions']).lower()}): {same}")
    return 0

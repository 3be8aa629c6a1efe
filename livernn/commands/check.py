"""``livernn check PATCH...``: validate patch files without playing them.

Prints ``file:line: key: what is wrong; what is allowed`` for every problem (stderr) and
exits 2, so an editor or CI can jump to the line; a good patch prints a one-line summary.
"""

from __future__ import annotations

import argparse
import sys

from livernn.patch.schema import PatchError, load_patch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="validate patch files (file:line errors)", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("patch", nargs="+", help="patch file(s) (.toml)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    failed = False
    for path in args.patch:
        try:
            patch = load_patch(path)
        except PatchError as exc:
            failed = True
            for line in exc.problems:
                print(line, file=sys.stderr)
            continue
        print(
            f"{path}: ok: {len(patch.voices)} voice(s), {len(patch.outputs)} output(s), "
            f"{len(patch.mappings)} mapping(s), {len(patch.automation)} automation, "
            f"{len(patch.triggers)} trigger(s), {len(patch.scenes)} scene(s)"
        )
    return 2 if failed else 0

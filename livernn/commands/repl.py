"""``livernn repl [PATCH]`` (also plain ``livernn``): play the model from a Python prompt.

With a patch, the show is built exactly as ``livernn perform PATCH`` builds it, then handed
to the prompt, so a set started from a patch can be taken over by typing.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "repl",
        help="live-code the note generator from an async Python prompt",
        description="An async Python prompt over the running engine: voice(), patch(), swap(), status().",
    )
    parser.add_argument("patch", nargs="?", help="a show patch (TOML file, or a shipped patch's name) to start from")
    parser.add_argument("--bpm", type=float, default=None, help="tempo in BPM (default: the patch's, else 120)")
    parser.add_argument("--history", type=Path, default=None,
                        help="history file (default $LIVERNN_HISTORY or ~/.livernn_history)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.library import find_patch
    from livernn.repl import main_repl

    patch = find_patch(args.patch) if args.patch is not None else None
    return main_repl(patch, args.bpm, args.history)

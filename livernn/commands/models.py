"""``livernn models``: the models (and patches) a name reaches, with each card's summary.

A performer types ``swap(v, "folk")`` or ``livernn play folk``; this shows which names
exist and where they come from (shipped, the user's folder, ``--patch``'s own models/).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the models (and patches) known by name",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--patch", help="also list the models in a patch's models/ folder (a patch file or name)")
    p.add_argument("--paths", action="store_true", help="show each model's folder and the search path")
    p.set_defaults(func=run)


def table(patch_folder: Path | None = None, paths: bool = False) -> str:
    """The listing `livernn models` prints and `models()` shows at the prompt."""
    from livernn.library import model_folders, models, patch_names

    entries = models(patch_folder)
    width = max((len(m.name) for m in entries), default=4)
    lines = [f"{m.name:<{width}}  {m.summary}" + (f"  [{m.where}: {m.path}]" if paths else f"  [{m.where}]")
             for m in entries] or ["(no models found)"]
    if paths:
        lines.append("search path: " + ", ".join(str(f) for f in model_folders(patch_folder)))
    lines.append("patches: " + (", ".join(patch_names()) or "none"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    folder = None
    if args.patch:
        from livernn.library import find_patch

        folder = find_patch(args.patch).resolve().parent
    print(table(folder, args.paths))
    return 0

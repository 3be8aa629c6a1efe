"""The ``livernn`` command.

Each subcommand lives in ``livernn/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
args; returns an exit code). Commands are discovered, so a new one is one new file.
With no subcommand, ``livernn`` starts the REPL when that command exists.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from livernn import __version__
from livernn.errors import LivernnError


def build_parser() -> argparse.ArgumentParser:
    import livernn.commands as commands

    parser = argparse.ArgumentParser(
        prog="livernn",
        description="Play a neural note generator live: train, perform, patch.",
    )
    parser.add_argument("--version", action="version", version=f"livernn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"livernn.commands.{info.name}")
        module.register(sub)
    return parser


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    """The subcommands ``build_parser`` registered (argparse keeps them in its subparsers action)."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return set(action.choices)
    return set()


def one_line_warnings() -> None:
    """livernn's own warnings (``DataWarning``: a MIDI file skipped) print as one line each,
    ``livernn: warning: skipping a.mid: not a readable MIDI file (...)``, not Python's two
    (the warning, then the source line that raised it); others keep Python's form."""
    import warnings

    python_form = warnings.formatwarning
    if getattr(python_form, "livernn", False):
        return

    def form(message, category, filename, lineno, line=None) -> str:
        if category.__module__.startswith("livernn."):
            return f"livernn: warning: {message}\n"
        return python_form(message, category, filename, lineno, line)

    form.livernn = True  # type: ignore[attr-defined]
    warnings.formatwarning = form


def main(argv: list[str] | None = None) -> int:
    one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if "repl" in _command_names(parser):
            args = parser.parse_args(["repl", *(argv or [])])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.func(args) or 0)
    except LivernnError as exc:
        print(f"livernn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

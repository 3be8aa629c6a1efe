"""Clock-source options on the command line: ``--sync``, ``--clock-out``, ``--set`` and the
``tempo N`` line, shared by ``livernn play`` and ``livernn perform``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from livernn.errors import LivernnError


def add_sync_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sync", metavar="link|midi:NAME",
                        help="take the beat from Ableton Link (needs livernn[link]) or MIDI clock in on port NAME")
    parser.add_argument("--clock-out", action="append", default=[], metavar="midi:NAME",
                        help="send MIDI clock (24 ppqn, Start/Stop, song position) on port NAME (repeatable)")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set PARAM=VALUE`` pairs, checked against the voice parameters (did you mean...)."""
    from livernn.engine.params import PARAM_SPECS
    from livernn.errors import unknown

    params: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise LivernnError(f"--set takes PARAM=VALUE, got {item!r}")
        if name not in PARAM_SPECS:
            raise unknown("parameter", name, PARAM_SPECS)
        params[name] = _value(text.strip())
    return params


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_sync_args(args: argparse.Namespace) -> None:
    """--sync and --clock-out as written, checked before anything is opened or written (a
    patch's outputs, the recording): ``--sync midi:`` is one line and leaves no file behind."""
    from livernn.sync import check_spec

    for spec in args.clock_out:
        kind, _, port = spec.partition(":")
        if kind != "midi" or not port.strip():
            raise LivernnError(f"--clock-out takes midi:NAME (a MIDI port), got {spec!r}")
    if args.sync is not None:
        try:
            check_spec(args.sync)
        except LivernnError as exc:
            raise LivernnError(f"--sync takes link or midi:NAME (a MIDI port), got {args.sync!r}") from exc


def apply_sync_args(session, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    """--clock-out (a port named by an output already reused, else a clock-only output) and
    --sync; prints ``tempo N`` whenever the tempo changes, whoever changed it."""
    check_sync_args(args)
    session.on("tempo", lambda bpm: say(f"tempo {round(bpm, 2):g}"))
    for spec in args.clock_out:
        port = spec.partition(":")[2]
        name = next((n for n, o in session.outputs.items()
                     if n == port or (callable(getattr(o, "clock_start", None)) and getattr(o, "name", None) == port)),
                    None)
        if name is None:
            name = f"clock-{port}"
            session.add_output(name, spec)
        session.clock_out(name)
        say(f"MIDI clock out on {session.outputs[name].describe()}")
    if args.sync:
        source = session.sync(args.sync)
        say(f"sync {source}")

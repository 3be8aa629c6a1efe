"""``livernn perform PATCH``: play a patch file, reloading it whenever it is saved.

A bad edit keeps the last good patch playing and prints the one-line reason. OSC and
MIDI controls, automation, triggers and scenes come from the patch. ``--duration`` stops
after so many seconds; ``--record`` writes everything played to a MIDI file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from livernn.patch.schema import load_patch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("perform", help="play a patch file (live reload on save)",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("patch", type=Path, help="patch file (.toml); see patches/")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--record", type=Path, metavar="F", help="record the set to a MIDI file")
    parser.add_argument("--no-reload", action="store_true", help="do not watch the file for changes")
    parser.set_defaults(func=run)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and not args.duration > 0:
        _say("livernn: error: --duration must be > 0 seconds")
        return 2
    patch = load_patch(args.patch)  # a bad patch at start: one error line, exit 2
    return asyncio.run(_perform(args, patch.bpm, patch.beats_per_bar))


async def _perform(args: argparse.Namespace, bpm: float, beats_per_bar: int) -> int:
    from livernn.engine import Session
    from livernn.patch.show import Show

    logging.basicConfig(format="livernn: %(message)s", level=logging.WARNING)  # rate-limited warnings
    session = Session(bpm=bpm, beats_per_bar=beats_per_bar)
    show = Show(session, args.patch, report=_say)
    show.runtime.on_action.append(
        lambda action, named: _say(f"bar {session.clock.bar() + 1:.0f}: {action} "
                                   + " ".join(f"{k}={v}" for k, v in named.items()))
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        patch = await show.load()
        if args.record:
            session.record(args.record)
        session.start()
        osc = f"; OSC on {show.osc.bind}:{show.osc.port}" if show.osc else ""
        _say(f"playing {patch.name}: voices {', '.join(session.voices) or 'none'} -> "
             f"{', '.join(session.outputs) or 'no outputs'}{osc}; Ctrl-C stops")
        watcher = None if args.no_reload else loop.create_task(show.watch(stop))
        try:
            await asyncio.wait_for(stop.wait(), args.duration)
        except TimeoutError:
            pass
        stop.set()
        if watcher is not None:
            await watcher
    finally:
        await show.close()
        session.stop()
    if args.record:
        _say(f"recorded {args.record}")
    return 0

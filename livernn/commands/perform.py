"""``livernn perform PATCH``: play a patch file, reloading it whenever it is saved.

A bad edit keeps the last good patch playing and prints the one-line reason. OSC and
MIDI controls, automation, triggers and scenes come from the patch. ``--duration`` stops
after so many seconds; ``--record`` writes everything played to a MIDI file, and
``--render`` turns that file into a WAV (FluidSynth) and a piano-roll PNG beside it.
``--out`` also sends every voice to an output the patch does not name (a MIDI port, an
OSC peer), which is how the demo plays on a synth when there is one. ``--web [HOST:]PORT``
serves the control page and ``--oscquery [HOST:]PORT`` the show's OSC namespace; with a
``[web]`` or ``[oscquery]`` table in the patch the flag's address replaces the table's
(``--oscquery-allow`` adds hosts, the other keys stay), so one page runs either way.
``--sync link|midi:NAME`` takes the beat from Ableton Link or a MIDI clock (over the
patch's ``[clock] source``), ``--clock-out midi:NAME`` also sends MIDI clock there, and
``tempo N`` is printed whenever the tempo changes. A status line (tempo, bar, voices, notes/s, late
notes) is redrawn on a terminal, printed every few seconds otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from livernn.outputs import spec_help
    from livernn.sync.options import add_sync_args

    parser = subparsers.add_parser("perform", help="play a patch file (live reload on save)",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("patch",
                        help="patch file (.toml) or a shipped patch's name (demo; `livernn models` lists them)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--record", type=Path, metavar="F", help="record the set to a MIDI file")
    parser.add_argument("--render", action="store_true",
                        help="after the set, render the recording to .wav (FluidSynth) and .png beside it")
    parser.add_argument("--out", action="append", default=[], metavar="SPEC",
                        help=f"also play every voice on SPEC: {spec_help()} (repeatable)")
    parser.add_argument("--web", metavar="[HOST:]PORT",
                        help="serve the control page (on 127.0.0.1 unless HOST; beyond it the URL carries a token); "
                             "replaces the address of the patch's [web]")
    parser.add_argument("--oscquery", metavar="[HOST:]PORT",
                        help="serve the show's OSC namespace over OSCQuery (OSC on the same UDP port); "
                             "replaces the address of the patch's [oscquery]")
    parser.add_argument("--oscquery-allow", action="append", default=[], metavar="NET",
                        help="a host or network OSCQuery answers besides this machine (repeatable; "
                             "added to [oscquery] allow)")
    add_sync_args(parser)
    parser.add_argument("--no-reload", action="store_true", help="do not watch the file for changes")
    parser.add_argument("--quiet", action="store_true", help="no status line")
    parser.set_defaults(func=run)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and not args.duration > 0:
        _say("livernn: error: --duration must be > 0 seconds")
        return 2
    if args.render and not args.record:
        _say("livernn: error: --render needs --record FILE.mid (the recording is what is rendered)")
        return 2
    from livernn.library import find_patch
    from livernn.outputs import check_spec
    from livernn.sync.options import check_sync_args

    check_sync_args(args)  # every flag before the show opens its outputs and the recording
    for spec in args.out:
        check_spec(spec)
    args.patch = find_patch(args.patch)  # a file, else a shipped or user patch by name
    code = asyncio.run(_perform(args))  # a bad patch at start: one error line, exit 2
    if code == 0 and args.render:
        _render(args.record)
    return code


def _render(recording: Path) -> None:
    """WAV and PNG of the set; a missing FluidSynth costs the WAV only, with a note why."""
    from livernn.errors import LivernnError
    from livernn.render import render_png, render_wav

    _say(f"rendered {render_png(recording)}")
    try:
        _say(f"rendered {render_wav(recording)}")
    except LivernnError as exc:
        _say(f"livernn: no WAV: {exc}")


async def _status_line(session, stop: asyncio.Event) -> None:
    """The performer's line: redrawn in place on a terminal, a log line every 5 s otherwise."""
    from livernn.repl.status import Toolbar

    toolbar = Toolbar(session)
    tty = sys.stderr.isatty()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.25 if tty else 5.0)
            except TimeoutError:
                pass
            line = toolbar()
            print(f"\r{line}\x1b[K" if tty else line.strip(), end="" if tty else "\n",
                  file=sys.stderr, flush=True)
        if tty:
            print(file=sys.stderr)
    finally:
        toolbar.close()


def _surface_overrides(args: argparse.Namespace) -> dict:
    """--web and --oscquery(-allow) as changes to the patch's [web]/[oscquery] tables
    (livernn.web.section.flag_override): one page and one OSCQuery server per show. Checked
    here, before the show opens anything."""
    if args.web is None and args.oscquery is None and not args.oscquery_allow:
        return {}
    from livernn.web.section import flag_override

    merges = {"web": flag_override("web", args.web),
              "oscquery": flag_override("oscquery", args.oscquery, args.oscquery_allow)}
    return {name: merge for name, merge in merges.items() if merge is not None}


async def _perform(args: argparse.Namespace) -> int:
    """Play until --duration or a stop signal; a signal is how a set ends, so it exits 0."""
    from livernn.engine import StopHandler
    from livernn.patch.show import open_show

    logging.basicConfig(format="livernn: %(message)s", level=logging.WARNING)  # rate-limited warnings
    stop = asyncio.Event()
    overrides = _surface_overrides(args)
    with StopHandler() as stopping:  # SIGINT, SIGTERM, SIGHUP
        stopping.on_request(stop.set)
        show = await open_show(args.patch, report=_say, taps=args.out, record=args.record, overrides=overrides)
        session = show.session
        stopping.add(session.stop)  # runs after show.close() below: every note ended, the recording written
        try:
            from livernn.sync.options import apply_sync_args

            apply_sync_args(session, args, _say)
            show.runtime.on_action.append(
                lambda action, named: _say(f"bar {session.clock.bar() + 1:.0f}: {action} "
                                           + " ".join(f"{k}={v}" for k, v in named.items()))
            )
            osc = f"; OSC on {show.osc.bind}:{show.osc.port}" if show.osc else ""
            assert show.patch is not None  # open_show returns a show with its patch loaded
            _say(f"playing {show.patch.name}: voices {', '.join(session.voices) or 'none'} -> "
                 f"{', '.join(session.outputs) or 'no outputs'}{osc}; Ctrl-C stops")
            loop = asyncio.get_running_loop()
            watcher = None if args.no_reload else loop.create_task(show.watch(stop))
            status = None if args.quiet else loop.create_task(_status_line(session, stop))
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
            except TimeoutError:
                pass
            stop.set()
            for task in (watcher, status):
                if task is not None:
                    await task
        finally:
            await show.close()
    if args.record:
        _say(f"recorded {args.record}")
    return 0

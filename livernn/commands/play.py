"""``livernn play``: play a model headless for a while, to ports and/or a MIDI file.

The plain, scriptable way to hear (or record) a model: no REPL, no patch. Used by tests
and CI as the engine's end-to-end run. Ctrl-C, SIGTERM and SIGHUP stop it cleanly: every
open note is ended and the recording is written.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    from livernn.outputs import spec_help
    from livernn.sync.options import add_sync_args

    p = subparsers.add_parser("play", help="play a model to MIDI/OSC outputs (headless)")
    p.add_argument("model", nargs="?", help="model name or directory (default: bach; `livernn models` lists names)")
    p.add_argument("--out", action="append", default=[], metavar="SPEC",
                   help=f"output, repeatable: {spec_help()}")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to play (default 30; 0 = until stopped)")
    p.add_argument("--record", metavar="FILE.mid", help="write everything played to a MIDI file")
    p.add_argument("--bpm", type=float, default=120.0, help="tempo (default 120)")
    p.add_argument("--temperature", type=float, default=1.0, help="pitch temperature (0.05..5)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--channel", type=int, default=1, help="MIDI channel 1..16 (default 1)")
    p.add_argument("--listen", metavar="midi:NAME", help="play with a human: their MIDI input (part of a port's name)")
    p.add_argument("--mode", choices=("answer", "follow", "accompany"), default=None,
                   help="with --listen: answer (call and response, the default), follow (harmonise), "
                        "accompany (chord zone)")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="a voice parameter (repeatable), e.g. --set density=1.5 --set pitch_max=84; with "
                        "--listen also a listen option, e.g. --set gap=2 --set passing=scale --set intervals=-4,-3")
    add_sync_args(p)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.engine import Session, StopHandler
    from livernn.errors import LivernnError
    from livernn.sync.options import apply_sync_args, check_sync_args, parse_sets

    if not math.isfinite(args.duration) or args.duration < 0:
        raise LivernnError(f"--duration must be a number of seconds >= 0, got {args.duration}")
    sets, listening = _listen_sets(args)  # a bad listen option: one line, before anything opens
    check_sync_args(args)  # --sync midi: too
    session = Session(bpm=args.bpm)
    recording = args.record or (None if args.out else "livernn-play.mid")
    with StopHandler(session.stop) as stopping:  # leaving it ends every note, writes the recording
        for i, spec in enumerate(args.out, 1):
            output = session.add_output(f"out{i}", spec)
            if not args.quiet:
                print(f"output {i}: {output.describe()}", flush=True)
        if recording:
            recording = session.record(recording)
        params = {"temperature": args.temperature, **parse_sets(sets)}
        voice = session.add_voice("play", args.model, channel=args.channel, seed=args.seed, **params)
        feed = _listen(session, voice, args, listening) if args.listen else None
        apply_sync_args(session, args, (lambda line: None) if args.quiet else (lambda line: print(line, flush=True)))
        session.start()
        if not args.quiet:
            print(f"playing {voice.model.name} at {args.bpm:g} BPM"
                  f"{f' for {args.duration:g} s' if args.duration else ''} (Ctrl-C stops)", flush=True)
        end = time.monotonic() + args.duration if args.duration else math.inf
        while time.monotonic() < end and not stopping.requested:
            time.sleep(min(0.1, max(end - time.monotonic(), 0.0)))
    if feed is not None:
        feed.close()
    if not args.quiet:
        notes = sum(v.notes_played for v in session.voices.values())
        where = f"; recorded to {recording}" if recording else ""
        print(f"played {notes} notes{where}", file=sys.stdout, flush=True)
    return stopping.exit_code


def _listen_sets(args: argparse.Namespace) -> tuple[list[str], Any]:
    """--set items naming a listen option (not a voice parameter): the ListenOptions for
    --mode (checked by ``listen_options``); the rest stay voice parameters. ``mode`` and the
    player's ``channel`` are not --set options (--mode; the player plays on any channel)."""
    from livernn.engine.listen import OPTION_NAMES, ListenOptions, listen_options
    from livernn.engine.params import PARAM_SPECS
    from livernn.errors import LivernnError, unknown
    from livernn.sync.options import _value

    if args.mode is not None and not args.listen:  # it would be ignored: say so
        raise LivernnError(f"--mode {args.mode} is how the voice listens: give --listen midi:NAME too")
    args.mode = args.mode or "answer"
    names = [n for n in OPTION_NAMES if n not in ("mode", "channel")]
    sets, options = [], {}
    for item in args.set:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name or name in PARAM_SPECS:
            sets.append(item)
            continue
        if name not in names:
            raise unknown("parameter or listen option", name, [*PARAM_SPECS, *names])
        if not args.listen:
            raise LivernnError(f"--set {name} is a listen option: give --listen midi:NAME too")
        text = text.strip()
        if isinstance(getattr(ListenOptions, name), tuple):
            try:
                options[name] = [int(v) for v in text.split(",") if v.strip()]
            except ValueError:
                raise LivernnError(f"--set {name} takes whole numbers separated by commas, got {text!r}") from None
        else:
            options[name] = _value(text)
    return sets, listen_options(args.mode, **options) if args.listen else None


def _listen(session, voice, args: argparse.Namespace, options: Any):
    """--listen midi:NAME --mode M: the player's notes reach the voice at note-on."""
    from livernn.controls.midi_in import MidiIn
    from livernn.controls.player import PlayerFeed
    from livernn.engine.listen import attach
    from livernn.errors import LivernnError

    kind, _, name = args.listen.partition(":")
    if kind != "midi" or not name:
        raise LivernnError(f"--listen takes midi:NAME (part of an input port's name), got {args.listen!r}")
    feed = PlayerFeed()
    try:
        player = MidiIn(session.bus, name, feed=feed)
    except LivernnError:
        feed.close()
        raise
    feed.add(attach(voice, options))
    if not args.quiet:
        print(f"listening to {player.name} ({args.mode})", flush=True)
    return _Closing(feed, player)


class _Closing:
    def __init__(self, feed, player) -> None:
        self.feed, self.player = feed, player

    def close(self) -> None:
        self.player.close()
        self.feed.close()

"""``livernn calibrate``: measure a MIDI loopback and suggest an output offset.

Patch a MIDI output back into an input (a cable from the interface's out to its in, or a
JACK/ALSA connection), then ``livernn calibrate --out midi:OUT --in IN``: notes go out, one
every ``--gap`` seconds, each with its own pitch, and the round trip of each is timed (the
callback's arrival on the monotonic clock). The one-way latency of that MIDI path is about
half the round trip; the line printed says which ``offset_ms`` makes the other outputs
(OSC, SuperDirt) meet it.
"""

from __future__ import annotations

import argparse
import threading
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("calibrate", help="measure a MIDI loopback; suggest an output offset (ms)")
    p.add_argument("--out", required=True, metavar="midi:NAME",
                   help="the MIDI output patched back (part of a port name)")
    p.add_argument("--in", dest="input", required=True, metavar="NAME", help="the MIDI input it comes back on")
    p.add_argument("--count", type=int, default=32, help="notes to time (default 32)")
    p.add_argument("--gap", type=float, default=0.05, help="seconds between notes (default 0.05)")
    p.add_argument("--timeout", type=float, default=15.0, help="give up after this many seconds (default 15)")
    p.set_defaults(func=run)


def _open(rtmidi, api: int, cls, query: str, client: str):
    from livernn.midi_system import match_port, quiet_stderr

    with quiet_stderr():
        port = cls(api, name=client)
    names = port.get_ports()
    match = match_port(names, query)
    if match is None:
        port.open_virtual_port(query)  # patch it yourself (jack_connect, aconnect, a patchbay)
    else:
        port.open_port(match)
    return port


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import rtmidi

    from livernn.errors import LivernnError
    from livernn.midi_system import choose_api, free_client

    kind, _, out_name = args.out.partition(":")
    if kind != "midi" or not out_name:
        raise LivernnError(f"--out takes midi:NAME, got {args.out!r}")
    if not 1 <= args.count <= 1000 or not 0.005 <= args.gap <= 2.0:
        raise LivernnError("--count must be 1..1000 and --gap 0.005..2 s")
    api = choose_api()
    sent: dict[int, float] = {}
    trips: list[float] = []
    lock = threading.Lock()
    back = threading.Event()

    def on_message(event, _data=None) -> None:
        now = time.monotonic()
        message = event[0]
        if len(message) == 3 and message[0] & 0xF0 == 0x90 and message[2] > 0:
            with lock:
                t = sent.pop(message[1], None)
                if t is not None:
                    trips.append(now - t)
                    back.set()

    inp = _open(rtmidi, api, rtmidi.MidiIn, args.input, "livernn-calibrate-in")
    inp.set_callback(on_message)
    out = _open(rtmidi, api, rtmidi.MidiOut, out_name, "livernn-calibrate-out")
    print(f"sending notes on {out_name}, listening on {args.input}: patch one to the other", flush=True)
    deadline = time.monotonic() + args.timeout
    pitch = 0
    try:
        while len(trips) < args.count and time.monotonic() < deadline:
            p = 36 + pitch % 60
            pitch += 1
            with lock:
                sent[p] = time.monotonic()
            out.send_message([0x9F, p, 1])  # channel 16, velocity 1: near silent on a synth
            out.send_message([0x8F, p, 0])
            time.sleep(args.gap)
        time.sleep(0.2)
    finally:
        inp.cancel_callback()
        free_client(inp)
        free_client(out)
    if not trips:
        raise LivernnError(f"nothing came back on {args.input} within {args.timeout:g} s: "
                           f"patch {out_name} to {args.input} (`livernn devices` lists the ports)")
    ms = np.array(trips) * 1000
    one_way = float(np.median(ms)) / 2
    print(f"round trip over {len(ms)} notes: median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
          f"spread {ms.max() - ms.min():.2f} ms", flush=True)
    print(f"one way about {one_way:.1f} ms: give the other outputs offset_ms = {one_way:.1f} "
          f"(or this MIDI output offset_ms = {-one_way:.1f})", flush=True)
    return 0

"""``livernn devices``: what livernn can talk to on this machine.

MIDI ports on every rtmidi API that works here (and why the others do not), whether a
JACK server is up, and the usual OSC ports, so a performer can pick names for ``--out``
and for patches without guessing.
"""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("devices", help="list MIDI ports, JACK and the usual OSC ports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rtmidi

    from livernn.midi_system import API_NAMES, api_works, list_ports
    from livernn.outputs import DEFAULT_PORTS

    compiled = rtmidi.get_compiled_api()
    chosen = None
    for api in [a for a in API_NAMES if a in compiled]:
        name = API_NAMES[api]
        if not api_works(api):
            why = {"ALSA": "no /dev/snd/seq" if not os.path.exists("/dev/snd/seq") else "cannot open the sequencer",
                   "JACK": "no JACK server running"}.get(name, "not available")
            print(f"MIDI {name}: not usable ({why})")
            continue
        chosen = chosen or name
        outs, ins = list_ports(api, outputs=True), list_ports(api, outputs=False)
        print(f"MIDI {name}:{' (livernn uses this one)' if chosen == name else ''}")
        print("  outputs (send to):  " + (", ".join(outs) if outs else "none"))
        print("  inputs (listen to): " + (", ".join(ins) if ins else "none"))
    if chosen is None:
        print("MIDI: no API works here; start a JACK server (jackd -d dummy) or load ALSA's snd-seq")
    server = os.environ.get("JACK_DEFAULT_SERVER", "default")
    jack = rtmidi.API_UNIX_JACK in compiled and api_works(rtmidi.API_UNIX_JACK)
    print(f"JACK server {server!r}: {'running' if jack else 'not running'}")
    print("OSC ports: scsynth {scsynth}, sclang/SuperDirt {superdirt}, Wekinator {wekinator}, "
          "livernn's OSC in {livernn}".format(**DEFAULT_PORTS))
    return 0

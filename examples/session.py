"""The REPL walk-through (examples/repl_session.md) as a plain script.

    .venv/bin/python examples/session.py                 # plays on a new MIDI port "livernn"
    .venv/bin/python examples/session.py --port synth    # or on a port whose name has "synth"
    .venv/bin/python examples/session.py --bars 2 --record set.mid

Connect the port to a synth first (``livernn devices`` lists ports; on JACK, for example
``jack_connect livernn:livernn fluidsynth:midi_00``). The same names work at the prompt:
everything here is ``livernn.api``, which is what ``livernn repl`` puts there.
"""

from __future__ import annotations

import argparse
import time

from livernn.api import midi, mute, panic, quit, record, solo, status, stop_record, swap, tempo, unmute, voice
from livernn.model import default_model_path


def bars(n: float) -> None:
    """Let the music play for ``n`` bars of 4 beats at the current tempo."""
    time.sleep(n * 4 * 60.0 / tempo())


def main() -> None:
    parser = argparse.ArgumentParser(description="the REPL walk-through as a script")
    parser.add_argument("--port", default="livernn", help="MIDI port (part of its name) or a new one")
    parser.add_argument("--bars", type=float, default=4, help="length of each step in bars")
    parser.add_argument("--record", help="also record the set to this MIDI file")
    args = parser.parse_args()

    tempo(100)
    synth = midi(args.port)
    if args.record:
        record(args.record)

    # 1. a voice on the shipped model, in D dorian, calm
    lead = voice("lead", out=synth, temperature=0.8, scale="dorian", root=2, pitch_min=55, pitch_max=84)
    bars(args.bars)

    # 2. a second, lower voice on channel 2 with half the notes
    low = voice("low", out=synth, channel=2, density=0.5, pitch_min=36, pitch_max=60,
                scale="dorian", root=2, velocity_scale=0.8)
    bars(args.bars)

    # 3. turn it up: wilder pitches, more notes
    lead.temperature = 1.3
    lead.density = 2
    bars(args.bars)

    # 4. hot-swap the lead's model at the next bar (here: the same weights, re-primed)
    print(swap(lead, default_model_path(), at="bar").result())
    bars(args.bars)

    # 5. solo, mute, back together
    solo(low)
    bars(args.bars / 2)
    solo()
    mute(lead)
    bars(args.bars / 2)
    unmute(lead)
    bars(args.bars / 2)

    print(status())
    panic()
    if args.record:
        print("recorded", stop_record())
    quit()  # ends every note and closes the port; also what Ctrl-D does at the prompt


if __name__ == "__main__":
    main()

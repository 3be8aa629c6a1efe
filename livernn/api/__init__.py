"""The performer's vocabulary: short functions over one running Session.

These are the names the REPL puts at the prompt, and they work the same from a plain
script (``from livernn.api import *``). Each is a thin, documented wrapper over
``livernn.engine.Session`` so that what a performer types reads like the set it plays::

    lead = voice("lead", out=midi("synth"))     # the shipped model, playing at once
    lead.temperature = 1.2                       # validated; a bad value is one line
    patch("osc./1/fader1", "lead.temperature", out=(0.5, 1.5))   # opens OSC on 127.0.0.1:9000
    await swap(lead, "models/folk", at="bar")    # or swap(...).result() in a script
    panic()

The first call that needs a session starts one (``session()``); ``use(s)`` hands the
vocabulary a session built elsewhere (``livernn repl PATCH`` builds it like ``perform``).
Re-running a line is safe: an existing voice or output of that name is reused, not doubled.

Inputs: nothing listens until asked. ``listen_osc`` and ``listen_midi`` open an OSC or MIDI
input; ``patch()`` with an ``osc.*`` source opens the default OSC input when none is open
(so the README's one-liner works at a bare prompt) and says so in one line. A name typed
wrong (voice, parameter, mapping option, swap boundary) is a one-line error naming the
nearest valid one.
"""

from __future__ import annotations

# One module per part of the vocabulary; they share one ``_state`` (livernn.api.core).
# Every name below is also ``livernn.api.<name>``, as when this was one module; those
# imported ``as`` themselves are not at the prompt (not in ``__all__``) but shared with
# scripts, tests and the REPL (``close``, ``Status``, ``DEFAULT_OSC`` ...).
from livernn.api.band import clock_out, offset, sync
from livernn.api.core import _state as _state
from livernn.api.core import close as close
from livernn.api.core import controls, quit, session, use
from livernn.api.inputs import DEFAULT_OSC as DEFAULT_OSC
from livernn.api.inputs import listen_midi, listen_osc
from livernn.api.listening import listen, midi_in
from livernn.api.outputs import midi, osc, output, scsynth, superdirt
from livernn.api.playing import mute, panic, record, solo, stop_record, tempo, unmute
from livernn.api.report import Status as Status
from livernn.api.report import status
from livernn.api.surfaces import gesture, web
from livernn.api.voices import SWAP_POLICIES as SWAP_POLICIES
from livernn.api.voices import Models as Models
from livernn.api.voices import Swap as Swap
from livernn.api.voices import learn, load, models, swap, voice
from livernn.api.wiring import patch, scene, unpatch

__all__ = [
    "clock_out", "controls", "gesture", "learn", "listen", "listen_midi", "listen_osc", "load", "midi", "midi_in",
    "models", "mute", "offset", "osc", "output", "panic", "patch", "quit", "record", "scene", "scsynth", "session",
    "solo", "status", "stop_record", "superdirt", "swap", "sync", "tempo", "unmute", "unpatch", "use", "voice", "web",
]

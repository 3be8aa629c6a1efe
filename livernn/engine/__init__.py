"""The real-time engine: clock, voices, scheduler, session (docs/ARCHITECTURE.md).

    from livernn.engine import Session
    s = Session(bpm=120); s.add_output("synth", "midi:synth"); v = s.add_voice("lead")
    s.start(); v.temperature = 1.2; s.swap("lead", "models/other", at="bar"); s.stop()
"""

from livernn.engine.clock import Clock
from livernn.engine.params import PARAM_SPECS, ParamSpec, VoiceParams
from livernn.engine.session import Session
from livernn.engine.signals import StopHandler
from livernn.engine.voice import Voice

__all__ = ["PARAM_SPECS", "Clock", "ParamSpec", "Session", "StopHandler", "Voice",
           "VoiceParams"]

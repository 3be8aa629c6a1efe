"""Looking at it: ``status()``, the session's report plus mappings and inputs."""

from __future__ import annotations

from livernn.api.core import _state, session
from livernn.api.inputs import _midi_inputs, _osc_inputs


class Status(dict):
    """``session.status()`` that prints itself as a table at the prompt."""

    def __repr__(self) -> str:
        from livernn.status_text import format_status

        return format_status(self)


def status() -> Status:
    """Voices, models, parameters, outputs, inputs, mappings and timing (late events, onset error).

    ``inputs`` says what listens where: each OSC input's host:port and whether it obeys
    remote commands, each MIDI input's port, and whether the patch or the prompt opened it.
    """
    s = session()
    report = Status(s.status())
    runtime = _state["runtime"]
    report["mappings"] = [
        f"{b.source} -> {b.voice}.{b.param}" for b in (runtime.bindings if runtime else [])
    ]
    show = _state["show"]
    report["inputs"] = [
        {"input": "osc", "where": o.where, "commands": "on" if o.commands else "off",
         "opened by": "patch" if show is not None and o is getattr(show, "osc", None) else "prompt"}
        for o in _osc_inputs()
    ] + [
        {"input": "midi", "where": f"{m.name} ({m.api_name})", "commands": "",
         "opened by": "patch" if show is not None and m is getattr(show, "midi", None) else "prompt"}
        for m in _midi_inputs()
    ]
    return report

"""Where notes go: MIDI ports, OSC peers, scsynth, SuperDirt and a MIDI-file recorder.

Every output answers the same small interface (``livernn.outputs.base.Output``); the
factories below are what the REPL, patches and ``livernn play --out`` use.

The submodules are imported here, before the factories are defined: importing a submodule
for the first time binds its name on the package, which would hide the factory of the
same name (``livernn.outputs.osc``), and a module already imported is never bound again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from livernn.errors import LivernnError
from livernn.outputs import midi as _midi  # noqa: F401  (see the docstring)
from livernn.outputs import midi_process as _midi_process  # noqa: F401
from livernn.outputs import osc as _osc  # noqa: F401
from livernn.outputs import recorder as _recorder  # noqa: F401
from livernn.outputs import scsynth as _scsynth  # noqa: F401
from livernn.outputs import superdirt as _superdirt  # noqa: F401
from livernn.outputs.base import Output

DEFAULT_PORTS = {"scsynth": 57110, "superdirt": 57120, "sclang": 57120, "wekinator": 6448, "livernn": 9000}


def midi(name: str, create: bool = True, process: bool = True) -> Output:
    """An existing MIDI port whose name contains ``name``, else a new virtual port ``name``.

    ``process`` (default): sent from a sender process, immune to this interpreter's GIL
    (see livernn/outputs/midi_process.py); False: from the session's sender thread."""
    if process:
        from livernn.outputs.midi_process import MidiProcessOutput

        return MidiProcessOutput(name, create=create)
    from livernn.outputs.midi import MidiOutput

    return MidiOutput(name, create=create)


def osc(host: str, port: int, address: str = "/livernn/note",
        args: Sequence = ("channel", "pitch", "velocity", "duration"),
        off_address: str | None = "/livernn/off", off_args: Sequence = ("channel", "pitch"),
        latency: float = 0.2) -> Output:
    """Notes as OSC messages from an address and argument template, in timestamped bundles."""
    from livernn.outputs.osc import OscOutput

    return OscOutput(host, port, address, args, off_address, off_args, latency)


def scsynth(host: str = "127.0.0.1", port: int = DEFAULT_PORTS["scsynth"], latency: float = 0.2,
            **options) -> Output:
    """Gated synth nodes on a SuperCollider server (the SynthDef is sent on start)."""
    from livernn.outputs.scsynth import ScsynthOutput

    return ScsynthOutput(host, port, latency, **options)


def superdirt(host: str = "127.0.0.1", port: int = DEFAULT_PORTS["superdirt"], sound: str = "superpiano",
              orbit: int = 0, latency: float = 0.2) -> Output:
    """``/dirt/play`` events for SuperDirt."""
    from livernn.outputs.superdirt import SuperDirtOutput

    return SuperDirtOutput(host, port, sound, orbit, latency)


def file_recorder(path: str | Path, bpm: float | None = None) -> Output:
    """Everything played, written to a MIDI file at the logical times of the notes."""
    from livernn.outputs.recorder import FileRecorder

    return FileRecorder(path, bpm)


SPEC_HELP = "midi:NAME | osc:HOST:PORT | scsynth[:HOST:PORT] | superdirt[:HOST:PORT]"


def from_spec(spec: str) -> Output:
    """Build an output from a command-line form such as ``midi:synth`` or ``scsynth:127.0.0.1:57110``."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "midi":
        if not rest:
            raise LivernnError(f"--out {spec!r}: give a port name, e.g. midi:livernn")
        return midi(rest)
    if kind in ("osc", "scsynth", "superdirt"):
        if rest.isdigit():
            host, port = "", rest
        elif ":" in rest:
            host, _, port = rest.rpartition(":")
        else:
            host, port = rest, ""
        if kind == "osc" and not port:
            raise LivernnError(f"--out {spec!r}: osc needs HOST:PORT, e.g. osc:127.0.0.1:9001")
        host = host or "127.0.0.1"
        port = port or DEFAULT_PORTS[kind]
        from livernn.outputs.osc import parse_address

        host, number = parse_address(host, port)
        return {"osc": osc, "scsynth": scsynth, "superdirt": superdirt}[kind](host, number)
    raise LivernnError(f"unknown output {spec!r}; use {SPEC_HELP}")


__all__ = ["DEFAULT_PORTS", "Output", "SPEC_HELP", "file_recorder", "from_spec", "midi", "osc", "scsynth",
           "superdirt"]

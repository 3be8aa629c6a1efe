"""Where notes go: MIDI ports, OSC peers, scsynth, SuperDirt and a MIDI-file recorder.

Every output answers the same small interface (``livernn.outputs.base.Output``). Each kind
is one module that ends with its ``KIND`` (``livernn.outputs.base.OutputKind``: patch
options, builder, ``--out`` form), registered below in one line; patches, ``--out``, its
help and ``livernn.api.output`` all read ``KINDS``. The factories (``midi``, ``osc``...)
are the Python spelling of the built-in kinds.

MIDI: ``midi_port`` is the port in this process, ``midi_process`` the output that sends
through a sender process (the default) and ``midi_sender`` that process's program. The
name ``livernn.outputs.midi`` is the factory, never a module.

The submodules are imported here, before the factories are defined: importing a submodule
for the first time binds its name on the package, which would hide the factory of the
same name (``livernn.outputs.osc``), and a module already imported is never bound again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livernn.errors import LivernnError, unknown
from livernn.outputs import midi_port as _midi_port  # each registers its kinds (see the docstring)
from livernn.outputs import midi_process as _midi_process  # noqa: F401
from livernn.outputs import osc as _osc
from livernn.outputs import recorder as _recorder
from livernn.outputs import scsynth as _scsynth
from livernn.outputs import superdirt as _superdirt
from livernn.outputs.base import Output, OutputKind

DEFAULT_PORTS = {"scsynth": 57110, "superdirt": 57120, "sclang": 57120, "wekinator": 6448, "livernn": 9000}


def midi(name: str, create: bool = True, process: bool = True) -> Output:
    """An existing MIDI port whose name contains ``name``, else a new virtual port ``name``.

    ``process`` (default): sent from a sender process, immune to this interpreter's GIL
    (see livernn/outputs/midi_process.py); False: from the session's sender thread."""
    if process:
        from livernn.outputs.midi_process import MidiProcessOutput

        return MidiProcessOutput(name, create=create)
    from livernn.outputs.midi_port import MidiOutput

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


def file_recorder(path: str | Path, bpm: float | None = None) -> _recorder.FileRecorder:
    """Everything played, written to a MIDI file at the logical times of the notes."""
    from livernn.outputs.recorder import FileRecorder

    return FileRecorder(path, bpm)


# -- the kinds: one module each, registered here ---------------------------------------

KINDS: dict[str, OutputKind] = {}


def register(kind: OutputKind) -> None:
    """Make a kind of output known to patches (``type = ...``), ``--out`` and ``livernn.api.output``."""
    if kind.name in KINDS and KINDS[kind.name] is not kind:
        raise LivernnError(f"an output kind named {kind.name!r} is registered already")
    KINDS[kind.name] = kind


for _kind in (_midi_port.KIND, _osc.KIND, _scsynth.KIND, _superdirt.KIND, _recorder.KIND):
    register(_kind)


def spec_help() -> str:
    """The ``--out`` forms, for the command line's help."""
    return " | ".join(k.name + k.spec for k in KINDS.values() if k.from_spec is not None)


SPEC_HELP = spec_help()  # the built-in kinds' forms (``spec_help()`` includes later registrations)


def from_spec(spec: str) -> Output:
    """Build an output from a command-line form such as ``midi:synth`` or ``scsynth:127.0.0.1:57110``."""
    name, _, rest = spec.partition(":")
    kind = KINDS.get(name.strip().lower())
    if kind is None or kind.from_spec is None:
        raise LivernnError(f"unknown output {spec!r}; use {spec_help()}")
    return kind.from_spec(rest)


def check_spec(spec: str) -> None:
    """A command-line form checked as written (its kind, its port or address), opening nothing:
    ``perform --out`` before the patch opens its outputs and its recording."""
    name, _, rest = spec.partition(":")
    kind = KINDS.get(name.strip().lower())
    if kind is None or kind.from_spec is None:
        raise LivernnError(f"unknown output {spec!r}; use {spec_help()}")
    if kind.check_spec is not None:
        kind.check_spec(rest)


def build(kind: str, name: str, options: dict[str, Any], bpm: float = 120.0) -> Output:
    """An output of a registered ``kind`` from a patch table's options (``name``: the output's)."""
    if kind not in KINDS:
        raise unknown("output type", kind, KINDS)
    return KINDS[kind].build(name, dict(options), bpm)


__all__ = ["DEFAULT_PORTS", "KINDS", "SPEC_HELP", "Output", "OutputKind", "build", "check_spec", "file_recorder",
           "from_spec", "midi", "osc", "register", "scsynth", "spec_help", "superdirt"]

"""A tiny writer for SuperCollider's compiled SynthDef format (SCgf, version 2).

There is no sclang at run time (nor on the test machines), so the synth livernn plays on
scsynth is compiled here, in Python, from a hand-wired UGen graph, following the
"Synth Definition File Format" help page of SuperCollider:

    file      = "SCgf" int32(version=2) int16(n_defs) def*
    def       = pstring(name) int32(K) float32*K (constants)
                int32(P) float32*P (initial control values)
                int32(N) (pstring(name) int32(index))*N
                int32(U) ugen*U int16(0 variants)
    ugen      = pstring(class) int8(rate) int32(I) int32(O) int16(special)
                (int32(ugen or -1) int32(output or constant index))*I int8(rate)*O

Big-endian throughout. The source of the same synth, for people with sclang, is
``examples/livernn_synth.scd``; the compiled bytes ship as ``livernn_note.scsyndef``
beside this module (``python -m livernn.outputs.synthdef`` rewrites it).
"""

from __future__ import annotations

import struct
from pathlib import Path

SCALAR, CONTROL, AUDIO = 0, 1, 2
MUL, MAX = 2, 13  # BinaryOpUGen special indices of '*' and 'max'
SYNTH_NAME = "livernn_note"
SHIPPED = Path(__file__).with_name(f"{SYNTH_NAME}.scsyndef")

Input = float | tuple[int, int]  # a constant, or (ugen index, output index)


def _pstring(text: str) -> bytes:
    data = text.encode("ascii")
    return struct.pack(">B", len(data)) + data


class SynthDefWriter:
    """Collects controls, constants and UGens in order (inputs must come first)."""

    def __init__(self, name: str, controls: dict[str, float]) -> None:
        self.name = name
        self.controls = dict(controls)
        self.constants: list[float] = []
        self.ugens: list[tuple[str, int, list[Input], list[int], int]] = []
        self.add("Control", CONTROL, [], [CONTROL] * len(controls))

    def control(self, name: str) -> tuple[int, int]:
        return (0, list(self.controls).index(name))

    def add(self, cls: str, rate: int, inputs: list[Input], outputs: list[int], special: int = 0) -> int:
        for item in inputs:
            if not isinstance(item, tuple) and float(item) not in self.constants:
                self.constants.append(float(item))
        self.ugens.append((cls, rate, inputs, outputs, special))
        return len(self.ugens) - 1

    def encode(self) -> bytes:
        out = [b"SCgf", struct.pack(">ih", 2, 1), _pstring(self.name)]
        out.append(struct.pack(f">i{len(self.constants)}f", len(self.constants), *self.constants))
        values = list(self.controls.values())
        out.append(struct.pack(f">i{len(values)}f", len(values), *values))
        out.append(struct.pack(">i", len(self.controls)))
        for index, name in enumerate(self.controls):
            out.append(_pstring(name) + struct.pack(">i", index))
        out.append(struct.pack(">i", len(self.ugens)))
        for cls, rate, inputs, outputs, special in self.ugens:
            out.append(_pstring(cls) + struct.pack(">biih", rate, len(inputs), len(outputs), special))
            for item in inputs:
                if isinstance(item, tuple):
                    out.append(struct.pack(">ii", *item))
                else:
                    out.append(struct.pack(">ii", -1, self.constants.index(float(item))))
            out.append(struct.pack(f">{len(outputs)}b", *outputs))
        out.append(struct.pack(">h", 0))
        return b"".join(out)


def note_synthdef(attack: float = 0.005, decay: float = 0.3, sustain: float = 0.5,
                  release: float = 0.25, cutoff: float = 3000.0) -> bytes:
    """The gated note synth: Saw -> LPF -> * adsr(gate, doneAction 2) * amp -> Pan2 -> Out.

    Controls: freq, amp, gate, pan, out. ``/n_set <node> gate 0`` releases the note and the
    envelope frees the node when it has faded. The envelope's gate is
    ``max(gate, Impulse.kr(0))``: open for the first control block whatever ``gate`` says, so a
    note whose release arrives in the same block as its start (two late bundles) still runs
    its envelope and frees itself, instead of waiting forever, silent, for a gate.
    """
    w = SynthDefWriter(SYNTH_NAME, {"freq": 440.0, "amp": 0.1, "gate": 1.0, "pan": 0.0, "out": 0.0})
    # Env.adsr as EnvGen's array: init level, stages, release node, loop node (-99: none),
    # then (level, time, shape 5 = curve, curve -4) per stage.
    env = [0, 3, 2, -99, 1, attack, 5, -4, sustain, decay, 5, -4, 0, release, 5, -4]
    first_block = w.add("Impulse", CONTROL, [0, 0], [CONTROL])
    gate = w.add("BinaryOpUGen", CONTROL, [w.control("gate"), (first_block, 0)], [CONTROL], MAX)
    envgen = w.add("EnvGen", CONTROL, [(gate, 0), 1, 0, 1, 2, *env], [CONTROL])
    level = w.add("BinaryOpUGen", CONTROL, [(envgen, 0), w.control("amp")], [CONTROL], MUL)
    saw = w.add("Saw", AUDIO, [w.control("freq")], [AUDIO])
    lpf = w.add("LPF", AUDIO, [(saw, 0), cutoff], [AUDIO])
    sig = w.add("BinaryOpUGen", AUDIO, [(lpf, 0), (level, 0)], [AUDIO], MUL)
    pan = w.add("Pan2", AUDIO, [(sig, 0), w.control("pan"), 1], [AUDIO, AUDIO])
    w.add("Out", AUDIO, [w.control("out"), (pan, 0), (pan, 1)], [])
    return w.encode()


if __name__ == "__main__":
    SHIPPED.write_bytes(note_synthdef())
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size} bytes)")

"""Output kinds: one module plus one registration, and the MIDI-bytes base they share.

A kind made here (a list that keeps what it is sent) is registered once and must then be
known everywhere a kind is named: a patch's ``type``, ``--out`` and its help, the patch
builder and ``livernn.api.output``. No mocks: the real registry, patch parser and session.
"""

from __future__ import annotations

import time

import pytest

from livernn import outputs
from livernn.errors import LivernnError
from livernn.outputs.base import (
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    MidiBytesOutput,
    OutputKind,
)
from livernn.patch.apply import build_output
from livernn.patch.schema import parse_patch


class ListOutput(MidiBytesOutput):
    """A hypothetical new kind: what a test instrument would be, in a dozen lines."""

    kind = "list"

    def __init__(self, label: str = "list") -> None:
        super().__init__()
        self.label = label
        self.got: list[tuple[list[int], float]] = []

    def _send(self, data: list[int], t: float) -> None:
        self.got.append((data, t))


KIND = OutputKind("list", {"label": str}, lambda name, options, bpm: ListOutput(options.get("label", name)),
                  ":LABEL", lambda rest: ListOutput(rest or "list"))


@pytest.fixture
def list_kind():
    outputs.register(KIND)  # the one registration line
    yield KIND
    del outputs.KINDS["list"]


def test_a_registered_kind_is_known_to_patches_out_and_its_help(list_kind, tmp_path):
    assert "list:LABEL" in outputs.spec_help()
    out = outputs.from_spec("list:bench")
    assert isinstance(out, ListOutput) and out.label == "bench"
    patch = parse_patch('version = 1\n[outputs.probe]\ntype = "list"\nlabel = "p"\n\n'
                        '[voices.lead]\nmodel = "default"\n', tmp_path / "p.toml")
    spec = patch.outputs["probe"]
    assert (spec.type, spec.options) == ("list", {"label": "p"})
    built = build_output(spec, 120.0)
    assert isinstance(built, ListOutput) and built.label == "p"
    with pytest.raises(LivernnError, match="label"):  # its options are checked like any kind's
        parse_patch('version = 1\n[outputs.probe]\ntype = "list"\nlabel = 3\n', tmp_path / "p.toml")


def test_an_unregistered_kind_is_a_one_line_error(tmp_path):
    with pytest.raises(LivernnError, match="unknown output"):
        outputs.from_spec("list:x")
    with pytest.raises(LivernnError, match="list"):
        parse_patch('version = 1\n[outputs.probe]\ntype = "list"\n', tmp_path / "p.toml")
    with pytest.raises(LivernnError, match="registered already"):
        outputs.register(OutputKind("midi", {}, KIND.build))


def test_the_built_in_kinds_and_the_cli_help():
    assert sorted(outputs.KINDS) == ["file", "midi", "osc", "scsynth", "superdirt"]
    assert outputs.SPEC_HELP == "midi:NAME | osc:HOST:PORT | scsynth[:HOST:PORT] | superdirt[:HOST:PORT]"
    from livernn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in ("play", "perform"):
        out = next(a for a in sub.choices[command]._actions if a.dest == "out")
        assert outputs.SPEC_HELP in out.help


def test_midi_bytes_base_speaks_midi_with_named_controllers():
    out = ListOutput()
    out.note_on(2, 60, 100, 1.0)
    out.note_off(2, 60, 1.5)
    out.control(16, 7, 90, 2.0)
    out.send([0xF8], 3.0)  # the public way in: raw bytes (a clock tick) at a time
    before = time.monotonic()
    out.send((0xFA,))  # default: now
    assert out.got[:4] == [([0x91, 60, 100], 1.0), ([0x81, 60, 0], 1.5), ([0xBF, 7, 90], 2.0), ([0xF8], 3.0)]
    assert out.got[4][0] == [0xFA] and out.got[4][1] >= before
    out.got.clear()
    out.all_notes_off()
    assert [d for d, _ in out.got] == [[0xB0 | ch, cc, 0] for ch in range(16)
                                      for cc in (CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF)]
    assert (CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF) == (123, 120)

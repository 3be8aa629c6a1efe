"""Patch files: the shipped ones pass `livernn check`; broken ones get one file:line line each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from livernn.library import shipped
from livernn.patch.lines import KeyLines
from livernn.patch.schema import PatchError, load_patch

REPO = Path(__file__).resolve().parents[1]
PATCHES = sorted((REPO / "patches").glob("*.toml"))

GOOD = """\
version = 1

[clock]
bpm = 100

[models]
bach = "default"

[outputs.rec]
type = "file"
path = "set.mid"

[voices.lead]
model = "bach"
outputs = ["rec"]
channel = 1
params = { temperature = 0.9, pitch_min = 48 }

[osc]
port = 0

[[mappings]]
source = "osc./1/fader1"
target = "lead.temperature"
range = [0, 1]
curve = "exp"

[[automation]]
name = "sweep"
points = [[0, 0.5], [16, 1.5]]

[[triggers]]
source = "clock.bar"
above = 4
action = "scene"
scene = "calm"

[scenes.calm]
lead = { temperature = 0.6 }
"""


def check(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "livernn.cli", "check", *map(str, paths)],
        capture_output=True, text=True, timeout=60,
    )


def test_every_shipped_patch_passes_check():
    assert len(PATCHES) >= 5, "patches/ should hold demo, touchosc, supercollider, midi-controller, wekinator"
    result = check(*PATCHES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok:") == len(PATCHES)


def test_a_good_patch_loads(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    patch = load_patch(path)
    assert patch.bpm == 100 and list(patch.voices) == ["lead"]
    assert patch.voices["lead"].params == {"temperature": 0.9, "pitch_min": 48}
    assert patch.mappings[0].build().out_range == (0.05, 5.0)  # from PARAM_SPECS
    assert patch.outputs["rec"].options["path"] == str(tmp_path / "set.mid")


# (name, text edit applied to GOOD, the line the error must point at, words the message needs)
BROKEN = [
    ("syntax", ("bpm = 100", "bpm = = 100"), 4, ["TOML syntax"]),
    ("unknown key", ("channel = 1", "chanel = 1"), 16,
     ["voices.lead.chanel", "did you mean 'channel'?", "allowed: model"]),
    ("wrong type", ("bpm = 100", 'bpm = "fast"'), 4, ["clock.bpm", "must be a number"]),
    ("missing model", ('bach = "default"', 'bach = "models/nope"'), 7, ["models.bach", "not found"]),
    ("unknown model", ('model = "bach"', 'model = "bahc"'), 14,
     ["voices.lead.model", "no model 'bahc'; did you mean 'bach'?"]),
    ("unknown output", ('outputs = ["rec"]', 'outputs = ["synth"]'), 15,
     ["voices.lead.outputs", "no output 'synth'; valid: rec"]),
    ("bad range", ("range = [0, 1]", "range = [1, 1]"), 25, ["mappings[0].range", "two different finite"]),
    ("bad curve", ('curve = "exp"', 'curve = "cubic"'), 26, ["mappings[0].curve", "lin, exp, log, breakpoints"]),
    ("unknown scene", ('scene = "calm"', 'scene = "storm"'), 36,
     ["triggers[0].scene", "no scene 'storm'; valid: calm"]),
    ("path escaping folder", ('path = "set.mid"', 'path = "../../etc/set.mid"'), 11, ["outputs.rec.path", "outside"]),
    ("absolute path", ('bach = "default"', 'bach = "/etc/passwd"'), 7, ["absolute paths are refused"]),
    ("unknown param", ("temperature = 0.6", "temprature = 0.6"), 39,
     ["scenes.calm.lead.temprature", "no parameter 'temprature'; did you mean 'temperature'?"]),
    ("param out of range", ("pitch_min = 48", "pitch_min = 200"), 17, ["pitch_min must be in 0..127"]),
    ("unknown target param", ('target = "lead.temperature"', 'target = "lead.heat"'), 24,
     ["mappings[0].target", "no parameter 'heat'; valid: density"]),
    ("misspelt target param", ('target = "lead.temperature"', 'target = "lead.temprature"'), 24,
     ["mappings[0].target", "no parameter 'temprature'; did you mean 'temperature'?"]),
    ("misspelt target voice", ('target = "lead.temperature"', 'target = "laed.temperature"'), 24,
     ["mappings[0].target", "no voice 'laed'; did you mean 'lead'?"]),
    ("misspelt voice param", ("pitch_min = 48", "pitch_mn = 48"), 17,
     ["voices.lead.params.pitch_mn", "no parameter 'pitch_mn'; did you mean 'pitch_min'?"]),
    ("midi source with a colon", ('source = "osc./1/fader1"', 'source = "midi:cc1"'), 23,
     ["mappings[0].source", "bus names are dotted, with no ':'", "got 'midi:cc1'"]),
    ("midi source with no channel", ('source = "clock.bar"', 'source = "midi.cc.74"'), 33,
     ["triggers[0].source", "midi.cc.CHANNEL.CONTROL", "got 'midi.cc.74'"]),
    ("misspelt output type", ('type = "file"', 'type = "fiel"'), 10,
     ["outputs.rec.type", "'fiel' is not allowed; did you mean 'file'? allowed: midi, osc"]),
    ("misspelt action", ('action = "scene"', 'action = "scnee"'), 35,
     ["triggers[0].action", "no action 'scnee'; did you mean 'scene'?"]),
    ("misspelt lfo shape", ('name = "sweep"\npoints = [[0, 0.5], [16, 1.5]]',
                            'name = "sweep"\npoints = [[0, 0.5], [16, 1.5]]\n\n'
                            '[[automation]]\nname = "wobble"\nshape = "sqare"'),
     34,
     ["automation[1].shape", "no shape 'sqare'; did you mean 'square'?"]),
    ("osc commands not a bool", ("port = 0", 'port = 0\ncommands = "yes"'), 21,
     ["osc.commands", "must be true or false"]),
    ("wrong version", ("version = 1", "version = 7"), 1, ["version", "must be 1"]),
    ("bad osc bind", ("port = 0", 'port = 0\nbind = "everywhere"'), 21, ["osc.bind", "not an IP"]),
    ("duplicate names", ('name = "sweep"\npoints = [[0, 0.5], [16, 1.5]]',
                         'name = "sweep"\npoints = [[0, 0.5], [16, 1.5]]\n\n[[automation]]\nname = "sweep"\nhz = 1'),
     33, ["automation[1].name", "duplicate automation name 'sweep'"]),
]


@pytest.mark.parametrize(("name", "edit", "line", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_patch_gives_one_file_line_error(tmp_path, name, edit, line, words):
    old, new = edit
    assert old in GOOD
    path = tmp_path / "broken.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(PatchError) as caught:
        load_patch(path)
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems[0]
    for word in words:
        assert word in problems[0], problems[0]
    assert "\n" not in str(caught.value)


def test_check_prints_every_problem_and_exits_2(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(GOOD.replace("bpm = 100", "bpm = 0").replace("channel = 1", "channel = 17"))
    result = check(path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["4", "16"], lines


def test_model_names_from_commands_never_become_paths(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    patch = load_patch(path)
    assert patch.model_path("bach") == "default"
    for bad in ("../models/bach", "/etc/passwd", "models/../../x", "..", ""):
        with pytest.raises(Exception, match="model name from the patch, not a path"):
            patch.model_path(bad)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.json").write_text("{}")
    assert patch.model_path("mine") == str(tmp_path / "models" / "mine")  # the patch's models/
    assert patch.model_path("folk") == str(shipped("models") / "folk")  # shipped names come first
    with pytest.raises(Exception, match="no model 'jazz'; valid: bach, folk, mine"):
        patch.model_path("jazz")


def test_key_lines_follow_tables_arrays_and_inline_tables():
    lines = KeyLines(GOOD)
    assert lines.line(("voices", "lead", "params", "pitch_min")) == 17
    assert lines.line(("mappings", 0, "curve")) == 26
    assert lines.line(("triggers", 0)) == 32
    assert lines.line(("voices", "lead", "missing")) == 13
    assert lines.line(("nowhere",)) == 1


def test_plug_in_sections_validate_their_table_with_file_lines(tmp_path):
    from livernn.patch.sections import SECTIONS, Section, register_section

    path = tmp_path / "g.toml"
    path.write_text(GOOD + '\n[gesture]\nsource = 0\nmirror = "yes"\n')
    previous = SECTIONS.get("gesture")
    try:
        # A section whose checker accepts anything passes its table through as it is ...
        register_section(Section("gesture", validate=lambda t: []))
        assert load_patch(path).sections == {"gesture": {"source": 0, "mirror": "yes"}}
        # ... and a checker's complaints become file:line errors.
        register_section(Section("gesture", validate=lambda t: [(("mirror",), "must be true or false")]
                                 if not isinstance(t.get("mirror"), bool) else []))
        with pytest.raises(PatchError) as caught:
            load_patch(path)
        assert caught.value.problems == [f"{path}:43: gesture.mirror: must be true or false"]
    finally:
        SECTIONS.pop("gesture")
        if previous is not None:
            SECTIONS["gesture"] = previous
    path.write_text("gesture = 3\n" + GOOD)
    with pytest.raises(PatchError, match="gesture: must be a table"):
        load_patch(path)


def test_osc_sources_without_an_osc_table_get_the_default_local_server(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(GOOD.replace("[osc]\nport = 0\n", ""))
    osc = load_patch(path).osc
    assert (osc.port, osc.bind, osc.allow) == (9000, "127.0.0.1", ())


def test_outputs_as_an_array_of_tables_with_names(tmp_path):
    text = GOOD.replace('[outputs.rec]\ntype = "file"\npath = "set.mid"',
                        '[[outputs]]\nname = "rec"\ntype = "file"\npath = "set.mid"\n\n'
                        '[[outputs]]\nname = "sc"\ntype = "scsynth"\nport = 57110')
    path = tmp_path / "arr.toml"
    path.write_text(text)
    patch = load_patch(path)
    assert list(patch.outputs) == ["rec", "sc"] and patch.outputs["sc"].options == {"port": 57110}
    path.write_text(text.replace('name = "sc"', 'name = "rec"'))
    with pytest.raises(PatchError) as caught:
        load_patch(path)
    assert caught.value.problems == [f"{path}:14: outputs[1]: duplicate output name 'rec'"]


def test_trigger_arguments_must_fit_their_action(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(GOOD.replace('action = "scene"\nscene = "calm"', 'action = "panic"\nscene = "calm"'))
    with pytest.raises(PatchError, match=r":36: triggers\[0\].scene: does not apply to action 'panic'"):
        load_patch(path)
    path.write_text(GOOD.replace('action = "scene"\nscene = "calm"',
                                 'action = "param"\nvoice = "lead"\nparam = "temperature"\nvalue = 99'))
    with pytest.raises(PatchError, match=r"triggers\[0\].value: temperature must be in 0.05..5, got 99"):
        load_patch(path)


def test_mapping_settings_that_would_be_ignored_are_errors(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD.replace('curve = "exp"', 'curve = "exp"\nalpha = 0.5'))
    with pytest.raises(PatchError, match=r":27: mappings\[0\].alpha: only applies with smooth = 'ema'"):
        load_patch(path)

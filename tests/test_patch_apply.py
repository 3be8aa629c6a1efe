"""apply_patch: a patch builds a Session, and a changed patch changes only what differs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from livernn.controls.runtime import ControlRuntime
from livernn.engine import Session
from livernn.errors import LivernnError
from livernn.patch.apply import apply_patch
from livernn.patch.schema import parse_patch

BASE = """\
version = 1
[clock]
bpm = 100
[models]
bach = "default"
[outputs.a]
type = "file"
path = "a.mid"
[voices.lead]
model = "bach"
outputs = ["a"]
params = { temperature = 0.8 }
[voices.bass]
model = "bach"
outputs = ["a"]
channel = 2
[[automation]]
name = "arc"
target = "lead.top_p"
points = [[0, 0.5], [4, 1.0]]
[[triggers]]
source = "clock.bar"
above = 2
action = "scene"
scene = "loud"
[scenes.loud]
lead = { velocity_scale = 2.0 }
"""


@pytest.fixture
def show(tmp_path):
    session = Session(bpm=120)
    runtime = ControlRuntime(session)
    yield session, runtime, tmp_path
    runtime.close()
    session.stop()


def patch(text: str, folder: Path):
    return parse_patch(text, folder / "p.toml")


def test_a_patch_builds_voices_outputs_and_controls(show):
    session, runtime, folder = show
    p = patch(BASE, folder)
    apply_patch(session, p, runtime)
    assert session.tempo == 100
    assert set(session.voices) == {"lead", "bass"} and set(session.outputs) == {"a"}
    assert session.voices["lead"].temperature == 0.8 and session.voices["bass"].channel == 2
    t0 = session.clock.time_of(2.0)  # beat 2 of the ramp: halfway
    runtime.tick(t0)
    assert session.voices["lead"].top_p == pytest.approx(0.75)


def test_a_changed_patch_changes_only_what_differs(show):
    session, runtime, folder = show
    old = patch(BASE, folder)
    apply_patch(session, old, runtime)
    lead, bass = session.voices["lead"], session.voices["bass"]
    new_text = (BASE.replace("params = { temperature = 0.8 }", "params = { temperature = 1.4 }")
                .replace("channel = 2", "channel = 3")
                + '[voices.pad]\nmodel = "bach"\noutputs = ["a"]\n')
    new = patch(new_text, folder)
    apply_patch(session, new, runtime, old)
    assert session.voices["lead"] is lead and lead.temperature == 1.4  # changed in place
    assert session.voices["bass"] is not bass and session.voices["bass"].channel == 3  # rebuilt
    assert "pad" in session.voices
    gone = patch(BASE.replace('[voices.bass]\nmodel = "bach"\noutputs = ["a"]\nchannel = 2\n', ""), folder)
    apply_patch(session, gone, runtime, new)
    assert set(session.voices) == {"lead"}  # pad and bass removed
    assert lead.temperature == 0.8


def test_a_param_dropped_from_the_patch_returns_to_its_default(show):
    session, runtime, folder = show
    old = patch(BASE, folder)
    apply_patch(session, old, runtime)
    apply_patch(session, patch(BASE.replace("params = { temperature = 0.8 }", ""), folder), runtime, old)
    assert session.voices["lead"].temperature == 1.0


def test_a_failing_output_leaves_the_running_show_untouched(show):
    session, runtime, folder = show
    old = patch(BASE, folder)
    apply_patch(session, old, runtime)
    before = dict(session.voices)
    broken = patch(BASE.replace('type = "file"\npath = "a.mid"',
                                'type = "midi"\nport = "no-such-port-here"\ncreate = false'), folder)
    with pytest.raises(LivernnError, match="MIDI"):
        apply_patch(session, broken, runtime, old)  # no such port (or no MIDI system at all)
    assert session.voices == before and set(session.outputs) == {"a"}


def test_triggers_fire_on_crossing_and_not_again_after_a_reload(show):
    session, runtime, folder = show
    p = patch(BASE, folder)
    apply_patch(session, p, runtime)
    clock = session.clock
    runtime.tick(clock.time_of(4.0))  # bar 1
    assert session.voices["lead"].velocity_scale == 1.0
    runtime.tick(clock.time_of(9.0))  # bar 2.25: crossed
    assert runtime.scene == "loud" and session.voices["lead"].velocity_scale == 2.0
    session.voices["lead"].set("velocity_scale", 1.0)
    apply_patch(session, p, runtime, p)  # a reload rebuilds the trigger
    runtime.tick(clock.time_of(10.0))
    assert session.voices["lead"].velocity_scale == 1.0  # already past bar 2: no second firing


def test_swaps_name_models_from_the_patch_only(show):
    session, runtime, folder = show
    apply_patch(session, patch(BASE, folder), runtime)
    future = runtime.swap("lead", "bach", at="now")
    session.start()
    future.result(timeout=20)
    assert session.voices["lead"].model.path.name == "bach"
    for bad in ("../models/bach", "/etc/passwd"):
        with pytest.raises(LivernnError, match="not a path"):
            runtime.swap("lead", bad)
    runtime.fire("swap", {"voice": "lead", "model": "../../x"})
    assert runtime.errors == 1


def test_mute_actions(show):
    session, runtime, folder = show
    apply_patch(session, patch(BASE, folder), runtime)
    runtime.fire("mute", {"voice": "*"})
    assert all(v.mute for v in session.voices.values())
    runtime.fire("toggle_mute", {"voice": "bass"})
    assert session.voices["lead"].mute and not session.voices["bass"].mute
    runtime.fire("unmute", {"voice": "nobody"})
    assert runtime.errors == 1


def test_a_model_newly_named_in_the_patch_is_swapped_in(show):
    session, runtime, folder = show
    old = patch(BASE, folder)
    apply_patch(session, old, runtime)
    (folder / "weights").mkdir()  # not a models/ folder: only the new patch's [models] names it
    (folder / "weights" / "other").symlink_to(Path(__file__).resolve().parents[1] / "models" / "bach")
    swaps = []
    session.on("swap", lambda voice, model, beat: swaps.append(voice))
    session.start()
    lead = session.voices["lead"]
    new = patch(BASE.replace('bach = "default"', 'bach = "default"\nother = "weights/other"')
                .replace('model = "bach"\noutputs = ["a"]\nparams', 'model = "other"\noutputs = ["a"]\nparams'), folder)
    apply_patch(session, new, runtime, old)
    deadline = time.monotonic() + 20
    while not swaps and time.monotonic() < deadline:
        time.sleep(0.05)
    assert swaps == ["lead"] and session.voices["lead"] is lead  # swapped in place, at a bar
    assert runtime.errors == 0

"""One table of actions: every action in ``controls.actions.ACTIONS`` works the same from a
trigger, a remote OSC command, a patch file's [[triggers]] and the prompt's api.

Each way in is driven over the table itself, so an action added to the table without an
example here fails ``test_every_action_has_an_example``."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livernn import api
from livernn.controls.actions import ACTIONS, ARG_NAMES, REMOTE, parse_remote
from livernn.controls.bus import ControlBus
from livernn.controls.osc_in import OscIn
from livernn.controls.remote import install_commands
from livernn.controls.runtime import ControlRuntime, Scene
from livernn.controls.trigger import Trigger
from livernn.engine.clock import Clock
from livernn.engine.params import VoiceParams
from livernn.errors import LivernnError
from livernn.patch import schema
from livernn.patch.apply import rebuild_controls
from livernn.patch.schema import parse_patch
from peers import wait_for


class FakeVoice:
    """A voice's parameter surface (real VoiceParams: real validation and clamping)."""

    def __init__(self, name: str) -> None:
        self.name, self.params = name, VoiceParams()

    def set(self, name: str, value: Any, clamp: bool = False) -> None:
        self.params = self.params.with_(clamp=clamp, **{name: value})

    def update(self, clamp: bool = False, **values: Any) -> None:
        self.params = self.params.with_(clamp=clamp, **values)


class FakeSession:
    """What the runtime and the api drive, recording the calls the actions make."""

    def __init__(self) -> None:
        self.bus = ControlBus()
        self.clock = Clock(120.0)
        self.voices = {name: FakeVoice(name) for name in ("lead", "bass")}
        self.panics = 0
        self.swaps: list[tuple[str, Any, str]] = []
        self.learns: list[tuple[str, float, float]] = []

    @property
    def tempo(self) -> float:
        return self.clock.bpm

    def set_tempo(self, bpm: float) -> None:
        from livernn.engine.clock import check_bpm

        self.clock.set_tempo(check_bpm(bpm))

    def panic(self) -> None:
        self.panics += 1

    def learn(self, voice: Any, bars: float = 32, seconds: float = 60, steps: Any = None, report: Any = None) -> None:
        self.learns.append((getattr(voice, "name", voice), bars, seconds))

    def swap(self, voice: Any, model: Any, at: str = "bar", policy: str = "ring") -> concurrent.futures.Future:
        self.swaps.append((getattr(voice, "name", voice), model, at))
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(None)
        return done


# action -> (its arguments, what it must have done to a FakeSession and its runtime)
def _muted(voice: str, muted: bool):
    return lambda s, r: s.voices[voice].params.mute is muted


EXAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    "scene": ({"scene": "loud"}, lambda s, r: r.scene == "loud" and s.voices["lead"].params.velocity_scale == 2.0),
    "swap": ({"voice": "lead", "model": "bach"}, lambda s, r: [(v, at) for v, _m, at in s.swaps] == [("lead", "bar")]),
    "panic": ({}, lambda s, r: s.panics == 1),
    "learn": ({"voice": "lead", "bars": 8}, lambda s, r: s.learns == [("lead", 8, 60)]),
    "mute": ({"voice": "lead"}, _muted("lead", True)),
    "unmute": ({"voice": "bass"}, _muted("bass", False)),  # bass starts muted (see _setup)
    "toggle_mute": ({"voice": "lead"}, _muted("lead", True)),
    "tempo": ({"bpm": 90}, lambda s, r: s.tempo == 90.0),
    "param": ({"voice": "lead", "param": "temperature", "value": 1.5},
              lambda s, r: s.voices["lead"].params.temperature == 1.5),
}
# the prompt's words for the actions it has (toggle_mute and param are v.mute = ..., v.temperature = ...)
API = {
    "scene": lambda: api.scene("loud"),
    "swap": lambda: api.swap("lead", "bach").result(1),
    "panic": api.panic,
    "learn": lambda: api.learn("lead", bars=8),
    "mute": lambda: api.mute("lead"),
    "unmute": lambda: api.unmute("bass"),
    "tempo": lambda: api.tempo(90),
}


def _setup() -> tuple[FakeSession, ControlRuntime]:
    session = FakeSession()
    session.voices["bass"].set("mute", True)
    runtime = ControlRuntime(session, resolve_model=lambda name: f"models/{name}")
    runtime.scenes = {"loud": Scene("loud", {"lead": {"velocity_scale": 2.0}})}
    return session, runtime


def test_every_action_has_an_example():
    assert set(EXAMPLES) == set(ACTIONS)
    assert set(API) <= set(ACTIONS)


def test_the_patch_schema_takes_the_tables_arguments():
    assert set(ARG_NAMES) == {arg.name for a in ACTIONS.values() for arg in a.args}
    assert set(ARG_NAMES) <= set(schema.TRIGGER_KEYS)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_from_a_trigger(name):
    session, runtime = _setup()
    args, done = EXAMPLES[name]
    runtime.set_triggers([Trigger("ctl.go", name, dict(args), above=0.5)])
    session.bus.publish("ctl.go", 0.0, 0.0)  # the first reading only learns the state
    session.bus.publish("ctl.go", 1.0, 0.1)
    assert done(session, runtime) and runtime.errors == 0


@pytest.mark.parametrize("name", [n for n in ACTIONS if ACTIONS[n].remote])
def test_each_remote_action_from_an_osc_command(name):
    session, runtime = _setup()
    args, done = EXAMPLES[name]
    osc = OscIn(session.bus, port=0)
    install_commands(osc, runtime, True)
    host, port = osc.start_thread()
    try:
        SimpleUDPClient(host, port).send_message(f"/livernn/{name}", [args[a.name] for a in ACTIONS[name].required])
        wait_for(lambda: done(session, runtime), 5, f"/livernn/{name} to act")
        assert runtime.errors == 0 and osc.stats.bad_value == 0
    finally:
        osc.close()


def test_remote_commands_are_the_tables_remote_actions_checked_for_count_and_type():
    assert tuple(f"/livernn/{n}" for n, a in ACTIONS.items() if a.remote) == REMOTE
    assert parse_remote("/livernn/param", ("lead", "temperature", 1.5)) == (
        "param", {"voice": "lead", "param": "temperature", "value": 1.5})
    with pytest.raises(LivernnError, match=r"^/livernn/tempo takes 1 argument\(s\): /livernn/tempo BPM$"):
        parse_remote("/livernn/tempo", ())
    with pytest.raises(LivernnError, match=r"^/livernn/tempo: bpm has the wrong type \(bool\)$"):
        parse_remote("/livernn/tempo", (True,))
    with pytest.raises(LivernnError, match="no command '/livernn/toggle_mute'"):
        parse_remote("/livernn/toggle_mute", ("lead",))  # not a remote action


PATCH = """\
version = 1
[models]
bach = "default"
[voices.lead]
[voices.bass]
params = { mute = true }
[scenes.loud]
lead = { velocity_scale = 2.0 }
[[triggers]]
source = "ctl.go"
above = 0.5
action = "{name}"
"""


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_from_a_patch(name, tmp_path):
    session, runtime = _setup()
    args, done = EXAMPLES[name]
    text = PATCH.replace("{name}", name) + "".join(
        f"{k} = {v!r}\n".replace("'", '"') for k, v in args.items())
    patch = parse_patch(text, tmp_path / "show.toml")
    rebuild_controls(runtime, patch)
    session.bus.publish("ctl.go", 0.0, 0.0)
    session.bus.publish("ctl.go", 1.0, 0.1)
    assert done(session, runtime) and runtime.errors == 0
    if name == "swap":  # a patch names models from its [models]
        assert Path(session.swaps[0][1]).name == "bach"


@pytest.mark.parametrize("name", list(API))
def test_each_action_from_the_api(name):
    session, runtime = _setup()
    _, done = EXAMPLES[name]
    api.use(session, runtime)
    try:
        API[name]()
        assert done(session, runtime)
    finally:
        api.use(None)


def test_the_api_refuses_what_the_table_refuses():
    session, runtime = _setup()
    api.use(session, runtime)
    try:
        with pytest.raises(LivernnError, match=r"^no scene 'storm'; scenes: 0 loud$"):
            api.scene("storm")
        with pytest.raises(LivernnError, match=r"^tempo must be a finite BPM in"):
            api.tempo(5000)
        assert session.tempo == 120.0
    finally:
        api.use(None)

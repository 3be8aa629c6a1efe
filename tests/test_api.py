"""livernn.api: the performer's vocabulary, used the way a script uses it.

A real Session plays into a real OSC peer (a UDP socket in this test) or a real JACK
probe; nothing is mocked. The REPL puts these same functions at its prompt.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from livernn import api
from livernn.errors import LivernnError
from livernn.notes import notes_from_midi
from livernn.repl import help as repl_help
from peers import wait_for
from test_repl_engine import QueueProbe, note_ons

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def peer():
    """A UDP socket standing in for an OSC synth; yields (port, received packets)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    yield sock
    sock.close()


@pytest.fixture
def show():
    """A fresh session for the api, ended afterwards (as quit() would)."""
    yield api.session()
    api.close()


def packets(sock: socket.socket, seconds: float) -> list[bytes]:
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(65536))
        except TimeoutError:
            pass
    return got


def test_a_voice_plays_and_rerunning_the_line_retunes_it(show, peer):
    synth = api.osc("127.0.0.1", peer.getsockname()[1])
    assert api.osc("127.0.0.1", peer.getsockname()[1]) is synth  # asking again reuses it
    lead = api.voice("lead", out=synth, density=4)
    assert b"/livernn/note" in b"".join(packets(peer, 1.5))
    again = api.voice("lead", temperature=1.5)
    assert again is lead and lead.temperature == 1.5
    with pytest.raises(LivernnError, match="temperature must be in"):
        lead.temperature = 99
    assert lead.temperature == 1.5


def test_mute_solo_and_solo_off_restore_what_was_muted(show, peer):
    out = api.osc("127.0.0.1", peer.getsockname()[1])
    a, b, c = (api.voice(n, out=out) for n in ("a", "b", "c"))
    api.mute(c)
    api.solo(a)
    assert (a.mute, b.mute, c.mute) == (False, True, True)
    api.solo()
    assert (a.mute, b.mute, c.mute) == (False, False, True)
    api.mute()
    assert all(v.mute for v in (a, b, c))
    api.unmute()
    assert not any(v.mute for v in (a, b, c))
    with pytest.raises(LivernnError, match="no voice 'nobody'; valid: a, b, c"):
        api.solo("nobody")


def test_patch_maps_a_bus_source_and_unpatch_removes_it(show, peer):
    lead = api.voice("lead", out=api.osc("127.0.0.1", peer.getsockname()[1]))
    api.patch("osc./1/fader1", "lead.temperature", out=(0.5, 1.5))
    show.bus.publish("osc./1/fader1", 1.0)
    assert lead.temperature == pytest.approx(1.5)
    show.bus.publish("osc./1/fader1", 0.0)
    assert lead.temperature == pytest.approx(0.5)
    assert "osc./1/fader1 -> lead.temperature" in repr(api.status())
    assert api.unpatch("osc./1/fader1") == 1
    show.bus.publish("osc./1/fader1", 1.0)
    assert lead.temperature == pytest.approx(0.5)
    with pytest.raises(LivernnError, match=re.escape("patch target must be 'voice.param'")):
        api.patch("osc./1/fader2", "temperature")
    with pytest.raises(LivernnError, match="curve 'cubic' is not one of"):
        api.patch("osc./1/fader2", "lead.top_p", curve="cubic")
    with pytest.raises(LivernnError, match=r"^no mapping option 'wobble'; valid: alpha, beta"):
        api.patch("osc./1/fader2", "lead.top_p", wobble=3)


def test_misspelt_names_are_one_line_naming_the_nearest_and_change_nothing(show, peer, caplog):
    lead = api.voice("lead", out=api.osc("127.0.0.1", peer.getsockname()[1]))
    cases = [
        (lambda: api.patch("osc./1/fader1", "lead.temprature"),
         "no parameter 'temprature'; did you mean 'temperature'?"),
        (lambda: api.patch("osc./1/fader1", "laed.temperature"), "no voice 'laed'; did you mean 'lead'?"),
        (lambda: api.patch("osc./1/fader1", "lead.top_p", smoth="ema"),
         "no mapping option 'smoth'; did you mean 'smooth'?"),
        (lambda: api.swap(lead, "bach", at="bra"), "no swap boundary 'bra'; did you mean 'bar'?"),
        (lambda: api.swap(lead, "bach", policy="rign"), "no swap policy 'rign'; did you mean 'ring'?"),
        (lambda: api.mute("laed"), "no voice 'laed'; did you mean 'lead'?"),
    ]
    for call, message in cases:
        with pytest.raises(LivernnError) as caught:
            call()
        assert str(caught.value) == message
    # a refused mapping made nothing: no binding, and no OSC input opened for it
    assert api.controls().bindings == [] and api.status()["inputs"] == []
    assert lead.epoch == 0  # no swap was started
    api.controls().fire("scnee", {})  # an action by name, as a trigger or command fires it
    assert "no action 'scnee'; did you mean 'scene'?" in caplog.text


def test_a_voice_with_no_output_and_no_midi_says_what_else_plays(show, monkeypatch):
    # No MIDI system here (CoreMIDI is not compiled in on Linux): the default MIDI port
    # cannot open, and the one-line error names the OSC outputs a laptop can still use.
    monkeypatch.setenv("LIVERNN_MIDI_API", "coremidi")
    with pytest.raises(LivernnError) as caught:
        api.voice("lead")
    message = str(caught.value)
    assert "\n" not in message and "does not work here" in message
    assert "voice('lead', out=scsynth())" in message and "superdirt()" in message
    assert "lead" not in show.voices


def test_a_failed_swap_keeps_the_old_model_and_says_why(show, peer, tmp_path):
    lead = api.voice("lead", out=api.osc("127.0.0.1", peer.getsockname()[1]))
    model = lead.model
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"not a model")
    swap = api.swap(lead, broken, at="now")
    with pytest.raises(LivernnError, match="old model plays on"):
        swap.result(30)
    assert "failed" in repr(swap)
    assert lead.model is model
    good = api.swap("lead", api.load(REPO / "models" / "bach"), at="beat").result(30)
    wait_for(lambda: lead.model is good, 5, "the new model to take over")


def test_tempo_record_status_and_quit(show, peer, tmp_path):
    assert api.tempo() == 120.0
    assert api.tempo(140) == 140.0
    with pytest.raises(LivernnError, match="tempo must be"):
        api.tempo(float("nan"))
    api.record(tmp_path / "set.mid")
    api.voice("lead", out=api.osc("127.0.0.1", peer.getsockname()[1]), density=4)
    time.sleep(1.5)
    table = repr(api.status())
    assert "playing at 140 BPM" in table and "recording to" in table and "lead   bach" in table
    path = api.stop_record()
    assert len(notes_from_midi(path)) >= 3
    with pytest.raises(SystemExit):
        api.quit()
    assert not show.playing  # quit() stopped the session: every note ended


def test_every_api_function_has_help():
    for name in api.__all__:
        out = io.StringIO()
        with redirect_stdout(out):
            repl_help(getattr(api, name))
        doc = getattr(api, name).__doc__
        assert doc and doc.split("\n")[0].strip() in out.getvalue(), name
    out = io.StringIO()
    with redirect_stdout(out):
        repl_help()  # the vocabulary at a glance: every name, not the package's modules
    assert all(f"\n    {name}(" in out.getvalue() for name in api.__all__)
    assert "PACKAGE CONTENTS" not in out.getvalue() and "\n    surfaces\n" not in out.getvalue()



def test_the_architecture_lists_each_api_module_with_what_it_defines():
    """docs/ARCHITECTURE.md names every module of livernn/api/ and, for each, names it defines;
    every name at the prompt is one of them, and the package re-exports it from there."""
    import importlib
    import pkgutil

    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    paragraph = re.search(r"`livernn/api/` is one module per part.*?\n\n", text, re.S).group(0)
    listed = dict(re.findall(r"`(\w+)`\s+\(([^)]*)\)", paragraph.split("get):", 1)[1]))
    modules = {m.name for m in pkgutil.iter_modules(api.__path__)}
    assert set(listed) == modules
    placed = {}
    for module, names in listed.items():
        for name in re.findall(r"`(\w+)`", names):
            assert hasattr(importlib.import_module(f"livernn.api.{module}"), name), (module, name)
            placed[name] = module
    for name in api.__all__:
        assert getattr(api, name).__module__ == f"livernn.api.{placed[name]}", name
    assert api._state is importlib.import_module("livernn.api.core")._state

@pytest.mark.integration
def test_the_example_script_plays_records_and_leaves_nothing_sounding(jack, tmp_path):
    probe = QueueProbe(f"sprobe{os.getpid() % 10000}")
    try:
        env = dict(os.environ, LIVERNN_MIDI_API="jack")
        record = tmp_path / "set.mid"
        run = subprocess.run([sys.executable, str(REPO / "examples" / "session.py"), "--port", probe.client,
                              "--bars", "0.5", "--record", str(record)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "params (not default)" in run.stdout and "recorded" in run.stdout
        time.sleep(0.5)
        channels = {m[0] & 0x0F for m in probe.messages() if m[0] & 0xF0 == 0x90}
        assert len(note_ons(probe)) >= 10 and channels == {0, 1}
        assert probe.note_balance() == {}
        assert len(notes_from_midi(record)) >= 10
    finally:
        probe.close()


def test_completion_offers_a_voices_parameters_with_their_ranges(show):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from livernn.repl import namespace, string_names
    from livernn.repl.complete import LivernnCompleter

    lead = show.add_voice("lead", outputs=[])
    show.bus.publish("osc./1/fader1", 0.5)
    completer = LivernnCompleter(namespace(show), lambda: string_names(show))
    found = {c.text: c.display_meta_text for c in completer.get_completions(Document("lead.tem"), CompleteEvent())}
    assert found == {"temperature": "0.05..5.0"}
    scale = next(iter(completer.get_completions(Document("lead.sca"), CompleteEvent())))
    assert scale.text == "scale" and "dorian" in scale.display_meta_text
    strings = [c.text for c in completer.get_completions(Document('patch("osc./1/f'), CompleteEvent())]
    assert strings == ["osc./1/fader1"]
    strings = [c.text for c in completer.get_completions(Document('patch("x", "lead.tem'), CompleteEvent())]
    assert strings == ["lead.temperature"]
    assert lead is namespace(show)["lead"]


def test_quit_while_recording_closes_the_file(show, peer, tmp_path):
    api.voice("lead", out=api.osc("127.0.0.1", peer.getsockname()[1]), density=4)
    api.record(tmp_path / "set.mid")
    time.sleep(1.0)
    with pytest.raises(SystemExit):
        api.quit()
    assert len(notes_from_midi(tmp_path / "set.mid")) >= 2


@pytest.mark.integration
def test_gesture_feeds_the_bus_and_quit_stops_it(show, hands_dir):
    tracker = api.gesture(hands_dir / "hand_left.mp4", max_hands=1)
    wait_for(lambda: any(n.startswith("hand.left.") for n in show.bus.names()), 60, "hand values on the bus")
    with pytest.raises(SystemExit):
        api.quit()
    assert not tracker.running

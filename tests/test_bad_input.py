"""A tired performer at 1 a.m.: typos, wrong types and impossible numbers, at the prompt and on
the command line. Each gets one line that says what is wrong, and the show plays on.

In-process (the CLI's own ``main``, the api the prompt is made of), against a real session
playing into a UDP socket that stands in for an OSC synth. The older cases live beside the
feature they guard (test_api.py, test_play.py, test_patch.py, test_hostile.py, test_repl.py).
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from livernn import api
from livernn.cli import main
from livernn.errors import LivernnError
from livernn.train.config import load_recipe


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("livernn: error: "), err
    return lines[0]


@pytest.fixture
def show():
    """A session with an OSC peer (a bound UDP socket) to play into; ended as quit() would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        yield api.session(), api.osc("127.0.0.1", peer.getsockname()[1])
        api.close()


def test_a_broken_training_recipe_is_one_line(tmp_path):
    junk = tmp_path / "junk.toml"
    junk.write_bytes(b"\x94\xff\x00binary" * 20)
    cases = [
        (junk, "not a text file"),
        (tmp_path, "cannot read the recipe"),
        ('[train]\nepochs = "ten"\n', "[train] epochs must be an integer, got a string ('ten')"),
        ("[train]\nepochs = 2.5\n", "[train] epochs must be an integer, got a number (2.5)"),
        ("[train]\nlr = nan\n", "[train] lr must be a finite number, got nan"),
        ('[model]\nhidden = "big"\n', "[model] hidden must be an integer"),
        ("[train]\nepoch_checkpoints = 1\n", "[train] epoch_checkpoints must be a boolean"),
    ]
    for case, words in cases:
        path = case
        if isinstance(case, str):
            path = tmp_path / "recipe.toml"
            path.write_text(case)
        with pytest.raises(LivernnError) as info:
            load_recipe(path)
        assert words in str(info.value)
    with pytest.raises(LivernnError, match="lr must be a finite number"):
        load_recipe(None, {"train.lr": float("nan")})  # `livernn train --lr nan`
    assert load_recipe(None, {"train.lr": 1, "train.epochs": 2}).train.lr == 1  # an int where a float goes


def test_impossible_command_line_values_are_one_line(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv, words in [
        (["perform", str(repo / "patches")], "patches: a folder, not a patch file; it has band.toml, demo.toml"),
        (["play", str(repo / "patches" / "demo.toml"), "--duration", "1", "--quiet"],
         "not a livernn model (expected a directory with model.safetensors and config.json); "
         "a patch plays with: livernn perform"),
        (["generate", "-o", "x.mid", "--notes", "3", "--seed", "-5"], "seed must be a whole number >= 0, got -5"),
        (["generate", "-o", str(tmp_path), "--notes", "3"], "cannot write the MIDI file (Is a directory)"),
        (["generate", "-o", "ok.mid", "--notes", "3", "--png", "roll.pgn"], "roll.pgn: Format 'pgn' is not supported"),
        (["play", "--duration", "1", "--quiet", "--mode", "follow"],
         "--mode follow is how the voice listens: give --listen midi:NAME too"),
        (["play", "--duration", "1", "--quiet", "--out", "osc:nohost.invalid:9000"],
         "OSC host 'nohost.invalid' not found"),
        (["play", "--duration", "1", "--quiet", "--out", "superdirt:nohost.invalid"],
         "OSC host 'nohost.invalid' not found"),
    ]:
        assert main(argv) == 2, argv
        assert words in one_error_line(capsys)
    assert not (tmp_path / "x.mid").exists()


def test_a_tempo_of_zero_on_the_command_line_is_refused_not_replaced(repo):
    from livernn.patch.show import open_show
    from livernn.repl import _main

    for start in (lambda: _main(None, 0.0, None), lambda: open_show(repo / "patches" / "demo.toml", bpm=0.0)):
        with pytest.raises(LivernnError, match=r"tempo must be a finite BPM in 1\.\.999, got 0\.0"):
            asyncio.run(start())  # `livernn repl --bpm 0` played at 120, `repl demo --bpm 0` at the patch's


def test_wrong_values_at_the_prompt_are_one_line_and_the_show_plays_on(show, tmp_path):
    session, synth = show
    lead = api.voice("lead", out=synth, density=4)
    api.record(tmp_path / "set.mid")
    bad = [
        (lambda: api.record(123), "record takes a file name like 'set.mid', got an integer"),
        (lambda: setattr(lead, "channel", 99), "MIDI channel must be 1..16, got 99"),
        (lambda: setattr(lead, "channel", "2"), "MIDI channel must be 1..16, got '2'"),
        (lambda: setattr(lead, "density", 10**400), "density must be a finite number, got an integer too big"),
        (lambda: api.tempo(10**400), "tempo must be a finite BPM in 1..999, got an integer too big"),
        (lambda: api.voice("other", out=lead.outputs[0], seed=-1), "seed must be a whole number >= 0, got -1"),
        (lambda: api.osc("nohost.invalid", 9000), "OSC host 'nohost.invalid' not found"),
        # a huge number: one short line (was an OverflowError, or 400 digits over five lines)
        (lambda: api.patch("osc./1/f", "lead.temperature", out=(0, 10**400)),
         "two finite numbers, got (0, 1000000000...00000000000)"),
        (lambda: api.patch("osc./1/f", "lead.temperature", smooth="ema", alpha=10**5000),
         "alpha must be a finite number, got an integer too long to print"),
        (lambda: api.learn(lead, bars=10**400), "learn bars must be a number in 1..1024, got 1000000000...0"),
        (lambda: api.swap(lead, "folk", at=10**5000), "no swap boundary an integer too long to print; valid: bar"),
        (lambda: setattr(lead, "temperature", "x" * 5000), "temperature must be a number, got 'xxx"),
        # a source nothing publishes: the mapping would never move anything
        (lambda: api.patch("midi:cc1", "lead.temperature"), "patch source: bus names are dotted, with no ':'"),
        (lambda: api.patch("midi.cc1", "lead.temperature"), "a MIDI source is midi.cc.CHANNEL.CONTROL"),
        (lambda: api.offset(synth, 10**400), "ms, got 1000000000...00000000000"),
        (lambda: api.tempo(True), "tempo must be a number of BPM, got True"),  # was tempo 1
        (lambda: api.osc(9000), "OSC host must be a name or address like '127.0.0.1', got an integer"),
        # listen(v) alone stops listening: with a mode and no source it stopped, silently
        (lambda: api.listen(lead, mode="follow"), "listen: give what to listen to"),
        # refused at once (the swap's Future failed later, on the loader thread), naming what works
        (lambda: api.swap(lead, 42), "a model is a name like 'folk', a path or what load() returned, "
                                     "got an integer (42)"),
        (lambda: api.voice("lead", model=[1]), "a model is a name like 'folk'"),
    ]
    for call, words in bad:
        with pytest.raises(LivernnError) as info:
            call()
        assert words in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 200
    assert (lead.channel, lead.density, api.tempo()) == (1, 4, 120)
    assert list(session.voices) == ["lead"] and lead.model.name == "bach" and not api.status()["mappings"]
    lead.channel = 3  # a good value still goes in
    before, deadline = lead.notes_played, time.monotonic() + 5
    while lead.notes_played == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lead.notes_played > before  # still playing, still recording
    assert api.stop_record() == tmp_path / "set.mid" and (tmp_path / "set.mid").stat().st_size > 0


def test_a_skipped_midi_file_is_one_warning_line(monkeypatch):
    import warnings

    from livernn.cli import one_line_warnings
    from livernn.data import DataWarning

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # put back afterwards
    one_line_warnings()  # what `livernn train/eval/data` do first
    text = warnings.formatwarning(DataWarning("skipping junk/a.mid: not a readable MIDI file"), DataWarning,
                                  __file__, 1)
    assert text == "livernn: warning: skipping junk/a.mid: not a readable MIDI file\n"  # not 2 lines per file
    assert "UserWarning: other" in warnings.formatwarning(UserWarning("other"), UserWarning, __file__, 1)


def test_running_the_show_again_keeps_the_earlier_take(tmp_path, capsys):
    import mido

    from livernn.outputs.recorder import FileRecorder

    def take(pitch: int | None) -> None:
        recorder = FileRecorder(tmp_path / "set.mid", 120.0)
        if pitch is not None:
            recorder.note_on(1, pitch, 100, recorder.start)
            recorder.note_off(1, pitch, recorder.start + 0.5)
        recorder.close()

    def pitches(name: str) -> list[int]:
        return [m.note for m in mido.MidiFile(tmp_path / name).tracks[0] if m.type == "note_on" and m.velocity]

    take(60)  # last night's set
    take(62)  # the same patch run again the morning after: it replaced the set at its first save
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith("set.mid held an earlier recording; kept it as set-1.mid"), err
    take(64)
    assert (pitches("set-1.mid"), pitches("set-2.mid"), pitches("set.mid")) == ([60], [62], [64])
    take(None)  # moves the third take aside too...
    take(None)  # ...but a recording with no notes is simply replaced, not numbered
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set-1.mid", "set-2.mid", "set-3.mid", "set.mid"]


def test_use_with_a_model_name_is_one_line_and_the_show_plays_on(show):
    session, synth = show
    lead = api.voice("lead", out=synth)
    with pytest.raises(LivernnError, match=r"use takes a Session .*got a string; a model plays on a voice"):
        api.use("folk")  # took the string as the session: every call after it (quit() too) failed
    assert api.session() is session and api.voice("lead") is lead and session.playing


def test_a_scene_that_is_not_there_lists_the_scenes(show):
    from livernn.controls.runtime import Scene

    session, synth = show
    lead = api.voice("lead", out=synth, density=4)
    with pytest.raises(LivernnError) as info:
        api.scene(42)  # said 'scene index 42 out of range 0..-1'
    assert str(info.value) == "no scene 42: the patch has no scenes (a [scenes.NAME] table makes one)"
    api.controls().scenes = {name: Scene(name, {"lead": {"density": 2}}) for name in ("intro", "coda")}
    for bad, words in [(42, "no scene 42; scenes: 0 intro, 1 coda"),
                       (1.5, "no scene 1.5; scenes: 0 intro, 1 coda"),
                       (float("nan"), "no scene nan; scenes"),
                       (10**400, "no scene 1000000000...00000000000; scenes"),
                       ("intor", "no scene 'intor'; did you mean 'intro'? scenes: 0 intro, 1 coda")]:
        with pytest.raises(LivernnError) as info:
            api.scene(bad)
        assert str(info.value).startswith(words), str(info.value)
    assert lead.density == 4 and session.playing
    assert api.scene(1.0) == "coda" and lead.density == 2


def test_use_while_a_session_plays_is_refused_and_the_show_plays_on(show):
    from livernn.engine import Session

    session, synth = show
    lead = api.voice("lead", out=synth)
    other = Session()
    with pytest.raises(LivernnError) as info:
        api.use(other)  # dropped the playing one: its voices played on, out of reach (quit() too)
    assert str(info.value) == ("a session is playing here (voices: lead); stop it first with session().stop(), "
                               "which ends every note, then use the new one")
    assert api.session() is session and api.voice("lead") is lead and session.playing
    assert api.use(session) is session  # the same one again (a patch's runtime and show with it) is fine
    session.stop()
    assert api.use(other) is other and not session.scheduler.open_notes()


def test_a_bad_flag_is_refused_before_anything_is_opened(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    patch = tmp_path / "demo.toml"
    patch.write_text((repo / "patches" / "demo.toml").read_text())  # records to demo.mid beside it
    for flags, words in [(["--sync", "midi:"], "--sync takes link or midi:NAME (a MIDI port), got 'midi:'"),
                         (["--sync", "midi: "], "got 'midi: '"), (["--sync", "lnik"], "got 'lnik'"),
                         (["--clock-out", "midi:"], "--clock-out takes midi:NAME (a MIDI port), got 'midi:'"),
                         (["--out", "midi:"], "--out 'midi:': give a port name"),
                         (["--out", "mdi:synth"], "unknown output 'mdi:synth'; use midi:NAME"),
                         (["--out", "osc:127.0.0.1:99999"], "OSC port must be a number 1..65535, got '99999'"),
                         (["--out", "superdirt:localhost:0"], "OSC port must be a number 1..65535, got '0'")]:
        for argv in (["perform", str(patch), "--record", "set.mid", "--duration", "1", "--quiet", "--no-reload"],
                     ["play", "--record", "set.mid", "--duration", "1", "--quiet"]):
            assert main(argv + flags) == 2, argv + flags
            assert words in one_error_line(capsys)
            # checked after the patch opened its outputs and the recording: both files were written
            assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.toml"], argv + flags


def test_a_midi_port_name_means_the_port_of_that_name_or_says_which_it_could_be():
    from livernn.midi_system import match_port

    jack = ["synth2:in", "synth:in", "livernn-check:check", "probe123:in", "probe1234:in", "FLUID Synth:midi"]
    alsa = ["Midi Through:Midi Through Port-0 14:0", "synth2:synth2 130:0", "synth:synth 129:0"]
    assert match_port(jack, "synth") == 1  # substring picked synth2:in, the first listed
    assert match_port(jack, "SYNTH2") == 0 and match_port(jack, "synth:in") == 1
    assert match_port(jack, "probe123") == 3 and match_port(jack, "probe1234") == 4  # a test probe's prefix
    assert match_port(jack, "fluid") == 5  # part of one name still finds it
    assert match_port(alsa, "synth") == 2 and match_port(alsa, "through") == 0
    assert match_port(jack, "livernn") is None  # its own delivery check is no synth: a new port is made
    assert match_port(jack, "nothing") is None
    for ports, name, words in [(jack, "syn", "'synth2:in', 'synth:in', 'FLUID Synth:midi'"),
                               (jack, "probe12", "'probe123:in', 'probe1234:in'"),
                               (["a:synth 1", "a:synth 2"], "a", "'a:synth 1', 'a:synth 2'")]:
        with pytest.raises(LivernnError) as info:
            match_port(ports, name)
        assert str(info.value) == f"MIDI port {name!r} matches {words.count(':')} ports: {words}; give the whole name"

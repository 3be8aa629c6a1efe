"""Listening without peers: the options' one-line errors, the [listen] table, the masks
that make companions and chord tones exact, and the adaptive end of a call."""

from __future__ import annotations

import shutil

import pytest

from livernn.engine import Session
from livernn.engine.listen import attach, listen_options
from livernn.errors import LivernnError
from livernn.model import SamplerParams, load_model
from livernn.patch import PatchError, load_patch


def test_options_are_checked_with_one_line_errors():
    assert listen_options("follow", intervals=[3, 4], companions=2).companions == 2
    with pytest.raises(LivernnError, match="did you mean 'follow'"):
        listen_options("folow")
    with pytest.raises(LivernnError, match="did you mean 'ratio'"):
        listen_options("answer", ration=2)
    with pytest.raises(LivernnError, match="gap must be a number"):
        listen_options("answer", gap=float("nan"))
    with pytest.raises(LivernnError, match="double the player's own pitch"):
        listen_options("follow", intervals=[0, 3])


def test_the_pitch_mask_keeps_every_sampled_note_inside_the_set():
    g = load_model("bach").generator(seed=1)
    allowed = (50, 57, 64, 71)
    params = SamplerParams(pitches=allowed)
    assert {g.next(params)[0] for _ in range(300)} <= set(allowed)
    with pytest.raises(LivernnError, match="pitches must be MIDI pitches"):
        g.next(SamplerParams(pitches=(200,)))


def test_companions_by_interval_and_by_scale_degree_stay_inside_range_and_scale():
    s = Session()
    v = s.add_voice("h", "bach", outputs=[], pitch_min=48, pitch_max=72, scale="major", root=0)
    by_interval = attach(v, listen_options("follow", intervals=[-4, -3, 3, 4]))
    assert by_interval.companion_pitches(64, v.params) == (60, 67)  # 61 and 68 are not in C major
    assert by_interval.companion_pitches(71, v.params, {67}) == ()  # 67 held, 68 off the scale, 74/75 too high
    assert 74 not in by_interval.companion_pitches(70, v.params)  # outside the range
    by_degree = attach(v, listen_options("follow", degrees=[-2, 2]))
    assert by_degree.companion_pitches(64, v.params) == (60, 67)  # a third below and above in C major


def test_the_end_of_a_call_adapts_to_the_players_spacing():
    s = Session(bpm=120)
    v = s.add_voice("a", "bach", outputs=[])
    policy = attach(v, listen_options("answer", gap=1.0, adapt=2.0, max_gap=4.0))
    s._running = True  # the policy only hears a playing session; nothing is started here
    try:
        for i in range(5):
            policy.note_on(60 + i, 90, 10.0 + 0.8 * i)
            policy.note_off(60 + i, 10.0 + 0.8 * i + 0.3)
    finally:
        s._running = False
    assert policy.gap_seconds() == pytest.approx(1.6)  # 2 x 0.8 s, above one beat (0.5 s)
    assert policy.window(10.0 + 0.8 * 4 + 0.3 + 1.0) is None  # still inside the gap
    window = policy.window(10.0 + 0.8 * 4 + 0.3 + 1.7)
    assert window is not None and window[2] - window[1] >= 1.0


def test_the_listen_table_of_a_patch(repo, tmp_path):
    patch = load_patch(repo / "patches" / "duet.toml")
    assert set(patch.sections["listen"]["voices"]) == {"lead", "harm", "comp"}
    bad = tmp_path / "duet.toml"
    shutil.copy(repo / "patches" / "duet.toml", bad)
    bad.write_text(bad.read_text().replace('mode = "follow"', 'mode = "folow"'))
    with pytest.raises(PatchError, match=r"listen\.voices\.harm.*did you mean 'follow'"):
        load_patch(bad)


def test_the_pedal_ends_a_call_at_once():
    s = Session(bpm=120)
    v = s.add_voice("a", "bach", outputs=[])
    policy = attach(v, listen_options("answer", gap=4.0, end_cc=64, ratio=4.0))
    s._running = True  # the policy only hears a playing session; nothing is started here
    try:
        policy.note_on(60, 90, 5.0)
        assert policy.window(5.1) is None  # the player holds a note: still the call
        policy.control(1, 127, 5.2)  # another CC: nothing
        assert policy.window(5.3) is None
        policy.control(64, 127, 5.4)  # the pedal: the call is over, the answer comes
    finally:
        s._running = False
    window = policy.window(5.5)
    assert window is not None and policy.phase == "answer"
    assert window[2] - window[1] == pytest.approx(4.0 * 0.8)  # the call ran to the pedal: 0.4 s, 0.8 beat


def test_passing_tones_are_an_accompany_option_checked_in_one_line():
    options = listen_options("accompany", passing="scale", passing_max=0.5)
    assert (options.passing, options.passing_max) == ("scale", 0.5)
    assert listen_options("accompany").passing == "off"  # the default: chord tones only
    with pytest.raises(LivernnError, match="no listen passing 'scal'; did you mean 'scale'"):
        listen_options("accompany", passing="scal")
    with pytest.raises(LivernnError, match=r"passing_max must be a number in 0\.\.1, got 1\.5; nearest valid: 1$"):
        listen_options("accompany", passing="chromatic", passing_max=1.5)
    with pytest.raises(LivernnError, match="passing is for mode 'accompany', not 'answer'"):
        listen_options("answer", passing="scale")


def test_passing_in_the_listen_table_and_on_the_command_line(repo, tmp_path, capsys, monkeypatch):
    from livernn.cli import main

    monkeypatch.chdir(tmp_path)  # nothing is written, but nowhere near the checkout either
    duet = tmp_path / "duet.toml"
    text = (repo / "patches" / "duet.toml").read_text()
    duet.write_text(text.replace("split = 60", 'split = 60\npassing = "scale"'))
    assert load_patch(duet).sections["listen"]["voices"]["comp"]["passing"] == "scale"
    duet.write_text(text.replace("split = 60", 'split = 60\npassing = "chromatc"'))
    with pytest.raises(PatchError, match=r"listen\.voices\.comp.*did you mean 'chromatic'"):
        load_patch(duet)
    for argv, error in [
        (["--listen", "midi:x", "--mode", "accompany", "--set", "passing=scal"], "did you mean 'scale'"),
        (["--listen", "midi:x", "--mode", "accompany", "--set", "passing_max=2"], "nearest valid: 1"),
        (["--set", "passing=scale"], "passing is a listen option: give --listen midi:NAME too"),
        (["--set", "pasing=scale"], "no parameter or listen option 'pasing'; did you mean 'passing'"),
    ]:
        assert main(["play", "--duration", "1", "--quiet", *argv]) == 2
        assert error in capsys.readouterr().err

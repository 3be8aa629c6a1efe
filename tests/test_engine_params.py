"""Voice parameters: checked at the door, swapped whole, never NaN at the model."""

from __future__ import annotations

import dataclasses
import math

import pytest

from livernn.engine import PARAM_SPECS, Session, VoiceParams
from livernn.errors import LivernnError
from livernn.model.sampling import SAMPLER_SPECS, SamplerParams, allowed_pitches


def test_specs_and_the_snapshot_agree():
    assert [f.name for f in dataclasses.fields(VoiceParams) if f.init] == list(PARAM_SPECS)
    defaults = VoiceParams()
    for name, spec in PARAM_SPECS.items():
        assert getattr(defaults, name) == spec.default
        assert spec.kind in ("float", "int", "bool", "choice") and spec.doc
    defaults.sampler().validated()  # the model accepts what the defaults make
    assert list(defaults.as_dict()) == list(PARAM_SPECS)


def test_one_table_for_the_model_and_the_voice():
    """The model's parameters are the same spec objects the voice checks at the door, so
    a range changed in one place changes for both; SamplerParams' defaults come from it."""
    for name, spec in SAMPLER_SPECS.items():
        assert PARAM_SPECS[name] is spec
        assert getattr(SamplerParams(), name) == spec.default
    for name in SAMPLER_SPECS:  # the model refuses what the door refuses, with the same words
        spec = PARAM_SPECS[name]
        if spec.kind == "choice":
            continue
        with pytest.raises(LivernnError) as at_door:
            VoiceParams().with_(**{name: spec.max + 1})
        with pytest.raises(LivernnError) as at_model:
            SamplerParams(**{name: spec.max + 1}).validated()
        assert str(at_model.value) == str(at_door.value)


def test_a_snapshot_hands_the_model_one_sampler_object():
    """The generator validates and builds its pitch mask only when it gets a different
    object: a snapshot must give the same one for every note, a new snapshot a new one."""
    p = VoiceParams(scale="major", pitch_min=40)
    assert p.sampler() is p.sampler()
    assert p.sampler() == SamplerParams(scale="major", pitch_min=40)
    q = p.with_(temperature=1.5)
    assert q.sampler() is not p.sampler() and q.sampler().temperature == 1.5
    s = Session()
    v = s.add_voice("lead", seed=1)
    try:
        v.generator.next(v.params.sampler())
        checked = v.generator._snap
        v.generator.next(v.params.sampler())
        assert v.generator._snap is checked  # no rebuild between two notes of one snapshot
    finally:
        s.stop()


def test_voice_and_model_agree_on_allowed_pitches():
    """One scale rule: the voice's re-constraint of a note in hand lands on a pitch the
    generator's mask would allow."""
    from livernn.engine.voice import _constrain
    from livernn.model.generator import _constraint

    for scale, root, lo, hi, transpose in [("major", 2, 50, 70, 0), ("blues", 9, 0, 127, -12),
                                            ("pentatonic", 0, 61, 61, 5), ("whole_tone", 1, 30, 40, 48)]:
        p = VoiceParams(scale=scale, root=root, pitch_min=lo, pitch_max=hi, transpose=transpose)
        fallback = set(_constraint(p.sampler()).fallback.tolist())
        assert fallback == set(allowed_pitches(lo, hi, scale, root))
        for model_pitch in range(0, 128, 7):
            assert _constrain(model_pitch, p) in fallback


def test_a_mistyped_parameter_name_is_one_line_naming_the_nearest():
    s = Session()
    v = s.add_voice("lead", seed=1)
    try:
        with pytest.raises(LivernnError, match=r"^no parameter 'temprature'; did you mean 'temperature'\?$"):
            v.temprature = 2
        assert "temprature" not in vars(v) and v.temperature == 1.0  # nothing was set
        with pytest.raises(LivernnError, match="did you mean 'temperature'"):
            v.temprature  # noqa: B018 - reading a typo names the parameter too
        assert not hasattr(v, "temprature") and getattr(v, "tempo", 7) == 7  # still an AttributeError
        with pytest.raises(LivernnError, match="did you mean 'density'"):
            v.set("densty", 2)
        with pytest.raises(LivernnError, match="did you mean 'swing'"):
            v.update(density=2, swnig=0.5)
        assert v.density == 1.0  # all or none
        with pytest.raises(LivernnError, match=r"^no parameter 'xyzzy'; valid: "):
            v.xyzzy = 1
        with pytest.raises(LivernnError, match="did you mean 'temperature'"):
            s.add_voice("bass", seed=1, temprature=2)
        assert "bass" not in s.voices
        v.channel = 2  # the voice's own attributes stay writable
        v.temperature = 1.25
        assert v.channel == 2 and v.params.temperature == 1.25
        with pytest.raises(AttributeError):
            v.params = VoiceParams()  # a read-only property stays read-only
    finally:
        s.stop()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "hot", None])
def test_non_finite_and_non_numbers_are_refused_even_with_clamp(value):
    with pytest.raises(LivernnError, match="temperature"):
        VoiceParams().with_(temperature=value, clamp=True)


def test_out_of_range_refused_or_clamped():
    with pytest.raises(LivernnError, match=r"density must be in 0.125..8, got 100"):
        VoiceParams().with_(density=100)
    assert VoiceParams().with_(density=100, clamp=True).density == 8.0
    assert VoiceParams().with_(transpose=7.6).transpose == 8  # ints round
    with pytest.raises(LivernnError, match="pitch_min <= pitch_max"):
        VoiceParams().with_(pitch_min=90, pitch_max=60)
    clamped = VoiceParams(pitch_max=60).with_(pitch_min=90, clamp=True)
    assert clamped.pitch_min == clamped.pitch_max == 60
    with pytest.raises(LivernnError, match="scale must be one of") as info:
        VoiceParams().with_(scale="bebop")
    assert "did you mean" not in str(info.value)  # nothing close: the list alone
    with pytest.raises(LivernnError, match=r"got 'dorain'; did you mean 'dorian'\?$"):
        VoiceParams().with_(scale="dorain")  # a typo names the scale it most likely meant
    with pytest.raises(LivernnError, match="no parameter 'temprature'; did you mean 'temperature'"):
        VoiceParams().with_(temprature=1)


def test_voice_attributes_swap_a_new_snapshot():
    s = Session()
    v = s.add_voice("lead", seed=1, temperature=0.8)
    before = v.params
    v.temperature = 1.5
    v.set("mute", 1)
    assert v.temperature == 1.5 and v.mute is True
    assert before.temperature == 0.8 and v.params is not before  # the old snapshot is untouched
    with pytest.raises(LivernnError):
        v.top_p = math.nan
    assert v.top_p == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.params.temperature = 2.0  # type: ignore[misc]
    assert "swing" in dir(v)
    with pytest.raises(LivernnError, match="MIDI channel"):
        s.add_voice("bass", channel=17)
    with pytest.raises(LivernnError, match="identifier"):
        s.add_voice("my voice")
    with pytest.raises(LivernnError, match="no voice named 'nobody'"):
        s.swap("nobody", None)
    with pytest.raises(LivernnError, match="swap at must be one of"):
        s.swap("lead", None, at="later")
    s.stop()


def test_voice_turns_model_seconds_into_beats_with_density_quantize_and_caps(tmp_path):
    s = Session(bpm=240.0, lookahead=0.05)
    s.record(tmp_path / "grid.mid")
    recorder = s.taps[0]
    v = s.add_voice("lead", seed=2, quantize=0.5, swing=0.5, density=2.0, max_length=0.25,
                    max_polyphony=2, velocity_scale=0.5, velocity_offset=10)
    notes = []
    s.on("note", lambda voice, pitch, velocity, t_on, t_off: notes.append((t_on, t_off, velocity)))
    s.start()
    try:
        import time

        time.sleep(1.5)
    finally:
        s.stop()
    assert len(notes) >= 5
    for t_on, t_off, velocity in notes:
        beat = s.clock.beat(t_on)
        # A half-beat grid, every second step swung by half a step: onsets on .0 and .75.
        assert min(abs(beat % 1.0 - x) for x in (0.0, 0.75, 1.0)) < 1e-6
        assert s.clock.beat(t_off) - beat <= 0.25 + 1e-6  # max_length in beats
        assert 10 <= velocity <= 74  # vel * 0.5 + 10
    sounding, most = set(), 0  # what was played (the recording): never more than two at once
    for _, data in sorted(recorder.events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        (sounding.add if data[0] & 0xF0 == 0x90 else sounding.discard)(data[1])
        most = max(most, len(sounding))
    assert most <= 2
    assert v.notes_played == len(notes)


def test_recent_notes_are_model_space_history():
    s = Session(bpm=300.0)
    v = s.add_voice("lead", seed=4, transpose=12)
    s.start()
    import time

    time.sleep(0.8)
    s.stop()
    recent = v.recent_notes()
    assert 0 < len(recent) <= 64
    assert recent.dtype.names == ("pitch", "step", "duration", "velocity", "start")
    v.observe(60, 0.25, 0.5, 90)
    with pytest.raises(LivernnError, match="finite"):
        v.observe(60, math.nan, 0.5, 90)


def test_a_density_change_that_moves_the_next_note_into_the_past_is_not_late():
    """A note drawn at density 0.125 (its step 16 times as long in beats as at 2) waits in hand;
    raising the density moves its onset back before now. The engine kept time: the note plays
    on the first grid point from then, and nothing is counted late or dropped."""
    import time

    s = Session(bpm=120.0, lookahead=0.05)
    v = s.add_voice("lead", seed=3, quantize=0.5, density=0.125)
    notes: list[float] = []
    s.on("note", lambda _voice, _pitch, _velocity, t_on, _t_off: notes.append(t_on))
    s.start()
    changes = []
    try:
        for _ in range(4):
            time.sleep(1.2)
            changes.append(time.monotonic())
            v.density = 8.0
            time.sleep(0.4)
            v.density = 0.125
    finally:
        s.stop()
    assert v.late == 0, v.late
    assert notes and all(abs(s.clock.beat(t) / 0.5 - round(s.clock.beat(t) / 0.5)) < 1e-6 for t in notes)
    after = [min((t for t in notes if t >= c - 0.002), default=None) for c in changes]
    assert all(t is not None and t - c < 0.5 for t, c in zip(after, changes, strict=True)), (after, changes)

"""Mappings: curves, clip modes, smoothing, quantize, deadband, rate limit, triggers, LFOs."""

from __future__ import annotations

import math

import pytest

from livernn.controls.automation import Lfo, Ramp
from livernn.controls.mapping import Mapping, MappingError, build_mapping
from livernn.controls.trigger import Trigger
from livernn.engine.params import PARAM_SPECS
from livernn.errors import LivernnError


def test_linear_maps_input_range_onto_output_range():
    m = Mapping(in_range=(0, 127), out_range=(0.2, 1.8))
    assert m(0, 0.0) == pytest.approx(0.2)
    assert m(127, 0.1) == pytest.approx(1.8)
    assert m(63.5, 0.2) == pytest.approx(1.0)


def test_exp_and_log_bend_the_middle_opposite_ways_and_invert_each_other():
    exp = Mapping(out_range=(0, 10), curve="exp")
    log = Mapping(out_range=(0, 10), curve="log")
    assert exp.shape_value(0.5) < 5 < log.shape_value(0.5)
    assert exp.shape_value(0) == pytest.approx(0) and exp.shape_value(1) == pytest.approx(10)
    for x in (0.1, 0.5, 0.9):
        assert exp.inverse(exp.shape_value(x)) == pytest.approx(x)
        assert log.inverse(log.shape_value(x)) == pytest.approx(x)


def test_breakpoints_interpolate_between_points():
    m = Mapping(out_range=(0, 100), curve="breakpoints", points=[(0, 0), (0.5, 0.8), (1, 1)])
    assert m.shape_value(0.25) == pytest.approx(40)
    assert m.shape_value(0.75) == pytest.approx(90)
    assert m.inverse(90) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("clip", "x", "expected"),
    [("clip", 1.5, 1.0), ("clip", -3, 0.0), ("free", 1.5, 1.5), ("wrap", 1.25, 0.25), ("fold", 1.25, 0.75),
     ("fold", -0.25, 0.25)],
)
def test_clip_modes(clip, x, expected):
    assert Mapping(clip=clip).shape_value(x) == pytest.approx(expected)


def test_invert_flips_the_range():
    m = Mapping(out_range=(0, 10), invert=True)
    assert m.shape_value(0.2) == pytest.approx(8)
    assert m.inverse(8) == pytest.approx(0.2)


def test_steps_and_quantize_snap_to_a_grid():
    assert Mapping(out_range=(0, 12), steps=5)(0.4, 0) == pytest.approx(6)
    assert Mapping(out_range=(0, 1), quantize=0.25)(0.6, 0) == pytest.approx(0.5)


def test_param_kinds():
    assert Mapping(out_range=(0, 127), kind="int")(0.5, 0) == 64
    assert Mapping(kind="bool")(0.7, 0) is True
    chooser = Mapping(out_range=(0, 2), kind="choice", choices=["major", "minor", "dorian"])
    assert chooser(0.5, 0) == "minor"


def test_deadband_ignores_small_moves():
    m = Mapping(deadband=0.05)
    assert m(0.5, 0) == pytest.approx(0.5)
    assert m(0.52, 0.01) is None
    assert m(0.6, 0.02) == pytest.approx(0.6)


def test_rate_limit_moves_at_most_rate_per_second_and_settles_on_ticks():
    m = Mapping(out_range=(0, 10), rate=5.0)
    assert m(0.0, 0.0) == 0.0
    assert m(1.0, 0.5) == pytest.approx(2.5)
    assert m.tick(1.0) == pytest.approx(5.0)
    assert m.tick(3.0) == pytest.approx(10.0)


def test_ema_and_one_euro_smooth_a_jump_then_settle():
    for m in (Mapping(smooth="ema", alpha=0.2), Mapping(smooth="one_euro", mincutoff=1.0, beta=0.0)):
        m(0.0, 0.0)
        first = m(1.0, 0.01)
        assert 0 < first < 0.5
        t, y = 0.01, first
        for _ in range(300):
            t += 0.01
            y = m.tick(t)
        assert y == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_non_finite_input_writes_nothing(x):
    assert Mapping()(x, 0) is None


def test_huge_inputs_in_free_mode_give_nothing_rather_than_overflow():
    m = Mapping(clip="free", curve="exp")
    assert m(1e300, 0) is None
    assert m(0.5, 0) is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_range": (1, 1)},
        {"curve": "cubic"},
        {"clip": "bounce"},
        {"smooth": "kalman"},
        {"steps": 1},
        {"rate": -1},
        {"curve": "breakpoints", "points": [(0, 0)]},
        {"kind": "choice"},
    ],
)
def test_bad_settings_are_refused_with_a_reason(kwargs):
    with pytest.raises(LivernnError, match="mapping: "):
        Mapping(**kwargs)


@pytest.mark.parametrize(
    ("options", "key", "line"),
    [
        ({"range": "x"}, "range", "mapping: range must be [low, high], two finite numbers, got 'x'"),
        ({"curve": 3}, "curve", "mapping: curve must be a string, got an integer"),
        ({"steps": 2.5}, "steps", "mapping: steps must be an integer, got a number"),
        ({"alpha": 0.5}, "alpha", "mapping: alpha only applies with smooth = 'ema'"),
        ({"curve": "cubic"}, "curve", "mapping: curve 'cubic' is not one of lin, exp, log, breakpoints"),
        ({"range": [1, 1]}, "range", "mapping: range [1.0, 1.0] must be two different finite numbers"),
    ],
)
def test_one_constructor_names_the_option_at_fault(options, key, line):
    """build_mapping is the one way from patch()/[[mappings]] options to a Mapping: each
    problem names its option (the patch points at that key), the message is one line."""
    with pytest.raises(MappingError) as caught:
        build_mapping(PARAM_SPECS["temperature"], options)
    assert str(caught.value) == line
    assert caught.value.problems[0][0] == key


def test_one_constructor_fills_in_the_parameter_and_refuses_unknown_options():
    m = build_mapping(PARAM_SPECS["scale"], {"range": (0, 127)})
    assert (m.in_range, m.kind, m.choices[0]) == ((0.0, 127.0), "choice", PARAM_SPECS["scale"].choices[0])
    assert build_mapping(PARAM_SPECS["temperature"], {"out": [0.5, 1.5], "smooth": "ema", "alpha": 0.2}).alpha == 0.2
    with pytest.raises(LivernnError, match=r"^no mapping option 'smoth'; did you mean 'smooth'"):
        build_mapping(PARAM_SPECS["temperature"], {"smoth": "ema"})


def test_trigger_fires_once_per_crossing_with_hysteresis():
    t = Trigger(source="osc./x", action="panic", above=0.8, hysteresis=0.1)
    assert [t.feed(v) for v in (0.0, 0.85, 0.9, 0.75, 0.85, 0.6, 0.9)] == [
        False, True, False, False, False, False, True,
    ]


def test_trigger_does_not_fire_on_its_first_reading():
    t = Trigger(source="clock.bar", action="scene", args={"scene": "b"}, above=8)
    assert t.feed(9.0) is False
    assert t.feed(10.0) is False


def test_trigger_on_a_discrete_value():
    t = Trigger(source="hand.any.gesture", action="panic", equals="fist")
    assert [t.feed(v) for v in ("open", "fist", "fist", "open", "fist")] == [False, True, False, False, True]


def test_trigger_needs_exactly_one_condition_and_a_known_action():
    with pytest.raises(LivernnError):
        Trigger(source="a", action="panic")
    with pytest.raises(LivernnError):
        Trigger(source="a", action="explode", above=1)


@pytest.mark.parametrize("shape", ["sine", "tri", "saw", "square", "random"])
def test_lfo_shapes_stay_in_range_and_start_low(shape):
    lfo = Lfo("x", shape=shape, beats=4, lo=0.5, hi=1.5)
    values = [lfo.value(b / 10, 0) for b in range(200)]
    assert all(0.5 <= v <= 1.5 for v in values)
    assert max(values) - min(values) > 0.3
    if shape != "random":
        assert lfo.value(0, 0) == pytest.approx(0.5)


def test_lfo_in_hz_follows_seconds_not_beats():
    lfo = Lfo("x", shape="saw", hz=2.0)
    assert lfo.value(123.0, 0.25) == pytest.approx(0.5)


def test_ramp_slides_or_steps_between_points_and_loops():
    ramp = Ramp("r", points=[(0, 0.5), (8, 1.5)])
    assert ramp.value(4) == pytest.approx(1.0) and ramp.value(20) == 1.5
    cue = Ramp("c", points=[(0, 0), (4, 1), (8, 2)], step=True)
    assert [cue.value(b) for b in (1, 5, 9)] == [0, 1, 2]
    looped = Ramp("l", points=[(0, 0), (4, 1)], loop=4)
    assert looped.value(6) == pytest.approx(0.5)

"""ControlBus: latest values, exact and glob subscriptions, non-finite values refused."""

import math

from livernn.controls.bus import ControlBus


def test_publish_keeps_latest_value_and_time():
    bus = ControlBus()
    assert bus.publish("osc./1/fader1", 0.25, t=1.0)
    assert bus.publish("osc./1/fader1", 0.5, t=2.0)
    assert bus.get("osc./1/fader1") == 0.5
    assert bus.reading("osc./1/fader1").time == 2.0
    assert bus.names() == ["osc./1/fader1"]
    assert bus.get("missing", 7) == 7


def test_exact_and_pattern_subscribers_see_matching_names_only():
    bus = ControlBus()
    exact, pattern = [], []
    bus.subscribe("hand.right.pinch", lambda n, v, t: exact.append((n, v)))
    bus.subscribe("hand.*.pinch", lambda n, v, t: pattern.append((n, v)))
    bus.publish("hand.right.pinch", 0.1)
    bus.publish("hand.left.pinch", 0.2)
    bus.publish("hand.left.height", 0.3)
    assert exact == [("hand.right.pinch", 0.1)]
    assert pattern == [("hand.right.pinch", 0.1), ("hand.left.pinch", 0.2)]


def test_unsubscribe_stops_callbacks():
    bus = ControlBus()
    seen = []
    remove = bus.subscribe("a", lambda n, v, t: seen.append(v))
    remove_glob = bus.subscribe("a*", lambda n, v, t: seen.append(-v))
    bus.publish("a", 1)
    remove()
    remove_glob()
    bus.publish("a", 2)
    assert seen == [1.0, -1.0]


def test_non_finite_and_non_numeric_values_never_reach_subscribers():
    bus = ControlBus()
    seen = []
    bus.subscribe("x", lambda n, v, t: seen.append(v))
    for bad in (math.nan, math.inf, -math.inf, None, object(), b"\xff"):
        assert not bus.publish("x", bad)
    assert seen == [] and bus.get("x") is None
    assert bus.dropped == 6
    assert bus.publish("hand.any.gesture", "fist")
    assert bus.get("hand.any.gesture") == "fist"


def test_a_raising_subscriber_does_not_starve_the_others():
    bus = ControlBus()
    seen = []

    def broken(name, value, t):
        raise RuntimeError("boom")

    bus.subscribe("x", broken)
    bus.subscribe("x", lambda n, v, t: seen.append(v))
    bus.subscribe("x*", lambda n, v, t: seen.append(-v))
    assert bus.publish("x", 1.0)
    assert seen == [1.0, -1.0]
    assert bus.errors == 1 and "boom" in bus.last_error

"""One time base: beats, bars, tempo changes that keep the beat, and Link as an extra."""

from __future__ import annotations

import math
import sys
import time

import pytest

from livernn.engine import Clock, Session
from livernn.errors import LivernnError


def test_beats_and_bars_follow_the_tempo():
    c = Clock(bpm=120, beats_per_bar=3)
    t0 = c.time_of(0.0)
    assert c.beat(t0 + 1.0) == pytest.approx(2.0)
    assert c.bar(t0 + 3.0) == pytest.approx(2.0)  # 6 beats in 3/4
    assert c.next_boundary(4.2, "beat") == 5 and c.next_boundary(4.2, "bar") == 6
    assert c.next_boundary(6.0, "bar") == 6


def test_tempo_change_keeps_the_beat_continuous():
    c = Clock(bpm=120)
    t = c.time_of(0.0) + 2.0  # beat 4
    c.set_tempo(60, t)
    assert c.beat(t) == pytest.approx(4.0)
    assert c.beat(t + 1.0) == pytest.approx(5.0)
    assert c.time_of(6.0) == pytest.approx(t + 2.0)


@pytest.mark.parametrize("bpm", [0, -5, math.nan, math.inf, 5000, "fast"])
def test_bad_tempo_is_refused(bpm):
    with pytest.raises(LivernnError, match="tempo"):
        Clock(bpm=bpm)
    s = Session()
    with pytest.raises(LivernnError, match="tempo"):
        s.tempo = bpm
    assert s.tempo == 120.0


def test_session_tempo_event_and_status():
    s = Session(bpm=100)
    seen = []
    s.on("tempo", seen.append)
    s.set_tempo(140)
    assert seen == [140.0] and s.status()["bpm"] == 140.0
    with pytest.raises(LivernnError, match="unknown event"):
        s.on("explode", print)


def test_timetags_come_from_logical_time_not_the_wall_clock_at_send():
    c = Clock()
    t = time.monotonic() + 10.0
    tag = c.timetag(t)
    time.sleep(0.05)
    assert c.timetag(t) == tag  # the same logical time always gives the same tag
    assert c.monotonic_of_timetag(tag) == pytest.approx(t, abs=1e-6)


def test_link_without_its_extra_says_which_extra(monkeypatch):
    # Link itself runs only inside a private network namespace (tests/test_sync_link.py):
    # here aalink is made unimportable, which is what a machine without the extra sees.
    monkeypatch.setitem(sys.modules, "aalink", None)
    with pytest.raises(LivernnError, match=r"pip install 'livernn\[link\]'"):
        Session(clock="link")
    with pytest.raises(LivernnError, match="clock source must be one of internal, link, midi:NAME"):
        Session(clock="lnk")

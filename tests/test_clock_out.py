"""MIDI clock out through JACK, measured by a probe in another process.

The session sends the tempo map to its MIDI sender process, which times 24 ticks per
quarter itself (livernn/outputs/midi_clock_out.py); the probe (a separate interpreter,
timing messages let through) records what arrives.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from livernn.engine import Session
from livernn.outputs import midi
from peers import ProcessMidiProbe, wait_for


def ClockProbe(client: str) -> ProcessMidiProbe:
    """A JACK MIDI input in its own process that keeps timing messages."""
    return ProcessMidiProbe(client, timing=True)


def fit_jitter(times: list[float]) -> np.ndarray:
    """Residuals (s) of tick times against a straight line through them."""
    t = np.asarray(times)
    k = np.arange(len(t))
    slope, intercept = np.polyfit(k, t, 1)
    return t - (intercept + slope * k)


@pytest.fixture
def probe(jack, request):
    p = ClockProbe(f"cprobe{abs(hash(request.node.nodeid)) % 100000}")
    yield p
    p.close()


def test_clock_out_ticks_start_and_stop(jack, probe):
    session = Session(bpm=120)
    session.add_output("synth", midi("clockout"))
    jack.connect(jack.wait_port("clockout"), f"{probe.client}:in")
    session.clock_out("synth")
    with session:
        wait_for(lambda: len(probe.of(0xF8)) >= 24 * 8, 20, "8 beats of MIDI clock")
        session.stop_clock_out("synth")
        time.sleep(0.2)
    messages = [m for _, m in probe.received]
    firsts = [m[0] for m in messages[:2]]
    assert firsts[0] == 0xF2 and firsts[1] in (0xFA, 0xFB)  # Song Position Pointer, then Start/Continue
    spp = messages[0][1] | messages[0][2] << 7
    assert spp % 4 == 0  # started on a whole beat (16ths)
    assert [m[0] for m in messages].count(0xFC) == 1
    ticks = probe.of(0xF8)
    assert probe.of(0xFC)[0] > ticks[-1]  # nothing ticks after Stop
    intervals = np.diff(ticks)
    assert abs(np.median(intervals) - 0.5 / 24) < 2e-4  # 24 per quarter at 120 BPM
    jitter = np.abs(fit_jitter(ticks))
    p99 = float(np.percentile(jitter, 99))
    print(f"tick jitter p99 {1000 * p99:.3f} ms over {len(ticks)} ticks")
    assert p99 < 5e-3  # "on a grid" with the whole suite beside it (2.6 ms seen); bench/bench_sync.py holds 0.6 ms


def test_tempo_change_neither_skips_nor_doubles_a_tick(jack, probe):
    session = Session(bpm=120)
    session.add_output("synth", midi("clockout2"))
    jack.connect(jack.wait_port("clockout2"), f"{probe.client}:in")
    session.clock_out("synth")
    with session:
        wait_for(lambda: len(probe.of(0xF8)) >= 48, 20, "2 beats of MIDI clock")
        for bpm in (150, 90, 137.5):
            changed = time.monotonic()
            session.set_tempo(bpm)
            beat_at_change = session.clock.beat(changed)
            time.sleep(1.0)
        end_beat = session.clock.beat(time.monotonic() - 0.1)
        session.stop_clock_out("synth")
        time.sleep(0.2)
    ticks = probe.of(0xF8)
    start = probe.of(0xFB) + probe.of(0xFA)
    spp = next(m for _, m in probe.received if m[0] == 0xF2)
    first_beat = (spp[1] | spp[2] << 7) / 4
    stop = probe.of(0xFC)[0]
    # Every tick the tempo map holds between the start beat and the stop, none more or fewer.
    stop_beat = session.clock.beat(stop)
    expected = int(np.floor((stop_beat - first_beat) * 24 + 1e-6)) + 1
    assert abs(len(ticks) - expected) <= 1, (len(ticks), expected)
    intervals = np.diff(ticks)
    assert intervals.max() < 2.5 * 60 / 90 / 24  # no skipped tick (the slowest tempo's tick, plus JACK)
    assert intervals.min() > 0.2 * 60 / 150 / 24  # no doubled tick
    assert start and end_beat > beat_at_change
    # The last tempo's ticks: 137.5 BPM
    last = np.diff([t for t in ticks if t > changed + 0.1])
    assert abs(60 / (24 * np.median(last)) - 137.5) < 1.5


def test_a_forward_jump_of_the_beat_relocates_the_receiver():
    """The clock source's Start moves the beat forward (to its bar line): ticks cannot say
    so, and skipping them would leave a receiver behind. Stop, the Song Position Pointer of
    the next 16th and Continue go out instead, and the ticks go on from that 16th."""
    from livernn.outputs.midi_clock_out import CONTINUE, PPQ, STOP, TICK, ClockOut

    out = ClockOut(ahead=0.0)
    assert out.command(b"clock", b"100.0 0.0 120.0") == []
    assert [m for _, m in out.command(b"cstart", b"100.5 1.0")] == [bytes([0xF2, 4, 0]), CONTINUE]
    for _ in range(30):  # beat 1 .. 2.25 at 120 BPM
        assert out.due() is not None and out.take() == TICK
    # A tempo change at the same beat skips nothing.
    assert out.command(b"clock", b"101.1 2.2 130.0") == [] and out.n == 30
    # At t = 101.2 the beat jumps from about 2.42 to 5.3 (a source's bar line ahead).
    messages = out.command(b"clock", b"101.2 5.3 130.0")
    assert [m for _, m in messages] == [STOP, bytes([0xF2, 22, 0]), CONTINUE], messages  # 22 16ths = 5.5
    assert messages[0][0] == 101.2 and out.n == int((5.5 - 1.0) * PPQ) and out.relocated == 1
    tick = out.due()
    assert tick is not None and abs(tick - (101.2 + 0.2 * 60 / 130)) < 1e-9 and messages[2][0] < tick

"""MIDI clock in: a tick source in another process drives the session's clock through JACK."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from livernn.engine import Session
from peers import stop_process

SOURCE = r"""
import sys, time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=sys.argv[1]); out.open_virtual_port("out")
print("ready", flush=True)
sys.stdin.readline()            # go
plan = [(float(b), int(n)) for b, n in (x.split(":") for x in sys.argv[2:] if ":" in x)]
fd = "fd" in sys.argv[2:]       # 0xFD (a run check's ping byte) halfway between the ticks
fds = 0
t = time.monotonic() + 0.05
out.send_message([0xFA])
for bpm, beats in plan:
    for _ in range(24 * beats):
        while time.monotonic() < t:
            pass
        out.send_message([0xF8])
        sent = time.monotonic()
        print("%.7f %g" % (t, bpm), flush=True)
        t += 60.0 / bpm / 24
        if fd:
            while time.monotonic() < t - 30.0 / bpm / 24:
                pass
            now = time.monotonic()
            # Never beside a tick: two messages in one JACK period reach a busy receiving
            # process garbled by python-rtmidi (the second a copy of the first, peers.py).
            if now - sent > 0.003 and t - now > 0.003:
                out.send_message([0xFD])
                fds += 1
out.send_message([0xFC])
print("done", flush=True)
print(fds, flush=True)          # read by play_source only
sys.stdin.readline()
"""


def start_source(name: str, *plan: str) -> subprocess.Popen:
    """The tick source process (SOURCE) as JACK client ``name``, its port up, waiting for go."""
    proc = subprocess.Popen([sys.executable, "-c", SOURCE, name, *plan], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline().strip()
    if line != "ready":
        stop_process(proc)
        raise AssertionError(f"the tick source did not start: {line!r}")
    return proc


def play_source(proc: subprocess.Popen, session: Session, wait: bool = True
                ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
    """Let the source play its plan; the ticks it sent (its time, its bpm), at each one the
    session's clock (engine beat at the tick's time, bpm), read once the tick has reached
    the session (one JACK period on; ``wait=False``: at once, for ticks that may be lost),
    and how many 0xFD it sent."""
    proc.stdin.write("go\n")
    proc.stdin.flush()
    source = session.band.source
    ticks: list[tuple[float, float]] = []
    samples = []
    fds = -1
    for line in proc.stdout:
        if line.strip() == "done":
            fds = int(proc.stdout.readline())
            break
        t, bpm = line.split()
        ticks.append((float(t), float(bpm)))
        deadline = time.monotonic() + 0.1
        while wait and source.ticks < len(ticks) and time.monotonic() < deadline:
            time.sleep(0.0002)
        samples.append((session.clock.beat(float(t)), session.clock.bpm))
    return ticks, samples, fds


def phase_ms(samples: list[tuple[float, float]], bpm: float) -> np.ndarray:
    """How far (ms) each sample's engine beat is from a whole beat: take them on the source's beats."""
    beats = np.array([b for b, _ in samples])
    return np.abs(beats - np.round(beats)) * 60 / bpm * 1000


def test_follows_an_external_clock_locks_and_follows_a_change(jack):
    session = Session(bpm=100, clock="midi:ticks")
    with session:
        proc = start_source("tsrc", "133:16", "140:8")
        try:
            jack.connect(jack.wait_port("tsrc:out"), jack.wait_port("ticks"))
            ticks, samples, _ = play_source(proc, session)
            status = session.status()["clock"]
            print("restarts", session.band.source.filter.restarts,
                  "errs", [round(b - 133, 3) for _, b in samples[96:24 * 16:12]])
        finally:
            stop_process(proc)
    assert status["source"] == "midi:ticks" and status["ticks"] >= 24 * 24 - 2
    times = np.array([t for t, _ in ticks])
    # Tempo: locked within one bar (96 ticks) and steady after it.
    bar1 = times[96]
    after = [b for (ts, b) in samples[96:24 * 16]]
    assert max(abs(b - 133) for b in after) < 0.05, max(abs(b - 133) for b in after)
    # Phase: every beat of the source after the first bar lands on a whole engine beat.
    phase = phase_ms(samples[96:24 * 16:24], 133)
    print(f"phase error on the source's beats: p99 {np.percentile(phase, 99):.3f} ms")
    assert np.percentile(phase, 99) < 2.0, phase
    # The change to 140 is followed within one beat.
    change = 24 * 16
    within = [b for (ts, b) in samples[change + 24:change + 48]]
    assert min(within) > 139.5, within
    assert bar1 > 0


def test_tempo_filter_holds_a_late_tick_out_and_follows_a_change():
    """A source preempted for 40 ms once a bar sends the ticks it owes late, in a burst: held out
    of the fit (they would tilt the line); a change of tempo (every tick further off, same side)
    restarts the fit."""
    from livernn.sync.midi_clock import PPQ, TempoFilter

    rng = np.random.default_rng(1)

    def run(hold_after):
        f = TempoFilter(hold_after=hold_after)
        period, t, resume, errors = 60 / 133 / PPQ, 0.0, 0.0, []
        for k in range(PPQ * 24):
            if k == PPQ * 16:
                period = 60 / 140 / PPQ
            if k % 96 == 50:
                resume = t + 0.04  # the source is off the CPU for 40 ms from this tick on
            sent = max(t, resume) if k % 96 >= 50 else t
            f.add(k, sent + rng.uniform(-0.00033, 0.00033))
            errors.append(60 / PPQ / f.period if f.period else 0.0)
            t += period
        return errors

    errors = run(PPQ)
    assert max(abs(b - 133) for b in errors[96:PPQ * 16]) < 0.05
    assert min(errors[PPQ * 17:]) > 139.5
    unheld = run(10 ** 9)
    assert max(abs(b - 133) for b in unheld[96:PPQ * 16]) >= 0.05


def test_a_clock_source_name_means_one_port(jack):
    """``midi:NAME`` follows the source whose client is NAME even beside NAME2 (a part of a
    name picked whichever was listed first), and a part that fits two is one line."""
    from livernn.errors import LivernnError
    from livernn.sync.midi_clock import MidiClockIn

    procs = [start_source("lvclk", "120:1"), start_source("lvclk2", "120:1")]
    try:
        jack.wait_port("lvclk:out")
        jack.wait_port("lvclk2:out")
        clock_in = MidiClockIn("lvclk", print)
        try:
            assert clock_in.port.startswith("lvclk:") and not clock_in._virtual
        finally:
            clock_in.stop()
        try:
            MidiClockIn("lvcl", print)
        except LivernnError as exc:
            message = str(exc)
        else:
            raise AssertionError("an ambiguous clock source name was accepted")
        assert "\n" not in message and "lvclk:out" in message and "lvclk2:out" in message
    finally:
        for proc in procs:
            stop_process(proc)

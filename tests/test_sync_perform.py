"""``livernn perform PATCH`` with the band, end to end through real JACK: a tick source
process drives ``--sync midi:NAME`` (or the patch's ``[clock] source``), a probe process
receives the show's notes and its ``--clock-out`` (or ``[clock] out``) ticks.

Checked: the ``tempo N`` lines perform prints follow the source (133, then 140 BPM); every
note the show scheduled (its ``--record`` file) arrives once at the probe, and the notes of a
voice quantized to 16ths land on the *source's* 16th grid; the clock out starts with a Song
Position Pointer and Start (or Continue) and sends 24 ticks per quarter of the tempo it
follows, and when the source's Start moves the show's beat it relocates its receiver (Stop,
Song Position Pointer, Continue): counting its ticks puts a drum machine on the source's bar.

Bounds are fixed numbers for a loaded 2-core machine (the whole suite and other test runs
beside it); what the engine does unloaded is bench/bench_sync.py's figure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest

from peers import stop_process, wait_for
from test_clock_out import ClockProbe
from test_sync_midi import SOURCE

PLAN = (("133", 12), ("140", 8))  # the source's tempo, beats
PATCH = """
version = 1
[clock]
bpm = 100
{clock}
[outputs.keys]
type = "midi"
port = "{notes}"
{drums}
[voices.lead]
model = "default"
outputs = ["keys"]
params = {{ quantize = 0.25, density = 1.0, pitch_min = 48, pitch_max = 84 }}
"""
# The notes' distance from the source's 16th grid, p99 and worst: fixed for a loaded 2-core
# machine (measured at load 6-7 with other test runs beside it: p99 2.3-6.4 ms, worst 6.5 ms;
# the suite's onset bound is 10 ms too). A note off the grid by a lost beat phase would be
# tens of ms off (a 16th at 140 BPM is 107 ms).
GRID_P99_MS, GRID_MAX_MS = 10.0, 20.0
PAIR_TOLERANCE_MS = 25.0


def source_beats(ticks: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The source's beat (tick index / 24) at times ``at``: piecewise linear between its
    ticks' scheduled times, extrapolated at the ends with the nearest tick period."""
    k = np.arange(len(ticks), dtype=float)
    inside = np.interp(at, ticks, k)
    before = (at - ticks[0]) / (ticks[1] - ticks[0])
    after = len(ticks) - 1 + (at - ticks[-1]) / (ticks[-1] - ticks[-2])
    return np.where(at < ticks[0], before, np.where(at > ticks[-1], after, inside)) / 24


def counted_positions(clock: list[tuple[float, list[int]]]) -> list[tuple[float, float]]:
    """(arrival, beat) of each tick as a receiver counts them: a Song Position Pointer sets
    the position (16ths), Start goes from 0, Continue from the position, each tick while
    running is one 24th of a beat on."""
    position, running, counted = 0.0, False, []
    for at, m in clock:
        if m[0] == 0xF2:
            position = (m[1] | m[2] << 7) / 4
        elif m[0] in (0xFA, 0xFB):
            position, running = (0.0 if m[0] == 0xFA else position), True
        elif m[0] == 0xFC:
            running = False
        elif m[0] == 0xF8 and running:
            counted.append((at, position))
            position += 1 / 24
    return counted


def recorded_onsets(path: Path) -> list[tuple[float, int]]:
    """(seconds from the recording's start, pitch) of every note-on in the recording."""
    seconds, onsets = 0.0, []
    for message in mido.MidiFile(path):  # iterating a MidiFile gives times in seconds
        seconds += message.time
        if message.type == "note_on" and message.velocity > 0:
            onsets.append((seconds, message.note))
    return onsets


def pair(scheduled: list[tuple[float, int]], arrived: list[tuple[float, int]]) -> tuple[list, list, list, float]:
    """Pair each scheduled note (recording time, pitch) with its arrival (monotonic time,
    pitch): the recording's time zero is found as the commonest difference between a
    scheduled note and an arrival of the same pitch (1 ms bins), then each note takes the
    nearest unpaired arrival of its pitch within PAIR_TOLERANCE_MS of it. Returns the pairs
    (scheduled time as monotonic, arrival), the notes that never arrived, the arrivals no
    note was scheduled for, and the offset."""
    diffs = np.array([a - s for s, p in scheduled for a, q in arrived if p == q])
    bins = np.round(diffs * 1000)
    values, counts = np.unique(bins, return_counts=True)
    peak = values[np.argmax(counts)] / 1000
    offset = float(np.median(diffs[np.abs(diffs - peak) < 0.005]))
    free = list(arrived)
    pairs, missing = [], []
    for s, p in scheduled:
        best = min((i for i, (a, q) in enumerate(free) if q == p), key=lambda i: abs(free[i][0] - s - offset),
                   default=None)
        if best is not None and abs(free[best][0] - s - offset) * 1000 < PAIR_TOLERANCE_MS:
            pairs.append((s + offset, free.pop(best)[0]))
        else:
            missing.append((s, p))
    return pairs, missing, free, offset


@pytest.mark.parametrize("way", ["flags", "table"])
def test_perform_follows_a_midi_clock_and_sends_clock_out(jack, tmp_path, way):
    """``perform --sync midi:NAME --clock-out midi:NAME``, or the same from the patch's
    ``[clock]`` table, as a subprocess through real JACK."""
    tag = f"{way[0]}{os.getpid() % 1000}"
    # The source and the probe are there first, as a drum machine and a synth would be: the
    # show finds them by name (no port is patched by hand), so the probe hears the clock
    # out's first messages.
    src_name, probe_name = f"psrc{tag}", f"pprobe{tag}"
    if way == "flags":
        clock, drums = "", ""
        flags = ["--sync", f"midi:{src_name}", "--clock-out", f"midi:{probe_name}"]
    else:
        clock = f'source = "midi:{src_name}"\nout = ["midi:drums"]'
        drums = f'[outputs.drums]\ntype = "midi"\nport = "{probe_name}"'
        flags = []
    patch = tmp_path / "band.toml"
    patch.write_text(PATCH.format(clock=clock, notes=probe_name, drums=drums))
    record = tmp_path / "set.mid"
    probe = ClockProbe(probe_name)
    src = subprocess.Popen([sys.executable, "-c", SOURCE, src_name, *(f"{b}:{n}" for b, n in PLAN)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    perform = None
    ticks: list[float] = []
    try:
        assert src.stdout.readline().strip() == "ready"
        perform = subprocess.Popen([sys.executable, "-m", "livernn.cli", "perform", str(patch), *flags,
                                    "--record", str(record), "--no-reload", "--quiet", "--duration", "300"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ), start_new_session=True)
        wait_for(lambda: len(probe.of(0xF8)) > 24 or perform.poll() is not None, 60,
                 "ticks from perform's clock out")
        src.stdin.write("go\n")
        src.stdin.flush()
        for line in src.stdout:
            if line.strip() == "done":
                break
            ticks.append(float(line.split()[0]))
        time.sleep(0.5)
    finally:
        stop_process(src)
        err = ""
        if perform is not None:
            perform.send_signal(signal.SIGTERM)
            try:
                err = perform.communicate(timeout=30)[1]
            finally:
                stop_process(perform)
        probe.close()
    assert perform.returncode in (0, 128 + signal.SIGTERM), err[-2000:]

    # The tempo lines: one per change of 0.05 BPM or more (0.15 BPM: see test_sync_interfaces).
    tempos = [float(x) for x in re.findall(r"^tempo ([\d.]+)$", err, re.M)]
    assert any(abs(t - 133) < 0.15 for t in tempos) and abs(tempos[-1] - 140) < 0.15, (tempos, err[-1500:])
    if way == "flags":
        assert f"sync midi:{src_name}" in err and "MIDI clock out on" in err, err[-1500:]

    t = np.array(ticks)
    change = 24 * PLAN[0][1]  # the first tick at 140
    received = list(probe.received)

    # Clock out: a Song Position Pointer on a whole beat, then Start (Continue when that is
    # not the song's start), before the first tick; 24 ticks a quarter of the tempo followed.
    clock = [(at, m) for at, m in received if m and m[0] in (0xF2, 0xFA, 0xFB, 0xF8, 0xFC)]
    assert clock[0][1][0] == 0xF2 and clock[1][1][0] in (0xFA, 0xFB) and clock[2][1][0] == 0xF8, clock[:3]
    assert (clock[0][1][1] | clock[0][1][2] << 7) % 4 == 0, clock[0]
    print("clock out's start and position messages:", [m for _, m in clock if m[0] != 0xF8])
    out_ticks = np.array([at for at, m in clock if m[0] == 0xF8])
    total = sum(n for _, n in PLAN)
    for first_beat, last_beat, bpm in ((4, PLAN[0][1] - 1, 133.0), (PLAN[0][1] + 2, total - 1, 140.0)):
        start, end = t[24 * first_beat], t[24 * last_beat]
        span = out_ticks[(out_ticks >= start) & (out_ticks < end)]
        assert abs(len(span) - 24 * (last_beat - first_beat)) <= 1, (len(span), first_beat, last_beat)
        assert abs(60 / (24 * np.median(np.diff(span))) - bpm) < 1.5, np.median(np.diff(span))

    # A drum machine counting those ticks from the song position is on the source's bar:
    # the source's Start moved the show's beat to the source's bar line, and the clock out
    # told it so (Stop, Song Position Pointer, Continue), rather than leaving it behind.
    counted = np.array(counted_positions(clock))
    at_beat = source_beats(t, counted[:, 0])
    steady_ticks = (at_beat >= 4) & (at_beat < total - 1)
    bar_error = (counted[:, 1] - at_beat + 2) % 4 - 2  # beats from a whole bar apart
    assert steady_ticks.sum() > 24 * 8 and np.abs(bar_error[steady_ticks]).max() < 0.05, \
        np.round(bar_error[steady_ticks][::24], 3)

    # Notes: every scheduled note arrives once, and on the source's grid.
    arrived = [(at, m[1]) for at, m in received if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0]
    scheduled = recorded_onsets(record)
    assert len(scheduled) > 20 and len(arrived) > 20, (len(scheduled), len(arrived))
    pairs, missing, extra, offset = pair(scheduled, arrived)
    first, last = arrived[0][0], arrived[-1][0]
    lost = [n for n in missing if first + 0.05 < n[0] + offset < last - 0.05]  # while the probe listened
    assert not lost and not extra, (len(pairs), lost[:10], extra[:10])
    at = np.array([a for _, a in pairs])
    beats = source_beats(t, at)
    bpm = np.where(at < t[change], 133.0, 140.0)
    steady = ((beats >= 4) & (beats < PLAN[0][1])) | ((beats >= PLAN[0][1] + 1) & (beats < total))
    grid_ms = np.abs(beats * 4 - np.round(beats * 4)) / 4 * 60 / bpm * 1000
    on_grid = grid_ms[steady]
    late_ms = (at - np.array([s for s, _ in pairs])) * 1000
    print(f"{way}: {len(pairs)} notes paired, {int(steady.sum())} on the steady grid: distance p50 "
          f"{np.median(on_grid):.2f} p99 {np.percentile(on_grid, 99):.2f} max {on_grid.max():.2f} ms; "
          f"delivery spread p99 {np.percentile(np.abs(late_ms - np.median(late_ms)), 99):.2f} ms; "
          f"tempo lines {tempos[:3]}..{tempos[-2:]}; load {os.getloadavg()[0]:.1f}")
    assert steady.sum() >= 20, steady.sum()
    assert np.percentile(on_grid, 99) < GRID_P99_MS and on_grid.max() < GRID_MAX_MS, np.sort(on_grid)[-10:]

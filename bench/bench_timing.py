"""How close to their logical time do notes arrive? MIDI through JACK, and OSC timetags.

Starts its own ``jackd -d dummy -r 48000 -p 32`` (tests/peers.py), a MIDI probe in a
separate process (time.monotonic() in its rtmidi callback; the same clock as ours), and
sends the same note list with:

- naive:   a thread that time.sleep()s to each deadline, default switch interval (5 ms);
- engine:  livernn's Scheduler (sleep, then spin the last 1.5 ms) with the switch interval
           lowered to 0.2 ms while playing, as a Session does, as a normal thread;
- engine+rt: the same with the sender at SCHED_FIFO (what a Session asks for when allowed);
- engine+proc: the Scheduler handing each message 50 ms early to a sender process that
           owns the port (``livernn.outputs.midi``'s default), which sends at the deadline.

each idle and while the same process runs pure-Python busy work in another thread (a REPL
user's code). Onset error = arrival at the probe - the note's logical time. Then OSC:
bundles from an OscOutput to a UDP socket, timetag decoded against the logical time.

    .venv/bin/python bench/bench_timing.py [--notes 200]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from livernn.engine.clock import Clock  # noqa: E402
from livernn.engine.scheduler import SWITCH_INTERVAL, Note, Scheduler  # noqa: E402
from livernn.outputs.midi_port import MidiOutput  # noqa: E402
from livernn.outputs.midi_process import MidiProcessOutput  # noqa: E402
from livernn.outputs.osc import OscOutput  # noqa: E402
from peers import ProcessMidiProbe, start_jack, stop_process  # noqa: E402


def busy(stop: threading.Event) -> None:
    """Pure-Python work that never releases the GIL by itself."""
    table: dict[int, int] = {}
    while not stop.is_set():
        for i in range(2000):
            table[i % 97] = table.get(i % 97, 0) + i * i


def note_times(n: int, start: float) -> list[float]:
    rng = np.random.default_rng(1)
    gaps = rng.uniform(0.012, 0.028, n)  # uneven, so nothing locks to the JACK period
    return list(start + np.cumsum(gaps))


def send_naive(out: MidiOutput, times: list[float]) -> None:
    for i, t in enumerate(times):
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        out.note_on(1, 36 + i % 64, 100, t)
        out.note_off(1, 36 + i % 64, t)


def run_case(jack, sender: str, load: bool, n: int) -> np.ndarray:
    probe = ProcessMidiProbe(f"bprobe{sender[-2:]}{int(load)}{time.monotonic_ns() % 1000}")
    out = MidiProcessOutput(probe.client, create=False) if sender == "engine+proc" else MidiOutput(
        probe.client, create=False)
    stop = threading.Event()
    worker = threading.Thread(target=busy, args=(stop,), daemon=True)
    previous = sys.getswitchinterval()
    try:
        time.sleep(0.3)
        if load:
            worker.start()
        start = time.monotonic() + 0.3
        times = note_times(n, start)
        if sender == "naive":
            thread = threading.Thread(target=send_naive, args=(out, times))
            thread.start()
            thread.join()
        else:
            sys.setswitchinterval(SWITCH_INTERVAL)
            sched = Scheduler(realtime=sender in ("engine+rt", "engine+proc"))
            sched.start()
            for i, t in enumerate(times):
                sched.schedule_note(Note("bench", 1, 36 + i % 64, 100, t, t + 0.005, (out,)))
            time.sleep(times[-1] - time.monotonic() + 0.1)
            sched.stop()
        time.sleep(0.2)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()
        sys.setswitchinterval(previous)
        out.close()
        probe.close()
    return match_arrivals(probe.received, times)


def match_arrivals(received: list, times: list[float]) -> np.ndarray:
    """Onset errors (ms): every note i (pitch 36 + i % 64) paired with its note-on, by pitch
    in order. A note that never arrived, or a note-on nobody sent, stops the bench: a figure
    over the notes that happened to arrive would hide exactly those."""
    sent: dict[int, list[float]] = {}
    for i, t in enumerate(times):
        sent.setdefault(36 + i % 64, []).append(t)
    heard: dict[int, list[float]] = {}
    for t, m in received:
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            heard.setdefault(m[1], []).append(t)
    wrong = {p: (len(sent.get(p, [])), len(heard.get(p, []))) for p in sent.keys() | heard.keys()
             if len(sent.get(p, [])) != len(heard.get(p, []))}
    if wrong:
        raise SystemExit(f"notes sent vs heard differ, pitch: (sent, heard): {wrong}")
    errors = [a - t for p, ts in sent.items() for t, a in zip(sorted(ts), sorted(heard[p]))]
    return np.array(errors) * 1000.0


def figures(errors_ms: np.ndarray) -> tuple[float, float, float, float]:
    a = np.abs(errors_ms)
    return (float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max()),
            float(np.mean(errors_ms)))


def osc_case(n: int, latency: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Timetag error (decoded tag - logical time) and how early each bundle arrived."""
    clock = Clock()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    out = OscOutput("127.0.0.1", rx.getsockname()[1], latency=latency)
    out.attach(clock)
    sched = Scheduler(realtime=False)
    sched.start()
    times = note_times(n, time.monotonic() + latency + 0.1)
    for t in times:
        sched.schedule_note(Note("bench", 1, 60, 100, t, t + 0.01, (out,)))
    tag_err, early = [], []
    for _ in range(2 * n):
        data = rx.recv(4096)
        arrived = time.monotonic()
        tag = struct.unpack(">Q", data[8:16])[0]
        t = clock.monotonic_of_timetag(tag)
        if b"/livernn/note" in data:
            tag_err.append(t)
            early.append(t - arrived)
    sched.stop()
    out.close()
    rx.close()
    return (np.array(tag_err) - np.array(times)) * 1000.0, np.array(early) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=200)
    args = parser.parse_args()
    jack = start_jack(Path(tempfile.mkdtemp(prefix="bench-jack-")))
    try:
        print(f"MIDI onset error through JACK (dummy, 48 kHz, 32-frame periods = 0.67 ms), {args.notes} notes")
        print("|error| = |arrival - logical time|; mean is signed (+ = late)")
        print(f"{'sender':<11} {'load':<5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'mean':>7}  p99 vs naive")
        for load in (False, True):
            base = None
            for sender in ("naive", "engine", "engine+rt", "engine+proc"):
                p50, p99, worst, mean = figures(run_case(jack, sender, load, args.notes))
                base = base or p99
                label = "busy" if load else "idle"
                print(f"{sender:<11} {label:<5} {p50:7.3f} {p99:7.3f} {worst:7.3f} {mean:+7.3f}  {p99 / base:5.2f}x")
    finally:
        stop_process(jack.proc)
    tag_err, early = osc_case(args.notes)
    print(f"OSC timetag - logical time: max |error| {np.abs(tag_err).max() * 1000:.3f} us "
          f"(float64 NTP conversion); bundles arrived {statistics.median(early):.1f} ms early "
          f"(median; latency 200 ms), earliest-late margin {early.min():.1f} ms")


if __name__ == "__main__":
    main()

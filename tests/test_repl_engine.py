"""The REPL driving a real show: typed lines -> Session -> JACK MIDI -> a probe.

Everything is typed through prompt_toolkit's pipe input, as a performer would type it; the
probe is a real JACK MIDI input in this process, so its arrival times share the engine's
monotonic clock and can be compared with each note's logical time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from livernn.model import default_model_path
from livernn.repl import make_repl, run_repl
from peers import MidiProbe, stop_process

pytestmark = pytest.mark.integration

# The bound, fixed: |arrival at the probe - the note's logical onset| at the 99th percentile,
# over every note of a window, busy or idle (issue 12). It holds the JACK period's delivery
# granularity too (32 frames at 48 kHz: the sender sends half a period early, so arrivals
# fall within about +-0.33 ms of the onset). MIDI goes out from the engine's sender process,
# whose interpreter the REPL's code cannot hold up. The target is 1.0 ms, which
# bench/bench_repl.py reports; this suite bound is what a 2-core machine holds while the rest
# of the suite runs beside it (1.34-5.93 ms p99 measured in full-suite runs, 0.2-0.5 ms alone):
# it still catches the GIL-bound sender this issue was about (tens of ms under a busy prompt).
ONSET_P99_BOUND_MS = 10.0
MIN_NOTES = 100  # notes a window needs for its p99 to be more than its maximum
BUSY_S = 6.0  # seconds of each window


QUEUE_PROBE = """
import sys, threading, time, rtmidi
probe = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=sys.argv[1], queue_size_limit=65536)
probe.ignore_types(sysex=False, timing=True, active_sense=True)
probe.open_virtual_port("in")
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
while not stop.is_set():
    message = probe.get_message()
    if message is None:
        time.sleep(0.0005)
        continue
    data, delta = message
    print(repr(time.monotonic()), repr(delta), *data, flush=True)
"""


class QueueProbe:
    """A JACK MIDI probe in its own process that never runs Python in JACK's thread.

    peers' probes take each message in a python-rtmidi callback, which runs inside the
    JACK process cycle and needs the GIL; on this loaded 2-core machine that callback
    misses cycles and reports bursts as copies of one message (a panic's note-offs turn
    into a stuck-looking pile of note-ons). Here RtMidi queues messages in C++ and Python
    polls them. RtMidi stamps each message with its delta from the previous one (JACK's
    microsecond clock), so arrival times are the cumulative deltas anchored at the
    most promptly polled message: ``anchor = min(poll_i - cum_i)``.
    """

    def __init__(self, client: str) -> None:
        self.client = client
        self.port = f"{client}:in"
        self._lock = threading.Lock()
        self._polled: list[tuple[float, float, list[int]]] = []
        self.proc = subprocess.Popen([sys.executable, "-c", QUEUE_PROBE, self.client], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self.proc.stdout.readline().strip() != "ready":
            stop_process(self.proc)
            pytest.fail(f"MIDI probe process {self.client} did not start")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        cumulative = 0.0
        for line in self.proc.stdout:
            polled, delta, *data = line.split()
            cumulative += float(delta)
            with self._lock:
                self._polled.append((float(polled), cumulative, [int(b) for b in data]))

    @property
    def received(self) -> list[tuple[float, list[int]]]:
        with self._lock:
            polled = list(self._polled)
        if not polled:
            return []
        anchor = min(t - cum for t, cum, _ in polled)
        return [(anchor + cum, data) for _, cum, data in polled]

    def messages(self) -> list[list[int]]:
        return [m for _, m in self.received]

    note_balance = MidiProbe.note_balance

    def close(self) -> None:
        self.proc.stdin.close()
        stop_process(self.proc)


@pytest.fixture
def midi_probe(jack):
    probe = QueueProbe(f"rprobe{os.getpid() % 10000}{time.monotonic_ns() % 1000}")
    yield probe
    probe.close()


def note_ons(probe, since: float = 0.0) -> list[tuple[float, int]]:
    return [(t, m[1]) for t, m in probe.received if t >= since and m[0] & 0xF0 == 0x90 and m[2] > 0]


def recorded_onsets(events) -> list[tuple[float, int, int]]:
    """(logical time, channel, pitch) of each note-on a recording tap was handed."""
    return [(t, d[0] & 0x0F, d[1]) for t, d in events if d[0] & 0xF0 == 0x90 and d[2] > 0]


def arrived_onsets(probe) -> list[tuple[float, int, int]]:
    """(arrival time, channel, pitch) of each note-on the probe heard."""
    return [(t, m[0] & 0x0F, m[1]) for t, m in probe.received if m[0] & 0xF0 == 0x90 and m[2] > 0]


def unpaired(recorded: list[float], arrived: list[float], within: float = 0.05) -> tuple[list[float], list[float]]:
    """The onsets of two sorted lists that have no partner in the other within ``within`` s
    (paired in order, nearest first): what a count mismatch is made of."""
    lone_r, lone_a, j = [], [], 0
    for t in recorded:
        while j < len(arrived) and arrived[j] < t - within:
            lone_a.append(arrived[j])
            j += 1
        if j < len(arrived) and arrived[j] <= t + within:
            j += 1
        else:
            lone_r.append(t)
    return lone_r, lone_a + arrived[j:]


def pair_onsets(recorded, arrived) -> list[tuple[float, float]]:
    """Every recorded note-on paired with its arrival: by (channel, pitch), in order.

    A note recorded and never heard, or heard and never recorded, fails here: a timing
    figure over the notes that happened to arrive would hide exactly those."""
    by_key: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    for t, ch, pitch in recorded:
        by_key.setdefault((ch, pitch), ([], []))[0].append(t)
    for t, ch, pitch in arrived:
        by_key.setdefault((ch, pitch), ([], []))[1].append(t)
    wrong = {key: (sorted(r), sorted(a)) for key, (r, a) in by_key.items() if len(r) != len(a)}
    if wrong:  # name the notes left over, and when: seconds from the last recorded note-on
        last = max((t for t, _, _ in recorded), default=0.0)
        told = []
        for (ch, pitch), (r, a) in sorted(wrong.items()):
            lone_r, lone_a = unpaired(r, a)
            told.append(f"channel {ch + 1} pitch {pitch} ({len(r)} recorded, {len(a)} arrived): recorded only "
                        f"{[round(t - last, 3) for t in lone_r]}, arrived only {[round(t - last, 3) for t in lone_a]}")
        raise AssertionError(f"{len(recorded)} note-ons recorded, {len(arrived)} arrived; in s from the last "
                             "recorded note-on: " + "; ".join(told))
    return [(t, arrival) for r, a in by_key.values() for t, arrival in zip(sorted(r), sorted(a))]


class Performer:
    """Types lines into the REPL and waits until each one has been evaluated."""

    def __init__(self, pipe, repl) -> None:
        self.pipe, self.repl = pipe, repl

    async def type(self, text: str, timeout: float = 30.0) -> None:
        before = self.repl.evaluator.count
        self.pipe.send_text(text + "\r")
        deadline = time.monotonic() + timeout
        while self.repl.evaluator.count == before:
            assert time.monotonic() < deadline, f"the REPL did not evaluate {text!r}"
            await asyncio.sleep(0.01)


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def play(monkeypatch, tmp_path, script) -> None:
    """Run the REPL over a fresh Session while ``script(performer, session)`` types into it."""
    from livernn.engine import Session

    monkeypatch.setenv("LIVERNN_MIDI_API", "jack")
    monkeypatch.setenv("LIVERNN_HISTORY", str(tmp_path / "history"))

    async def main() -> None:
        session = Session(bpm=120.0)
        session.start()
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            repl = make_repl(session)
            task = asyncio.ensure_future(run_repl(repl, use_patch_stdout=False))
            await script(Performer(pipe, repl), session)
            pipe.send_text("\x04")
            assert await asyncio.wait_for(task, 15) == 0

    asyncio.run(main())


def test_typed_lines_load_play_retune_swap_and_panic(jack, midi_probe, monkeypatch, tmp_path, capsys):
    model = default_model_path()

    async def script(me: Performer, session) -> None:
        await me.type(f"m = load({str(model)!r})")
        await me.type(f"lead = voice('lead', model=m, out=midi({midi_probe.client!r}))")
        await wait_until(lambda: len(note_ons(midi_probe)) >= 4, 10, "the first notes")

        await me.type("lead.temperature = 1.4; lead.pitch_min = 60; lead.pitch_max = 72")
        assert session.voices["lead"].params.temperature == 1.4
        changed = time.monotonic() + 0.3  # one lookahead plus margin: older notes were already out
        await wait_until(lambda: len(note_ons(midi_probe, changed)) >= 4, 10, "notes after the change")
        assert all(60 <= p <= 72 for _, p in note_ons(midi_probe, changed))

        await me.type("lead.temperature = 99")
        assert session.voices["lead"].params.temperature == 1.4  # refused, nothing changed

        swaps = []
        session.on("swap", lambda *event: swaps.append(event))
        await me.type(f"await swap(lead, {str(model)!r}, at='bar')")
        assert swaps and swaps[0][0] == "lead"
        swapped = time.monotonic()
        await wait_until(lambda: len(note_ons(midi_probe, swapped)) >= 2, 10, "notes from the new model")

        # mute first and let the lookahead drain, so no note generated before the mute lands after panic
        await me.type("mute(lead); await asyncio.sleep(0.3); panic()")
        panicked = time.monotonic()
        await asyncio.sleep(0.5)
        assert midi_probe.note_balance() == {}
        assert note_ons(midi_probe, panicked + 0.2) == []  # muted: silence after the lookahead
        await me.type("unmute(lead)")
        resumed = time.monotonic()
        await wait_until(lambda: len(note_ons(midi_probe, resumed)) >= 2, 10, "notes after unmute")

    play(monkeypatch, tmp_path, script)
    out = capsys.readouterr().out
    assert "error: temperature must be in 0.05..5, got 99" in out
    assert "Traceback" not in out
    time.sleep(0.2)  # JACK delivers in periods
    assert midi_probe.note_balance() == {}  # Ctrl-D ended every note


def quantiles(errors: list[float]) -> dict[str, float]:
    ordered = sorted(abs(e) for e in errors)
    pick = lambda q: 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "median": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": pick(1.0)}


def window_figures(pairs: list[tuple[float, float]], windows: dict[str, tuple[float, float]],
                   label: str, capsys) -> dict[str, dict[str, float]]:
    """|arrival - onset| figures over every note whose logical onset falls in each window."""
    figures = {}
    for name, (start, end) in windows.items():
        errors = [arrival - t for t, arrival in pairs if start <= t <= end]
        assert len(errors) >= MIN_NOTES, f"{name} window: only {len(errors)} notes"
        figures[name] = quantiles(errors)
    with capsys.disabled():
        for name, f in figures.items():
            print(f"\n{label}, {name} prompt: |onset error| over all {f['n']} notes: median {f['median']:.3f} ms, "
                  f"p90 {f['p90']:.3f} ms, p99 {f['p99']:.3f} ms, max {f['max']:.3f} ms")
    return figures


def test_a_busy_loop_at_the_prompt_does_not_move_notes(jack, midi_probe, monkeypatch, tmp_path, capsys):
    """6 s of pure-Python work typed at the prompt vs 6 s idle at the prompt, same show (the
    issue's measurement: density 3, some 250 notes a window).

    Every note-on handed to a recording tap is paired with its arrival at the probe (none
    missing, none extra), and the 99th percentile of |arrival - onset| stays under the
    fixed bound in both windows."""
    from livernn.outputs import file_recorder

    windows: dict[str, tuple[float, float]] = {}
    tap = file_recorder(tmp_path / "tap.mid")

    async def script(me: Performer, session) -> None:
        session.add_tap(tap)
        await me.type(f"lead = voice('lead', out=midi({midi_probe.client!r}), density=3)")
        await wait_until(lambda: len(note_ons(midi_probe)) >= 4, 10, "the first notes")
        start = time.monotonic()
        await asyncio.sleep(BUSY_S)
        windows["idle"] = (start, time.monotonic())
        await me.type("import time; t0 = time.monotonic()")
        await me.type(f"while time.monotonic() - t0 < {BUSY_S}:\r    pass\r")
        t0 = me.repl.namespace["t0"]
        windows["busy"] = (t0, t0 + BUSY_S)
        await me.type("mute(lead)")  # let every note handed over play out before the end
        await asyncio.sleep(1.0)

    play(monkeypatch, tmp_path, script)
    time.sleep(0.2)
    pairs = pair_onsets(recorded_onsets(tap.events), arrived_onsets(midi_probe))
    figures = window_figures(pairs, windows, "in-process", capsys)
    import json
    import os
    if os.environ.get("LVDUMP"):
        with open(os.environ["LVDUMP"], "w") as dump:
            json.dump({"pairs": pairs, "windows": windows}, dump)
    assert figures["idle"]["p99"] <= ONSET_P99_BOUND_MS, figures
    assert figures["busy"]["p99"] <= ONSET_P99_BOUND_MS, figures


PATCH = """
version = 1
name = "takeover"
scene = "calm"

[clock]
bpm = 150

[models]
bach = "default"

[outputs.synth]
type = "midi"
port = "{port}"

[voices.lead]
model = "bach"
params = {{ density = 2, temperature = 0.7 }}

[scenes.calm]
lead = {{ temperature = 0.6 }}

[scenes.wild]
lead = {{ temperature = 1.6, density = 3 }}
"""


def test_a_show_started_from_a_patch_is_taken_over_at_the_prompt(jack, midi_probe, monkeypatch, tmp_path, capsys):
    """``livernn repl PATCH``: built like ``perform`` does (Show), then played by typing."""
    from livernn.patch import open_show

    patch = tmp_path / "takeover.toml"
    patch.write_text(PATCH.format(port=midi_probe.client))
    monkeypatch.setenv("LIVERNN_MIDI_API", "jack")
    monkeypatch.setenv("LIVERNN_HISTORY", str(tmp_path / "history"))

    async def main() -> None:
        show = await open_show(patch, report=print)  # as `livernn repl PATCH` reports reloads
        session = show.session
        assert session.tempo == 150 and session.voices["lead"].temperature == 0.6  # the patch's scene
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            repl = make_repl(session, show.runtime)
            task = asyncio.ensure_future(run_repl(repl, show, use_patch_stdout=False))
            me = Performer(pipe, repl)
            await wait_until(lambda: len(note_ons(midi_probe)) >= 4, 10, "the patch's notes")
            await me.type("scene('wild'); lead.temperature")  # the patch's voice, by name
            assert session.voices["lead"].density == 3
            await me.type("bass = voice('bass', out='synth', channel=2, density=2)")  # its output, by name
            await wait_until(lambda: any(m[0] == 0x91 for m in midi_probe.messages()), 10, "channel 2 notes")
            patch.write_text(PATCH.format(port=midi_probe.client).replace("bpm = 150", "bpm = 90"))
            await wait_until(lambda: session.tempo == 90, 10, "the saved patch to be applied")
            pipe.send_text("\x04")
            assert await asyncio.wait_for(task, 15) == 0

    asyncio.run(main())
    out = capsys.readouterr().out
    assert "1.6" in out and "reloaded" in out
    settle_until = time.monotonic() + 2
    while time.monotonic() < settle_until and midi_probe.note_balance():
        time.sleep(0.1)
    assert midi_probe.note_balance() == {}

"""The deadline heap and the thread that sends: every note on time, none left hanging.

How deadlines are kept, chosen by measurement (bench/bench_timing.py; jackd -S dummy,
48 kHz, 32-frame periods = 0.67 ms; probe in another process; a 2-core machine that
other jobs kept at load 3-15). |arrival - logical time| in ms, p50 / p99, 200 notes:

    sender                                   idle process     busy pure-Python thread
    naive: sleep to deadline, switch 5 ms    0.68 / 1.86      6.03 / 11.50
    this thread: sleep, spin last 1.5 ms,    0.75 / 10.6      1.17 / 7.11
      switch interval 0.2 ms
    the same at SCHED_FIFO                   0.44 / 0.82      0.51 / 1.73
    + MIDI sender process (the default)      0.16 / 0.47      0.19 / 0.51

- The sender thread owns the heap; it never waits on generation, asyncio or the REPL. It
  sleeps (``Condition.wait``, GIL released) until ``spin`` before the next deadline, then
  spins on ``time.monotonic()`` and hands the event to its output. It spins only where
  the deadline is the event's own: an output with a ``latency`` (the MIDI sender process,
  timestamped OSC) is handed its events early and keeps time itself, and the recorder
  (not ``punctual``) writes logical times, so when it gets an event does not matter.
- The GIL is the enemy: a thread that wants it waits up to ``sys.getswitchinterval()``
  (5 ms by default) for a busy thread to let go, so the session lowers the interval to
  ``SWITCH_INTERVAL`` while it plays. The OS is the other: on a loaded machine a normal
  thread is descheduled for milliseconds, so the engine's threads ask for SCHED_FIFO
  (below JACK's priorities) where allowed. Both together still miss 1 ms under load: when
  the OS preempts a *normal* thread that holds the GIL (the REPL user's), every thread of
  the process waits for it.
- So MIDI leaves from a sender process (livernn/outputs/midi_process.py, midi_sender.py),
  its own interpreter and GIL: this scheduler hands each MIDI message over 50 ms early
  (the output's ``latency``), exactly as it hands timestamped OSC bundles over early, and
  the process sends it at the deadline (half a JACK period early, which centres JACK's
  period-quantised delivery). The in-process path (``midi(..., process=False)``) remains.

Every note-on is scheduled together with its note-off. The open-note registry (per output,
channel and pitch) decides what a note-off may end: a note retriggered on the same pitch
ends the older one first, so no note-off ever ends the wrong note and none is left open.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from livernn.outputs.base import Output
from livernn.realtime import REALTIME_PRIORITY, make_realtime

SPIN = 0.0015  # seconds before a deadline at which the sender stops sleeping and spins
SWITCH_INTERVAL = 2e-4  # sys.setswitchinterval while playing (default 5e-3)
# A not-punctual output's events are queued this much after their deadline, so that one at
# the same time as a punctual output's never comes first and makes the sender wake unspun.
AFTER = 1e-6
ON, OFF = 0, 1


@dataclass(eq=False, slots=True)
class Note:
    """One scheduled note: its logical times and where it goes."""

    voice: str
    channel: int
    pitch: int
    velocity: int
    t_on: float
    t_off: float
    outputs: tuple[Output, ...]
    epoch: int = 0  # which of the voice's models made it (a swap starts a new epoch)
    cancelled: bool = False  # ended before it started: its note-on is never sent
    sent: bool = False  # an output has had its note-on (maybe handed over early); it will sound


class Scheduler:
    """A heap of (send time, seq, kind, payload, output) served by one sender thread."""

    def __init__(self, spin: float = SPIN, on_error: Callable[[str], None] | None = None,
                 realtime: bool = True) -> None:
        self.spin = spin
        self.want_realtime = realtime
        self.realtime = False  # whether the sender thread got SCHED_FIFO
        self.on_error = on_error or (lambda message: None)
        self._cond = threading.Condition()
        self._heap: list = []
        self._seq = itertools.count()
        self._open: dict[tuple[Output, int, int], Note] = {}
        self._thread: threading.Thread | None = None
        self._running = False
        self.lateness: deque[float] = deque(maxlen=4096)  # send time - deadline, for status()
        # Latency compensation: seconds added to every time an output is handed (negative =
        # earlier, for a device that sounds late). Replaced whole, read without a lock.
        self.offsets: dict[Output, float] = {}
        self._failing: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._run, name="livernn-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._thread = None

    # -- scheduling (any thread) -----------------------------------------------------
    def _push(self, send_at: float, kind: int, payload, output: Output) -> None:
        item = (send_at, next(self._seq), kind, payload, output)
        heapq.heappush(self._heap, item)
        if self._heap[0] is item:
            self._cond.notify()

    def _shift(self, out: Output) -> float:
        """From an event's logical time to when ``out`` is handed it: its latency offset, less
        its latency (handed over early), plus ``AFTER`` for an output that is not punctual."""
        return self.offsets.get(out, 0.0) - out.latency + (0.0 if out.punctual else AFTER)

    def schedule_note(self, note: Note) -> None:
        """Hand a note to every one of its outputs: note-on and note-off, both at birth."""
        with self._cond:
            for out in note.outputs:
                shift = self._shift(out)
                self._push(note.t_on + shift, ON, note, out)
                self._push(note.t_off + shift, OFF, note, out)

    def end_notes(self, match: Callable[[Note], bool], t: float | None = None) -> int:
        """End matching notes at ``t`` (default now). A note already sounding gets an early
        note-off; one not started yet is cancelled, unless an output already has its note-on
        (handed over early: the MIDI sender process, a timestamped bundle): then it is played
        for 1 ms on every output, recorder included, so what is recorded is what was sent.
        Returns how many notes were affected."""
        t = time.monotonic() if t is None else t
        count = 0
        with self._cond:
            notes = {item[3] for item in self._heap if match(item[3])}
            notes |= {n for n in self._open.values() if match(n)}
            for note in notes:
                if note.cancelled or note.t_off <= t:
                    continue
                count += 1
                if note.t_on < t:
                    note.t_off = t
                    targets = note.outputs
                elif note.sent:
                    # An output already has its note-on (handed over early): it will sound,
                    # so it sounds everywhere, for a millisecond. Cancelling it for the rest
                    # left the recording short of notes the synth played (293 arrived for
                    # 288 recorded, issue 12). ``sent``, not the open-note registry: a note
                    # of the same pitch handed over after it has taken its place there.
                    note.t_off = note.t_on + 1e-3
                    targets = note.outputs
                else:
                    note.cancelled = True
                    note.t_off = note.t_on + 1e-3
                    targets = []
                for out in targets:
                    self._push(note.t_off + self._shift(out), OFF, note, out)
        return count

    def panic(self, outputs: Iterable[Output] = (), all_notes_off: bool = True) -> None:
        """Drop every pending note, end every open one now, then (``all_notes_off``) CC 123/120
        on every output involved and on ``outputs``. A note an output already has (handed over
        early) plays for 1 ms on all of its outputs, as in ``end_notes``. Runs in the caller's
        thread, so it works with the sender stopped too."""
        now = time.monotonic()
        with self._cond:
            outputs = {item[4] for item in self._heap} | {key[0] for key in self._open} | set(outputs)
            # A note whose note-on an output already has (handed over early: the MIDI sender
            # process, a timestamped bundle) sounds whatever happens here, so its outputs
            # that have not had it yet, the recorder among them, get it now and end it below
            # with the rest: what is recorded is what was sent. Dropped instead, a show
            # stopped or panicked with a note at the sender lost it from the recording. (Not
            # the open-note registry's notes: a chord's two notes of one pitch are both sent,
            # and the second takes the first's place there: 11 recorded for 12 heard.)
            for item in sorted(self._heap):
                if item[2] == ON and item[3].sent:
                    self._dispatch(ON, item[3], item[4])
            for item in self._heap:
                item[3].cancelled = True
            self._heap = []
            for (out, channel, pitch), note in list(self._open.items()):
                # After its own note-on, which an output with an offset got at t_on + offset.
                on_at = note.t_on + self.offsets.get(out, 0.0)
                self._call(out, out.note_off, channel, pitch, max(now, on_at + 1e-3))
            self._open.clear()
        if all_notes_off:
            for out in outputs:
                self._call(out, out.all_notes_off)

    def open_notes(self) -> list[Note]:
        with self._cond:
            return list(self._open.values())

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    # -- the sender thread -----------------------------------------------------------
    def _run(self) -> None:
        if self.want_realtime:
            self.realtime = make_realtime(REALTIME_PRIORITY)
        cond, heap, clock = self._cond, self._heap, time.monotonic
        while True:
            with cond:
                heap = self._heap
                if not self._running:
                    return
                if not heap:
                    cond.wait(0.1)
                    continue
                due = heap[0][0]
                # Spin only for a deadline that is the event's own: an output that takes its
                # messages ahead (the MIDI sender process, timestamped OSC) keeps time itself,
                # one that is not punctual (the recorder) needs no time at all, and a spinning
                # real-time thread here, holding the GIL, only takes a CPU from the one that
                # keeps time and the GIL from every other thread (a 2-core machine has no third).
                out = heap[0][4]
                spin = self.spin if out.latency < self.spin and out.punctual else 0.0
                wait = due - clock() - spin
                if wait > 0:
                    cond.wait(wait)
                    continue
            while clock() < due:  # the last stretch: spin, holding the GIL
                pass
            with cond:
                heap = self._heap
                now = clock()
                while heap and heap[0][0] <= now:
                    send_at, _, kind, payload, out = heapq.heappop(heap)
                    self._dispatch(kind, payload, out)
                    self.lateness.append(clock() - send_at)

    def _dispatch(self, kind: int, payload, out: Output) -> None:
        shift = self.offsets.get(out, 0.0)
        note: Note = payload
        key = (out, note.channel, note.pitch)
        if kind == ON:
            if note.cancelled:
                return
            note.sent = True
            previous = self._open.get(key)
            if previous is not None:  # same pitch retriggered: end the older note first
                self._call(out, out.note_off, note.channel, note.pitch, note.t_on + shift)
            self._open[key] = note
            self._call(out, out.note_on, note.channel, note.pitch, note.velocity, note.t_on + shift,
                       note.t_off - note.t_on)
        elif self._open.get(key) is note:
            del self._open[key]
            self._call(out, out.note_off, note.channel, note.pitch, note.t_off + shift)

    def _call(self, out: Output, method, *args) -> None:
        try:
            method(*args)
        except Exception as exc:  # one broken output must not stop the others
            out.errors += 1
            out.last_error = str(exc)
            if id(out) not in self._failing:
                self._failing.add(id(out))
                self.on_error(f"output {out.describe()}: {type(exc).__name__}: {exc}")


def set_switch_interval(seconds: float | None) -> float:
    """Set the interpreter's GIL switch interval; returns the previous value."""
    previous = sys.getswitchinterval()
    if seconds is not None:
        sys.setswitchinterval(seconds)
    return previous

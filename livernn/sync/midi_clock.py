"""MIDI clock in: follow an external clock (0xF8 at 24 per quarter, Start/Stop/Continue, SPP).

The port: an rtmidi input on the API the outputs chose (JACK where it runs) with timing
messages let through (``ignore_types(timing=False)``; rtmidi drops them by default). A port
whose name contains NAME is connected to; otherwise a virtual input NAME is made for the
clock to be patched to.

Times: rtmidi stamps each message in its own (JACK) thread, so the deltas between ticks do
not depend on when Python runs the callback. The sum of deltas is put on the monotonic
clock with the smallest (arrival - sum) seen, i.e. the callback that ran soonest.

Tempo: ``TempoFilter``, a least-squares line through the last ticks (tick index -> time),
over up to ``WINDOW`` ticks (two bars of 4/4: JACK's period-quantised arrivals, +-0.33 ms at
32 frames, average out to a few hundredths of a BPM). When ``BREAK`` ticks in a row land
off the line by more than ``JUMP`` (and all on the same side), the source changed tempo:
the window restarts from those ticks, so a change is followed within a beat while jitter
alone never restarts it. Once locked (a beat of ticks in the fit), a tick off the line is
held out of the fit until ``BREAK`` in a row make it a tempo change: a source preempted for a
few ms sends one late tick, which would otherwise tilt the line by hundredths of a BPM.

Phase: Start = beat 0 at the first tick after it; Song Position Pointer (16ths) sets the
beat of the next Continue; Stop holds the transport (the session's voices stop; the clock
keeps the last tempo). A clock that goes missing (no tick for ``MISSING`` s while running)
keeps the last tempo, and says so once.

Run check (JACK): the clock's client is checked and healed as a MIDI input's is
(``livernn.controls.midi_in_check``): after each 0.1 s in which it heard nothing, a ping
client sends ``0xFD`` into its port, and a client found deaf is replaced, its sources moved
to the new port, with one line through ``report``. There are no pings while the clock
ticks; a ping (or any 0xFD) adds its delta to the time stamps and is otherwise ignored. The
new client's messages start a new time base (rtmidi's first delta is 0), so the fit starts
again from its ticks (a hard follow): the ticks that went into the deaf client are lost,
as a clock joined while running, the beat follows from the first tick heard. The same
switches as an input's: ``LIVERNN_MIDI_HEAL=0``, ``LIVERNN_MIDI_CHECK=0``,
``LIVERNN_MIDI_IN_FAULT=deaf``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from livernn.controls.midi_in_check import EVERY as CHECK_EVERY
from livernn.controls.midi_in_check import CheckedInput, sources
from livernn.errors import LivernnError

PPQ = 24
WINDOW = 192  # ticks in the tempo fit at most (two bars of 4/4)
JUMP = 0.0012  # seconds off the line that count as a tempo change (when BREAK in a row)
BREAK = 6  # a delayed callback is a bump that returns; a tempo change keeps growing
MISSING = 0.5  # seconds without a tick (while running) before the clock counts as missing
TICK, START, CONTINUE, STOP, SPP = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2


class TempoFilter:
    """Straight-line fit of tick times; ``add(k, t)`` returns (fitted time of tick k, seconds per tick)."""

    def __init__(self, window: int = WINDOW, jump: float = JUMP, brk: int = BREAK,
                 hold_after: int = PPQ) -> None:
        self.window, self.jump, self.brk = window, jump, brk
        self.ticks: deque[tuple[int, float]] = deque(maxlen=window)
        self._off: list[float] = []  # residuals of the last ticks beyond ``jump``
        self.held: deque[tuple[int, float]] = deque(maxlen=brk)  # the last ticks, fitted or not
        self.hold_after = hold_after
        self.period: float | None = None
        self._fit: tuple[float, float, int] | None = None  # (time at k0, period, k0)
        self.restarts = 0

    def reset(self) -> None:
        self.ticks.clear()
        self.held.clear()
        self._off = []
        self._fit = None

    def predict(self, k: int) -> float | None:
        if self._fit is None:
            return None
        t0, period, k0 = self._fit
        return t0 + (k - k0) * period

    def add(self, k: int, t: float) -> tuple[float, float] | None:
        guess = self.predict(k)
        if guess is not None and len(self.ticks) >= 2 * self.brk:
            residual = t - guess
            if abs(residual) > self.jump and (not self._off or ((residual > 0) == (self._off[-1] > 0)
                                                                and abs(residual) >= abs(self._off[-1]))):
                self._off.append(residual)
            else:
                self._off = []
            if len(self._off) >= self.brk:  # the source changed tempo: start from these ticks
                kept = list(self.held)[-(self.brk - 1):]
                self.ticks.clear()
                self.ticks.extend(kept)
                self._off = []
                self.held.clear()
                self.restarts += 1
            elif self._off and len(self.ticks) >= self.hold_after:
                # Off the line once locked: a late tick (a preempted source, a late period) is
                # held out of the fit until it proves to be a tempo change.
                self.held.append((k, t))
                return self._fitted(k)
        self.held.append((k, t))
        self.ticks.append((k, t))
        if len(self.ticks) < 2:
            return None
        ks = np.fromiter((x[0] for x in self.ticks), float, len(self.ticks))
        ts = np.fromiter((x[1] for x in self.ticks), float, len(self.ticks))
        k0, t_mean = ks.mean(), ts.mean()
        dk = ks - k0
        period = float((dk * (ts - t_mean)).sum() / (dk * dk).sum())
        if not period > 0:
            return None
        self.period = period
        self._fit = (t_mean, period, k0)
        return t_mean + (k - k0) * period, period

    def _fitted(self, k: int) -> tuple[float, float] | None:
        guess = self.predict(k)
        return None if guess is None or self.period is None else (guess, self.period)


class MidiClockIn(CheckedInput):
    """A clock source following MIDI clock on a named input port."""

    def __init__(self, port: str, report: Callable[[str], None],
                 on_transport: Callable[[bool], None] | None = None) -> None:
        import rtmidi

        from livernn.midi_system import API_NAMES, choose_api, match_port

        if not port or any(c in port for c in "\n\0"):
            raise LivernnError(f"MIDI clock in: give a port name, got {port!r}")
        self.report = report
        self.on_transport = on_transport
        self.api = choose_api()
        names = sources(self.api)  # ports we receive from: a source's output
        found = match_port(names, port, "MIDI clock in")  # one line when the name fits two sources
        match = names[found] if found is not None else None
        self.port = match or port
        self._virtual = match is None
        self.name = f"midi:{port}"
        self.label = f"MIDI clock in {self.port}"
        self._clock = None
        self._lock = threading.Lock()
        self.jack_port: str | None = None  # our port's full JACK name
        self._listening = False  # started: a new client listens at once
        self._serial = 0  # the number of the newest client's callback (its rtmidi data)
        self._current = -1  # the number of the client in use: another's messages are dropped
        self._init_check()  # healed, pings, last_error: see midi_in_check.CheckedInput
        try:
            self._rt = self._open()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError, ValueError) as exc:
            raise LivernnError(f"MIDI clock in {port!r}: cannot open on "
                               f"{API_NAMES.get(self.api, self.api)} ({exc})") from None
        self.filter = TempoFilter()
        self._stamp = 0.0  # sum of rtmidi's deltas
        self._offset: float | None = None  # monotonic - stamp (the smallest seen)
        self.running = False
        self._k = 0  # ticks since Start, plus the song position's
        self._beat0 = 0.0  # beat at tick 0
        self._hard = False
        self._last_tick: float | None = None
        self.missing = False
        self.ticks = 0
        self.locked_at: float | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def _open(self):
        """A new client with our port (virtual, or connected to the source); on JACK
        ``jack_port`` becomes its port's full name. Once started, it listens at once."""
        rt = self._new_client("livernn-clock", self.port, "clock", sysex=False, queue_size_limit=4096)
        if self._listening:  # a replacement, once started
            self._serial += 1
            self._listen(rt, self._on_message, self._serial)
        return rt

    def _use(self, rt) -> None:
        """Follow ``rt`` (the newest client) from now on, from a new time base and fit."""
        with self._lock:
            self._rt = rt
            self._current = self._serial
            self._stamp, self._offset = 0.0, None
            self.filter.reset()
            self._hard = True

    def _say(self, message: str) -> None:
        self.last_error = message
        self.report(message)

    # -- the port's thread -----------------------------------------------------------
    def _on_message(self, event, serial=None) -> None:
        message, delta = event
        now = time.monotonic()
        with self._lock:
            if serial != self._current:
                return  # a client replaced (or one not yet in use): its deltas are another time base
            self._stamp += delta  # a ping's too: its delta is time that passed
            offset = now - self._stamp
            if self._offset is None or offset < self._offset:
                self._offset = offset
            if self._heard(message):
                return  # the run check's ping (livernn.controls.midi_in_check)
            t = self._stamp + self._offset
            status = message[0] if message else 0
            if status == TICK:
                self._tick(t)
            elif status == START:
                self._transport(True, 0)
            elif status == CONTINUE:
                self._transport(True, self._k)
            elif status == STOP:
                self.running = False
                self._report_transport(False)
            elif status == SPP and len(message) == 3:
                self._k = (message[1] | message[2] << 7) * (PPQ // 4)  # 16ths -> ticks
                self.filter.reset()

    def _transport(self, running: bool, k: int) -> None:
        self._k = k
        self.running = running
        self._hard = True
        self.filter.reset()
        self._report_transport(running)

    def _report_transport(self, running: bool) -> None:
        if self.on_transport is not None:
            self.on_transport(running)

    def _tick(self, t: float) -> None:
        self.ticks += 1
        self._last_tick = t
        if self.missing:
            self.missing = False
            self.report(f"MIDI clock on {self.port} is back")
        if not self.running:
            # Ticks without Start (a clock already running when we joined): follow them anyway.
            self.running = True
            self._hard = True
            self._report_transport(True)
        k = self._k
        self._k += 1
        fit = self.filter.add(k, t)
        if fit is None or self._clock is None or len(self.filter.ticks) < BREAK:
            return
        t_fit, period = fit
        if self.locked_at is None and len(self.filter.ticks) >= PPQ:
            self.locked_at = t
        self._clock.follow(t_fit, k / PPQ, 60.0 / (PPQ * period), hard=self._hard)
        self._hard = False

    def _watch(self) -> None:
        from livernn.midi_system import jack_server_id

        while not self._stop.wait(CHECK_EVERY):
            if self._check is not None and jack_server_id() == self._jack:
                self._look(time.monotonic())
            last = self._last_tick
            if self.running and last is not None and not self.missing and time.monotonic() - last > MISSING:
                self.missing = True
                self.report(f"MIDI clock on {self.port} went missing; keeping {self.bpm:.2f} BPM")

    # -- the source interface --------------------------------------------------------
    @property
    def bpm(self) -> float | None:
        period = self.filter.period
        return None if period is None else 60.0 / (PPQ * period)

    def start(self, clock) -> None:
        self._clock = clock
        self._listening = True
        self._serial += 1
        self._listen(self._rt, self._on_message, self._serial)
        self._use(self._rt)
        if self._watcher is None:
            self._start_check()
            self._watcher = threading.Thread(target=self._watch, name="livernn-clock-in", daemon=True)
            self._watcher.start()

    def set_tempo(self, bpm: float) -> None:
        raise LivernnError(f"the tempo follows the MIDI clock on {self.port}; sync('internal') to set it here")

    def status(self) -> dict:
        bpm = self.bpm
        return {"source": self.name, "port": self.port, "running": self.running, "missing": self.missing,
                "tempo": None if bpm is None else round(bpm, 3), "ticks": self.ticks}

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(1.0)
        try:
            self._close_clients()  # kept unclosed where the JACK server is gone
        except Exception:  # nothing left to close
            pass

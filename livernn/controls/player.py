"""A player's notes and pedals, from MIDI or OSC, handed to listening policies.

An input's own thread (rtmidi's callback runs inside JACK's process cycle; python-osc's
server thread) only timestamps a message and queues it: the policies' work (a model step
for each companion in follow mode) runs on this feed's thread, at real-time priority
where the OS allows, so a JACK period is never held up by Python and a companion still
leaves within about a millisecond. A policy is anything with ``note_on(pitch, velocity,
t)``, ``note_off(pitch, t)`` and ``control(cc, value, t)`` (livernn.engine.listen.Listening).

OSC: ``/livernn/note pitch velocity [channel]`` (velocity 0 = release) and
``/livernn/cc number value [channel]`` on an ``OscIn`` (``feed.listen_osc(osc)``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

NOTE_ON, NOTE_OFF, CONTROL = 0, 1, 2
PRIORITY = 4  # SCHED_FIFO, below the engine's sender (5) and JACK's clients


class PlayerFeed:
    """One queue and one thread between inputs and the policies listening to them."""

    def __init__(self) -> None:
        self._players: list[tuple[Any, int]] = []  # (policy, channel 1..16 or 0 = any), swapped whole
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.received = 0
        self._osc: list[tuple[Any, Callable[[], None]]] = []  # (OscIn, unhook): each taken once
        self._thread = threading.Thread(target=self._run, name="livernn-player", daemon=True)
        self._thread.start()

    @property
    def players(self) -> list[Any]:
        return [p for p, _ in self._players]

    def add(self, policy: Any, channel: int = 0) -> None:
        self._players = [*[(p, c) for p, c in self._players if p is not policy], (policy, channel)]

    def remove(self, policy: Any) -> None:
        self._players = [(p, c) for p, c in self._players if p is not policy]

    def note(self, channel: int, pitch: int, velocity: int, t: float | None = None) -> None:
        """Any thread: a note-on (velocity > 0) or note-off, channel 1..16."""
        t = time.monotonic() if t is None else t
        kind = NOTE_ON if velocity > 0 else NOTE_OFF
        self._queue.put((kind, channel, int(pitch), int(velocity), t))

    def control(self, channel: int, cc: int, value: int, t: float | None = None) -> None:
        self._queue.put((CONTROL, channel, int(cc), int(value), time.monotonic() if t is None else t))

    def listen_osc(self, osc: Any) -> Callable[[], None]:
        """Take the player's notes from an ``OscIn`` (see the module's docstring); returns
        the function that stops taking them. Asked again for the same input (a second voice
        listening to it), the feed does not take its notes twice."""
        for hooked, unhook_it in self._osc:
            if hooked is osc:
                return unhook_it

        def number(args: tuple, i: int, lo: int, hi: int, default: int | None = None) -> int | None:
            value = args[i] if i < len(args) else default
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                return None
            value = int(value)
            return value if lo <= value <= hi else None

        def on_note(_address: str, *args: Any) -> None:
            pitch, vel, ch = number(args, 0, 0, 127), number(args, 1, 0, 127), number(args, 2, 1, 16, 1)
            if pitch is None or vel is None or ch is None:
                osc.warn(f"/livernn/note needs pitch 0..127, velocity 0..127 [, channel 1..16], got {args!r}")
                return
            self.note(ch, pitch, vel)

        def on_cc(_address: str, *args: Any) -> None:
            cc, value, ch = number(args, 0, 0, 127), number(args, 1, 0, 127), number(args, 2, 1, 16, 1)
            if cc is None or value is None or ch is None:
                osc.warn(f"/livernn/cc needs number 0..127, value 0..127 [, channel 1..16], got {args!r}")
                return
            self.control(ch, cc, value)

        osc.on("/livernn/note", on_note)
        osc.on("/livernn/cc", on_cc)

        def unhook() -> None:
            osc.off("/livernn/note", on_note)
            osc.off("/livernn/cc", on_cc)
            self._osc = [(o, u) for o, u in self._osc if o is not osc]

        self._osc = [*self._osc, (osc, unhook)]
        return unhook

    def close(self) -> None:
        self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _run(self) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
        except (AttributeError, OSError):
            pass  # not allowed here: normal priority
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, channel, a, b, t = item
            self.received += 1
            for policy, wanted in self._players:
                if wanted and wanted != channel:
                    continue
                try:
                    if kind == NOTE_ON:
                        policy.note_on(a, b, t)
                    elif kind == NOTE_OFF:
                        policy.note_off(a, t)
                    else:
                        policy.control(a, b, t)
                except Exception as exc:  # one policy's failure must not silence the others
                    report = getattr(getattr(policy, "voice", None), "session", None)
                    if report is not None:
                        report._error(f"listening: {type(exc).__name__}: {exc}")

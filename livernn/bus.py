"""The control bus: named sources with their latest value and time.

A neutral module: the engine holds a bus (``Session.bus``) and the controls publish to it,
so neither has to import the other (``livernn.controls.bus`` is the same module's name
for the controls side).

Writers (OSC in, MIDI in, gestures, automation, the REPL) call ``publish``; readers
subscribe to a name or a glob pattern (``hand.*.pinch``). Like python-osc's dispatcher, the
bus knows nothing of who writes: a source is just a name. Values are floats (or short
strings for discrete gestures); a non-finite float is dropped here, at the door, so no
subscriber ever sees NaN or inf.

Threads: ``publish`` runs the callbacks on the publisher's own thread, at once (no queue,
no hop: a fader reaches its voice within the publish call). Several threads publish at
the same time, so a subscriber must be safe from any thread (the runtime's bindings
are, see ``livernn.controls.runtime``). The latest-value table is a dict whose single
assignment is atomic; subscription lists are copied on change and swapped whole, so a
publish walks a list nobody mutates. ``dropped``/``errors`` are plain counters.
"""

from __future__ import annotations

import fnmatch
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Value = float | str
Callback = Callable[[str, Value, float], None]


@dataclass(frozen=True, slots=True)
class Reading:
    value: Value
    time: float  # time.monotonic() of the publish


class ControlBus:
    """Latest value per source, plus subscriptions by exact name or glob pattern."""

    def __init__(self) -> None:
        self._latest: dict[str, Reading] = {}
        self._exact: dict[str, list[Callback]] = {}
        self._patterns: list[tuple[str, Callback]] = []
        self._lock = threading.Lock()  # guards subscription lists, not the hot read path
        self.dropped = 0  # non-finite values refused
        self.errors = 0  # subscriber callbacks that raised
        self.last_error: str | None = None

    def publish(self, name: str, value: Value, t: float | None = None) -> bool:
        """Record a value and notify subscribers; returns False if the value was refused."""
        if not isinstance(value, str):
            try:
                value = float(value)
            except (TypeError, ValueError):
                self.dropped += 1
                return False
            if not math.isfinite(value):
                self.dropped += 1
                return False
        t = time.monotonic() if t is None else t
        self._latest[name] = Reading(value, t)
        callbacks = list(self._exact.get(name, ()))
        callbacks += [cb for pattern, cb in self._patterns if fnmatch.fnmatchcase(name, pattern)]
        for cb in callbacks:
            try:
                cb(name, value, t)
            except Exception as exc:  # one bad subscriber must not starve the others
                self.errors += 1
                self.last_error = f"{name}: {type(exc).__name__}: {exc}"
        return True

    def get(self, name: str, default: Value | None = None) -> Value | None:
        reading = self._latest.get(name)
        return default if reading is None else reading.value

    def reading(self, name: str) -> Reading | None:
        return self._latest.get(name)

    def names(self) -> list[str]:
        return sorted(self._latest)

    def subscribe(self, pattern: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(name, value, t)`` on every publish matching ``pattern``.

        Returns a function that removes the subscription.
        """
        with self._lock:
            if any(ch in pattern for ch in "*?["):
                entry = (pattern, callback)
                self._patterns = [*self._patterns, entry]

                def remove() -> None:
                    with self._lock:
                        self._patterns = [e for e in self._patterns if e is not entry]

            else:
                self._exact.setdefault(pattern, [])
                self._exact[pattern] = [*self._exact[pattern], callback]

                def remove() -> None:
                    with self._lock:
                        self._exact[pattern] = [c for c in self._exact[pattern] if c is not callback]

        return remove

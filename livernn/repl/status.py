"""What the performer sees of the show: the live status line and the ``status()`` table.

Plain text, so it reads the same in a terminal, a log and a test. The toolbar is redrawn a
few times a second and must stay cheap: it reads the clock and counts notes itself
(a subscription to the session's "note" event) instead of building the full status.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from livernn.status_text import _cell, changed_params, format_status, table  # noqa: F401  (their old home)


class Toolbar:
    """``tempo 120 | bar 12:3 | 2 voices | 7.5 notes/s | late 0`` for the bottom line."""

    def __init__(self, session: Any, window: float = 2.0) -> None:
        self.session = session
        self.window = window
        self._onsets: deque[float] = deque(maxlen=4096)
        self._lock = threading.Lock()
        self._unsubscribe = session.on("note", self._on_note)

    def _on_note(self, *_event: Any) -> None:
        with self._lock:
            self._onsets.append(time.monotonic())

    def rate(self) -> float:
        """Notes per second over the last ``window`` seconds."""
        cutoff = time.monotonic() - self.window
        with self._lock:
            while self._onsets and self._onsets[0] < cutoff:
                self._onsets.popleft()
            return len(self._onsets) / self.window

    def __call__(self) -> str:
        s = self.session
        beat = s.clock.beat()
        bar, in_bar = divmod(int(beat), s.clock.beats_per_bar) if beat >= 0 else (0, 0)
        voices = list(s.voices.values())
        late = sum(v.late for v in voices)
        line = (
            f" tempo {s.tempo:g} | bar {bar + 1}:{in_bar + 1} | {len(voices)} voice(s)"
            f" | {self.rate():.1f} notes/s | late {late}"
        )
        learning = [job for job in getattr(s, "learning", ()) if job.running]  # learn(v) on its way
        if learning:
            line += " | learning " + ", ".join(f"{job.voice.name} {job.status()['seconds']:.0f} s" for job in learning)
        silent: dict[str, str] = getattr(s, "not_delivering", dict)()  # silence must not pass unnoticed
        if silent:
            line += " | NOT DELIVERING: " + ", ".join(sorted(silent))
        return line

    def close(self) -> None:
        self._unsubscribe()

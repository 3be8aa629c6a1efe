"""The one interface every output answers (isobar's): the scheduler never asks which.

``t`` is always the *logical* monotonic time of the event. ``latency`` says how far ahead
of ``t`` the scheduler hands an event over: 0 for MIDI (sent at the deadline), the OSC
latency for outputs that send timestamped bundles and let the peer play them on time.
Channels are 1..16 here; the wire form (0..15) is each output's business.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livernn.engine.clock import Clock


class Output(ABC):
    """Base class: subclasses override the ``note_on``/``note_off``/``control`` hooks."""

    kind = "output"
    latency = 0.0

    def __init__(self) -> None:
        self.clock: Clock | None = None
        self.sent = 0
        self.errors = 0
        self.last_error = ""

    def attach(self, clock: Clock) -> None:
        """Called by the session: the clock that timetags and tempo come from."""
        self.clock = clock

    @abstractmethod
    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        """Start a note at logical time ``t``; ``duration`` (s) is a hint for outputs without note-offs."""

    @abstractmethod
    def note_off(self, channel: int, pitch: int, t: float) -> None:
        """End a note at logical time ``t``."""

    def control(self, channel: int, cc: int, value: int, t: float) -> None:
        """A control change (MIDI meaning); outputs without controls ignore it."""

    def all_notes_off(self) -> None:
        """Silence everything this output may have started (after the tracked note-offs)."""

    def maintain(self) -> None:
        """Called a few times a second off the clock: reconnect, flush, and so on."""

    def close(self) -> None:
        """Release ports and sockets; closing twice is harmless."""

    def describe(self) -> str:
        return self.kind

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

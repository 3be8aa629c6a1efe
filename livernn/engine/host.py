"""What a voice needs of the session that holds it: a small host interface.

A voice schedules its notes, reads the clock and reports events; it needs nothing else of
``Session`` (which implements this protocol), so ``voice.py`` does not import
``session.py`` and the two can be read, and tested, apart (tests/test_layers.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from livernn.engine.clock import Clock
from livernn.engine.scheduler import Scheduler
from livernn.outputs.base import Output


class VoiceHost(Protocol):
    """The session as its voices see it."""

    clock: Clock
    scheduler: Scheduler
    lookahead: float  # seconds of notes kept scheduled ahead of now
    taps: tuple[Output, ...]  # outputs that get every voice's notes (recorders)

    @property
    def playing(self) -> bool:
        """Whether the session is playing (listening policies hear nothing before it starts)."""
        ...

    def emit(self, event: str, *args: Any) -> None:
        """Tell the event's subscribers (``Session.on``): "note", "swap", "error"..."""

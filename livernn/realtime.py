"""Real-time scheduling for the threads and processes that keep deadlines.

Neutral ground: the engine's sender thread and the MIDI sender process (an output) both
ask for SCHED_FIFO, and outputs may not import the engine (tests/test_layers.py).
"""

from __future__ import annotations

import os

REALTIME_PRIORITY = 5  # SCHED_FIFO priority of the senders (jackd runs at 10, its clients at 5..9)


def make_realtime(priority: int) -> bool:
    """Ask for SCHED_FIFO for the calling thread; False where the OS says no."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, OSError):
        return False

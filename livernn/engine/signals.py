"""Stop cleanly on SIGTERM and SIGHUP (and at interpreter exit): no note left hanging.

``livernn play`` installs this; the REPL and ``perform`` can too. Ctrl-C stays a
KeyboardInterrupt for the caller's ``finally``; SIGTERM/SIGHUP run ``stop`` and then
leave with ``SystemExit(128 + signal)``, so ``finally`` blocks and context managers run.
"""

from __future__ import annotations

import atexit
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


def install_stop_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """Run ``stop`` on SIGTERM/SIGHUP and at exit; returns a function that uninstalls.

    Must be called from the main thread (Python delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install_stop_handlers must be called from the main thread")
    previous = {}

    def handler(signum, _frame) -> None:
        stop()
        raise SystemExit(128 + signum)

    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    atexit.register(stop)

    def uninstall() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        atexit.unregister(stop)

    return uninstall

"""How every front end stops: SIGINT, SIGTERM, SIGHUP and interpreter exit, handled once.

``livernn play``, ``livernn perform`` and the REPL all wrap their show in a ``StopHandler``
whose closers end it (``Session.stop``: every open note ended, the recording written,
every output closed). A signal only *asks* to stop: the handler records it and tells the
front end (on its event loop when it has one), and the front end leaves its main loop by
its ordinary path, so its ``finally`` blocks run and the closers run once, on leaving the
``with`` block, or at interpreter exit if it is never left. Doing the stopping inside the
handler instead would run it on top of whatever the main thread was doing, locks held.

The exit code is the shell's convention for a program stopped by a signal, 128 + its
number: 130 (SIGINT, Ctrl-C), 129 (SIGHUP, a closed terminal), 143 (SIGTERM); ``play``
and the REPL answer it, ``perform`` answers 0 (a signal is how a set ends; RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopHandler:
    """A front end's way out: the signals that ask for it and the closers that end the show.

    ``with StopHandler(session.stop) as stopping:`` installs handlers for ``signals``
    (main thread only: elsewhere none are installed and the closers still run on leaving).
    ``on_request(callback)`` runs ``callback`` when the first signal arrives: on the event
    loop that was running at ``__enter__``, else inside the handler. ``interrupt`` runs
    inside the handler with the signal and the interrupted frame, on every signal; it may
    raise to break out of code that holds the loop (the REPL's busy user code).
    """

    def __init__(self, *closers: Callable[[], Any], signals: Iterable[int] = STOP_SIGNALS,
                 interrupt: Callable[[int, FrameType | None], None] | None = None) -> None:
        self.signals = tuple(signals)
        self.signum: int | None = None
        self.interrupt = interrupt
        self._closers = list(closers)
        self._callbacks: list[Callable[[], Any]] = []
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def requested(self) -> bool:
        """Whether a stop signal has arrived."""
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """0 when no signal stopped the show, else the conventional 128 + signal."""
        return 0 if self.signum is None else 128 + self.signum

    def add(self, closer: Callable[[], Any]) -> None:
        """Also run ``closer`` when the show ends (closers run in the order they were given)."""
        self._closers.append(closer)

    def on_request(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` when a stop signal arrives (at once if one already has)."""
        self._callbacks.append(callback)
        if self.signum is not None:
            self._dispatch(callback)

    def close(self) -> None:
        """Run every closer once; one that fails is logged and the rest still run."""
        if self._closed:
            return
        self._closed = True
        for closer in self._closers:
            try:
                closer()
            except Exception:  # noqa: BLE001 - every closer must run: the next may end the notes
                log.exception("while stopping")

    def __enter__(self) -> StopHandler:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handler)
        atexit.register(self.close)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.close()
        finally:
            atexit.unregister(self.close)
            for sig, previous in self._previous.items():
                signal.signal(sig, signal.SIG_DFL if previous is None else previous)
            self._previous.clear()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            for callback in self._callbacks:
                self._dispatch(callback)
        if self.interrupt is not None:
            self.interrupt(signum, frame)

    def _dispatch(self, callback: Callable[[], Any]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback)
        else:
            callback()

"""An asyncio loop on a thread of its own, for the page and OSCQuery servers.

Why not the show's loop: the REPL's loop runs the performer's code (a long line must not
hold a fader back, as with ``listen_osc``), and a script has no loop at all. On its own
thread a server is the same everywhere, and a page's traffic never queues behind a reload
or a prompt. Writes it makes are the ones any control thread may make (docs/ARCHITECTURE.md,
"Threads": ``Voice.set``/``update``, bus publishes, the action table's actions).

``start(setup)`` runs ``setup()`` on the new loop and returns its result, or raises what
it raised (a port taken is a LivernnError at once, not a warning later); ``stop(teardown)``
runs ``teardown()`` there, then ends the loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any

STOP_TIMEOUT = 5.0


class LoopThread:
    """One daemon thread running one event loop until ``stop``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, setup: Callable[[], Awaitable[Any]]) -> Any:
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self.loop = loop
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.result()
        try:
            return self.call(setup())
        except BaseException:
            self._end()
            raise

    def call(self, coro: Awaitable[Any], timeout: float | None = STOP_TIMEOUT) -> Any:
        """Run a coroutine on the loop from another thread and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self, teardown: Callable[[], Awaitable[Any]] | None = None) -> None:
        if self._thread is None or self.loop is None:
            return
        if teardown is not None and self._thread is not threading.current_thread():
            try:
                self.call(teardown())
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass  # the loop is going away anyway
        self._end()

    def _end(self) -> None:
        loop, thread = self.loop, self._thread
        self.loop, self._thread = None, None
        if loop is None or thread is None:
            return

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            asyncio.get_running_loop().stop()

        if loop.is_running():
            asyncio.run_coroutine_threadsafe(cancel_rest(), loop)
        if thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT)

"""An asyncio loop on a thread of its own, and the aiohttp server on it that the page and
OSCQuery share.

Why not the show's loop: the REPL's loop runs the performer's code (a long line must not
hold a fader back, as with ``listen_osc``), and a script has no loop at all. On its own
thread a server is the same everywhere, and a page's traffic never queues behind a reload
or a prompt. Writes it makes are the ones any control thread may make (docs/ARCHITECTURE.md,
"Threads": ``Voice.set``/``update``, bus publishes, the action table's actions).

``start(setup)`` runs ``setup()`` on the new loop and returns its result, or raises what
it raised (a port taken is a LivernnError at once, not a warning later); ``stop(teardown)``
runs ``teardown()`` there, then ends the loop and joins the thread.

``SurfaceServer`` is what ``page.WebPage`` and ``oscquery.OscQuery`` have in common: a
``Surface`` of the show, one aiohttp application behind a guard middleware on that thread
(bound to ``host:port``, a port taken is a one-line LivernnError, port 0 becomes the one
bound), websocket clients that each have a send queue and a rate bucket (one that stops
reading is dropped, not waited for), a look for moves ``POLL`` times a second, and
``close``. Each subclass says what it serves (``_routes``), who may ask (``_guard``) and
what it tells its clients (``_update``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from livernn.controls.osc_in import RateLimitedLog
from livernn.errors import LivernnError
from livernn.web.deps import aiohttp_web
from livernn.web.guard import Bucket
from livernn.web.surface import Surface

STOP_TIMEOUT = 5.0
HEARTBEAT = 20.0  # seconds between websocket pings


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


class Client:
    """One websocket client: what waits to be sent to it, and how fast it may send."""

    def __init__(self, ws: Any, queue: int, rate: float) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(queue)
        self.bucket = Bucket(rate, rate)


class SurfaceServer(ABC):
    """The page's and OSCQuery's common part; see the module docstring."""

    WHAT = "server"  # the name in its log lines and errors ("web", "oscquery")
    CLIENTS = "clients"  # what its websocket clients are called there
    MAX_MESSAGE = 4096  # bytes of a request body or one websocket message
    POLL = 0.02  # seconds between looks for moves

    def __init__(self, session: Any, runtime: Any, origin: str, host: str, port: int, thread: str,
                 model_names: Callable[[], list[str]] | None, log: Any) -> None:
        self.host, self.port = host, port
        self.surface = Surface(session, runtime, origin, model_names)
        self._clients: set[Any] = set()
        self._log = RateLimitedLog(log)
        self._thread = LoopThread(thread)
        self._runner: Any = None

    @property
    def running(self) -> bool:
        return self._thread.running

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> Any:
        """Bind and serve from the server's thread; a port already taken is a LivernnError here."""
        self._thread.start(self._setup)
        return self

    async def _setup(self) -> None:
        web = aiohttp_web()

        @web.middleware
        async def guard(request: Any, handler: Callable) -> Any:
            return await self._guard(request, handler)

        app = web.Application(middlewares=[guard], client_max_size=self.MAX_MESSAGE)
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise LivernnError(f"{self.WHAT}: cannot listen on {self.host}:{self.port} "
                               f"({exc.strerror or exc})") from None
        self.port = runner.addresses[0][1]
        try:
            await self._started()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        asyncio.get_running_loop().create_task(self._broadcast())

    def close(self) -> None:
        self._thread.stop(self._teardown)
        self.surface.close()

    async def _teardown(self) -> None:
        await self._stopping()
        for client in list(self._clients):
            await client.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what a subclass says -----------------------------------------------------------------
    @abstractmethod
    def _routes(self, app: Any) -> None:
        """Add the subclass's routes to ``app``."""

    @abstractmethod
    async def _guard(self, request: Any, handler: Callable) -> Any:
        """Let ``request`` through to ``handler`` or refuse it."""

    @abstractmethod
    def _update(self) -> None:
        """One look for moves (on the server's thread, ``POLL`` times a second)."""

    async def _started(self) -> None:
        """After the HTTP site is up (OSCQuery opens its OSC port here); raising closes it."""

    async def _stopping(self) -> None:
        """Before the clients and the HTTP site close."""

    def _dropped(self, client: Any) -> None:
        """A client that stopped reading was let go."""

    # -- websocket clients ----------------------------------------------------------------------
    async def _serve_socket(self, request: Any, client: Callable[[Any], Any],
                            receive: Callable[[Any, Any], bool]) -> Any:
        """Run one websocket: ``client(ws)`` makes its Client, ``receive(client, message)``
        takes each message and says whether to go on."""
        web = aiohttp_web()
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=self.MAX_MESSAGE)
        await ws.prepare(request)
        made = client(ws)
        self._clients.add(made)
        self._joined(made)
        sender = asyncio.get_running_loop().create_task(self._send(made))
        try:
            async for message in ws:
                if not receive(made, message):
                    break
        finally:
            self._clients.discard(made)
            self._left(made)
            sender.cancel()
        return ws

    def _joined(self, client: Any) -> None:
        """A websocket client came (counted by the page)."""

    def _left(self, client: Any) -> None:
        """A websocket client went."""

    async def _send(self, client: Client) -> None:
        while True:
            data = await client.queue.get()
            try:
                if isinstance(data, bytes):
                    await client.ws.send_bytes(data)
                else:
                    await client.ws.send_str(data)
            except (ConnectionError, RuntimeError):
                return

    def _queue(self, client: Client, data: str | bytes) -> None:
        try:
            client.queue.put_nowait(data)
        except asyncio.QueueFull:  # it stopped reading: let it go, not the others
            self._dropped(client)
            self._clients.discard(client)
            asyncio.get_running_loop().create_task(client.ws.close())

    async def _broadcast(self) -> None:
        while True:
            try:
                self._update()
            except Exception as exc:  # a bug here must not end the updates
                self._log.warning(f"{self.WHAT}: updating {self.CLIENTS}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(self.POLL)

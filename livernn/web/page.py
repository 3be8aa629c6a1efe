"""The control page: one static HTML page and a small script, served from the running show.

``WebPage(session, runtime, host, port).start()`` serves ``/`` (the page), ``/livernn.js``,
``/state`` (the show and its status as JSON, for scripts) and ``/ws``, a websocket that
carries everything live, JSON both ways:

- to the page: ``show`` (voices with every parameter's value, the parameter table with
  ranges, models, scenes, tempo: sent on connect and whenever voices, models or scenes
  change), ``params`` ([voice, param, value] moves, from any source), ``tempo``, ``scene``,
  ``status`` (4 a second: notes/s, late, open notes, clock source and peers, bar:beat,
  each voice's latest ``learn`` job: running, or its ending's one line),
  ``notes`` (what was generated, for the piano roll; on connect the last seconds of it),
  ``error`` (one line, to the page that asked);
- from the page: ``{"op": "set", "voice", "param", "value"}`` and
  ``{"op": "action", "action", "args"}``, nothing else: there is no code to evaluate.

Moves go through ``Surface`` (the action table, then the bus as ``web.<voice>.<param>``).
Every open page is told of every move 50 times a second, its own included; the page
leaves a slider alone while the performer's finger is on it.

Safety (``livernn.web.guard``): 127.0.0.1 unless told; beyond loopback a random token in
the URL is checked on every request and websocket; limits on connections (``MAX_PAGES``),
message size (``MAX_MESSAGE``) and rate (a token bucket per client and per socket). A page
that cannot keep up (its queue full) is dropped rather than slowing the others.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from livernn.errors import LivernnError
from livernn.web.deps import aiohttp_web
from livernn.web.guard import Buckets, host_ok, is_loopback, new_token, origin_ok, token_ok
from livernn.web.loop import Client, SurfaceServer

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
POLL = 0.02  # seconds between looks for moves and notes
STATUS_EVERY = 0.25
MAX_PAGES = 32
MAX_MESSAGE = 4096  # bytes of one message from a page
MESSAGES_PER_S = 240.0  # per page: four sliders under four fingers at 60 Hz
REQUESTS_PER_S = 20.0  # per client address: a page load is three requests
QUEUE = 256  # messages waiting for one page before it is dropped as too slow
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; script-src 'self'; frame-ancestors 'none'",
}


@dataclass
class PageStats:
    pages: int = 0  # open now
    opened: int = 0
    messages: int = 0
    moves: int = 0
    actions: int = 0
    refused: int = 0  # wrong or missing token, foreign Host or Origin
    limited: int = 0  # over a rate or connection limit
    bad: int = 0  # not a message we know, or refused by the show
    dropped_slow: int = 0


def _static(name: str) -> str:
    return resources.files("livernn.web").joinpath("static", name).read_text(encoding="utf-8")


def lan_address() -> str:
    """This machine's address on the network a phone would join (the default route's);
    no packet is sent. 127.0.0.1 when there is no network."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class WebPage(SurfaceServer):
    """The page server of one show; see the module docstring."""

    WHAT = "web"
    CLIENTS = "pages"
    MAX_MESSAGE = MAX_MESSAGE
    POLL = POLL

    def __init__(self, session: Any, runtime: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 token: str | None = None, model_names: Callable[[], list[str]] | None = None) -> None:
        super().__init__(session, runtime, "web", host, port, "livernn-web", model_names, log)
        self.token = token if token is not None else (None if is_loopback(host) else new_token())
        self.stats = PageStats()
        self._requests = Buckets(REQUESTS_PER_S, 2 * REQUESTS_PER_S)
        self._index = _static("index.html")
        self._script = _static("livernn.js")
        self._next_status = 0.0

    def __repr__(self) -> str:
        state = f"{self.stats.pages} page(s) open" if self.running else "closed"
        return f"<web page {self.url}, {state}>"

    @property
    def url(self) -> str:
        """The address to open: this machine's network address when serving beyond loopback."""
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = lan_address()
        shown = f"[{host}]" if ":" in host else host
        query = f"/?token={self.token}" if self.token else "/"
        return f"http://{shown}:{self.port}{query}"

    # -- life cycle ---------------------------------------------------------------------------
    def _routes(self, app: Any) -> None:
        app.router.add_get("/", self._page)
        app.router.add_get("/livernn.js", self._js)
        app.router.add_get("/state", self._state)
        app.router.add_get("/ws", self._socket)

    # -- HTTP -----------------------------------------------------------------------------------
    def _refuse(self, status: int, why: str, request: Any) -> Any:
        web = aiohttp_web()
        self._log.warning(f"web: {request.remote} refused: {why}")
        return web.Response(status=status, text=f"livernn: {why}\n", headers=HEADERS)

    async def _guard(self, request: Any, handler: Callable) -> Any:
        if not self._requests.take(request.remote or "?"):
            self.stats.limited += 1
            return self._refuse(429, "too many requests", request)
        if not token_ok(request.query.get("token"), self.token):
            self.stats.refused += 1
            return self._refuse(403, "wrong or missing token (use the URL livernn printed)", request)
        if self.token is None and not host_ok(request.host):
            self.stats.refused += 1
            return self._refuse(403, f"Host {request.host[:60]!r} is not this machine's address", request)
        return await handler(request)

    async def _page(self, request: Any) -> Any:
        web = aiohttp_web()
        query = f"?token={self.token}" if self.token else ""
        return web.Response(text=self._index.replace("{{query}}", query), content_type="text/html",
                            headers=HEADERS)

    async def _js(self, request: Any) -> Any:
        web = aiohttp_web()
        return web.Response(text=self._script, content_type="application/javascript", headers=HEADERS)

    async def _state(self, request: Any) -> Any:
        web = aiohttp_web()
        return web.json_response({"show": self.surface.describe(), "status": self.surface.status()},
                                 headers=HEADERS)

    # -- the websocket --------------------------------------------------------------------------
    async def _socket(self, request: Any) -> Any:
        if not origin_ok(request.headers.get("Origin"), request.host):
            self.stats.refused += 1
            return self._refuse(403, f"websocket from another site ({request.headers.get('Origin', '')[:60]})",
                                request)
        if len(self._clients) >= MAX_PAGES:
            self.stats.limited += 1
            return self._refuse(503, f"already {MAX_PAGES} pages open", request)
        return await self._serve_socket(request, self._new_page, self._message)

    def _new_page(self, ws: Any) -> Client:
        page = Client(ws, QUEUE, MESSAGES_PER_S)
        page.queue.put_nowait(json.dumps({"type": "show", **self.surface.describe()}))
        page.queue.put_nowait(json.dumps(self.surface.status()))
        page.queue.put_nowait(json.dumps({"type": "notes", "notes": self.surface.recent_notes()}))
        return page

    def _joined(self, client: Any) -> None:
        self.stats.pages, self.stats.opened = len(self._clients), self.stats.opened + 1

    def _left(self, client: Any) -> None:
        self.stats.pages = len(self._clients)

    def _dropped(self, client: Any) -> None:
        self.stats.dropped_slow += 1

    def _message(self, page: Client, message: Any) -> bool:
        if message.type != aiohttp_web().WSMsgType.TEXT:
            return False  # binary or an error: this page speaks JSON only
        self._receive(page, message.data)
        return True

    def _receive(self, page: Client, text: str) -> None:
        self.stats.messages += 1
        if not page.bucket.take():
            self.stats.limited += 1
            self._log.warning("web: a page sends faster than "
                              f"{MESSAGES_PER_S:g} messages/s; the rest are dropped")
            return
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise LivernnError("a message must be a JSON object")
            op = message.get("op")
            if op == "set":
                self.surface.write(message.get("voice"), message.get("param"), message.get("value"))
                self.stats.moves += 1
            elif op == "action":
                args = message.get("args") or {}
                if not isinstance(args, dict):
                    raise LivernnError("action args must be an object")
                self.surface.act(str(message.get("action"))[:40], args)
                self.stats.actions += 1
            else:
                raise LivernnError(f"unknown op {str(op)[:40]!r}; ops: set, action")
        except (LivernnError, ValueError, TypeError, RecursionError) as exc:
            self.stats.bad += 1
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            self._queue(page, json.dumps({"type": "error", "message": reason}))

    def _tell_all(self, message: dict[str, Any]) -> None:
        if self._clients:
            text = json.dumps(message)
            for page in list(self._clients):
                self._queue(page, text)

    def _update(self) -> None:
        """Moves and notes 50 times a second, status 4 times: to every open page."""
        for event in self.surface.changes():
            self._tell_all(event)
        notes = self.surface.take_notes()
        if notes:
            self._tell_all({"type": "notes", "notes": notes})
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + STATUS_EVERY
            if self._clients:
                self._tell_all(self.surface.status(now))

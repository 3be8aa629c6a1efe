"""OSCQuery: the show's OSC namespace over HTTP, so controllers discover it instead of
having its addresses copied by hand.

``OscQuery(session, runtime, host, port).start()`` serves, on TCP ``port``:

- ``GET /`` (or any node's path): the namespace as JSON, each node with ``FULL_PATH``,
  ``CONTENTS`` or ``TYPE``/``RANGE``/``VALUE``/``ACCESS``/``DESCRIPTION``/``CLIPMODE``;
  ``GET /lead/temperature?VALUE`` one attribute (204 when the node has none, 404 for a
  path not in the tree); ``GET /?HOST_INFO`` names the OSC port and the extensions;
- a websocket on the same port: ``{"COMMAND": "LISTEN", "DATA": "/lead/temperature"}``
  (and ``IGNORE``) subscribes to a node, whose new values then arrive as binary OSC
  messages, whoever moved them; ``PATH_CHANGED`` (text) when voices, models or scenes
  change; a binary OSC message sent on it is a write;
- OSC over UDP on ``osc_port`` (by default the same number as the HTTP port): a message
  to an address the tree lists moves it.

The tree: ``/<voice>/<param>`` for every parameter of every voice (``f``/``i`` with
``MIN``/``MAX``, a choice as ``s`` with ``VALS``, ``mute`` as ``T``), ``/<voice>/model``
(write a name: swap at the next bar), and the show's own ``/livernn/tempo``, ``scene``,
``panic``, ``mute``, ``unmute``, ``swap``: the addresses and arguments of the remote
commands (``controls.remote``). Writes go through ``Surface`` like a page's, published as
``oscquery.<voice>.<param>``. (A voice named ``livernn`` is left out of the tree: its path
would be the show's.)

Beyond loopback only allow-listed hosts are answered, over HTTP, the websocket and UDP (the
OSC input's rule; OSCQuery clients cannot carry a token), and the service is announced by
zeroconf as ``_oscjson._tcp`` (and ``_osc._udp``) on the interfaces it listens on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from pythonosc import osc_packet
from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.controls.osc_in import MAX_BUNDLES, OscIn
from livernn.errors import LivernnError
from livernn.web.deps import aiohttp_web
from livernn.web.guard import Buckets, host_ok, is_loopback, origin_ok
from livernn.web.loop import Client, SurfaceServer

log = logging.getLogger(__name__)

DEFAULT_PORT = 9010
SHOW = "livernn"  # the show's own node: /livernn/tempo, /livernn/panic...
POLL = 0.02
MAX_LISTENERS = 32
MAX_MESSAGE = 4096
MESSAGES_PER_S = 240.0
REQUESTS_PER_S = 50.0  # a client walking the tree asks node by node
QUEUE = 512
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "VALUE", "RANGE", "ACCESS", "DESCRIPTION", "CLIPMODE")
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "CLIPMODE": True,
              "LISTEN": True, "PATH_CHANGED": True, "TAGS": False, "EXTENDED_TYPE": False, "UNIT": False,
              "CRITICAL": False, "OVERLOADS": False, "HTML": False, "PATH_RENAMED": False, "PATH_ADDED": False,
              "PATH_REMOVED": False}
READ, WRITE, READ_WRITE = 1, 2, 3


def _param_node(path: str, spec: dict[str, Any], value: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"FULL_PATH": path, "ACCESS": READ_WRITE, "DESCRIPTION": spec["doc"]}
    kind = spec["kind"]
    if kind == "bool":
        node.update(TYPE="T", VALUE=[bool(value)])
    elif kind == "choice":
        node.update(TYPE="s", VALUE=[value], RANGE=[{"VALS": spec["choices"]}])
    else:
        node.update(TYPE="i" if kind == "int" else "f", VALUE=[value], CLIPMODE="both",
                    RANGE=[{"MIN": spec["min"], "MAX": spec["max"]}])
    return node


def namespace(show: dict[str, Any]) -> dict[str, Any]:
    """The OSCQuery tree of a ``Surface.describe()``."""
    contents: dict[str, Any] = {}
    voices = [v for v in show["voices"] if v != SHOW]
    for name in voices:
        info = show["voices"][name]
        node = {p: _param_node(f"/{name}/{p}", spec, info["params"][p]) for p, spec in show["specs"].items()}
        node["model"] = {"FULL_PATH": f"/{name}/model", "TYPE": "s", "ACCESS": READ_WRITE, "VALUE": [info["model"]],
                         "RANGE": [{"VALS": show["models"]}], "DESCRIPTION": "the voice's model; write a name to "
                                                                             "swap it in at the next bar"}
        contents[name] = {"FULL_PATH": f"/{name}", "ACCESS": 0, "CONTENTS": node,
                          "DESCRIPTION": f"voice {name}: model {info['model']}, MIDI channel {info['channel']}"}
    base = f"/{SHOW}/"
    contents[SHOW] = {"FULL_PATH": f"/{SHOW}", "ACCESS": 0, "DESCRIPTION": "the show", "CONTENTS": {
        "tempo": {"FULL_PATH": base + "tempo", "TYPE": "f", "ACCESS": READ_WRITE, "VALUE": [show["bpm"]],
                  "RANGE": [{"MIN": 1.0, "MAX": 999.0}], "CLIPMODE": "none", "DESCRIPTION": "tempo in BPM"},
        "scene": {"FULL_PATH": base + "scene", "TYPE": "s", "ACCESS": READ_WRITE,
                  "VALUE": [show["scene"] or ""], "RANGE": [{"VALS": show["scenes"]}],
                  "DESCRIPTION": "apply a scene of the patch by name"},
        "panic": {"FULL_PATH": base + "panic", "TYPE": "N", "ACCESS": WRITE,
                  "DESCRIPTION": "end every sounding note on every output"},
        "mute": {"FULL_PATH": base + "mute", "TYPE": "s", "ACCESS": WRITE, "RANGE": [{"VALS": [*voices, "*"]}],
                 "DESCRIPTION": "silence a voice (* = all)"},
        "unmute": {"FULL_PATH": base + "unmute", "TYPE": "s", "ACCESS": WRITE, "RANGE": [{"VALS": [*voices, "*"]}],
                   "DESCRIPTION": "let a voice play again (* = all)"},
        "swap": {"FULL_PATH": base + "swap", "TYPE": "ss", "ACCESS": WRITE,
                 "RANGE": [{"VALS": voices}, {"VALS": show["models"]}],
                 "DESCRIPTION": "swap a voice's model (by name) at the next bar"},
    }}
    return {"FULL_PATH": "/", "ACCESS": 0, "DESCRIPTION": "livernn", "CONTENTS": contents}


def find(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = tree
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def osc_message(address: str, value: Any) -> bytes:
    """One value as the OSC message a LISTEN client gets."""
    builder = OscMessageBuilder(address)
    if isinstance(value, bool):
        builder.add_arg(value)
    elif isinstance(value, int):
        builder.add_arg(value, "i")
    elif isinstance(value, float):
        builder.add_arg(value, "f")
    elif value is not None:
        builder.add_arg(str(value), "s")
    return builder.build().dgram


class _Listener(Client):
    def __init__(self, ws: Any) -> None:
        super().__init__(ws, QUEUE, MESSAGES_PER_S)
        self.paths: set[str] = set()


class OscQuery(SurfaceServer):
    """The OSCQuery server of one show; see the module docstring."""

    WHAT = "oscquery"
    CLIENTS = "listeners"
    MAX_MESSAGE = MAX_MESSAGE
    POLL = POLL

    def __init__(self, session: Any, runtime: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 osc_port: int | None = None, allow: Iterable[str] = (), name: str = "livernn",
                 model_names: Callable[[], list[str]] | None = None, announce: bool | None = None) -> None:
        super().__init__(session, runtime, "oscquery", host, port, "livernn-oscquery", model_names, log)
        self.osc_port = osc_port
        self.name = name
        self.osc = OscIn(session.bus, port=0, bind=host, allow=allow)
        self.osc.dispatcher.set_default_handler(self._osc_write)
        self.announce = (not is_loopback(host)) if announce is None else announce
        self.announced: list[str] = []  # the zeroconf service names, once registered
        self.writes = 0
        self.refused = 0
        self.bad = 0
        self._requests = Buckets(REQUESTS_PER_S, 2 * REQUESTS_PER_S)
        self._zeroconf: Any = None
        self._tree: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<oscquery http://{self.host}:{self.port}/ (OSC on UDP {self.osc.port})>"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- life cycle ---------------------------------------------------------------------------
    def _routes(self, app: Any) -> None:
        app.router.add_get("/{path:.*}", self._get)

    async def _started(self) -> None:
        self.osc.port = self.port if self.osc_port is None else self.osc_port
        try:
            await self.osc.start()
        except LivernnError as exc:
            raise LivernnError(f"oscquery: {exc} (set another with [oscquery] osc_port)") from None
        self.osc_port = self.osc.port
        if self.announce:
            from livernn.web.announce import Announcement

            self._zeroconf = Announcement(self.name, self.host, self.port, self.osc_port)
            self.announced = await self._zeroconf.start()

    async def _stopping(self) -> None:
        if self._zeroconf is not None:
            await self._zeroconf.close()
            self._zeroconf = None
        self.osc.close()

    # -- the tree -------------------------------------------------------------------------------
    def tree(self) -> dict[str, Any]:
        return namespace(self.surface.describe())

    def host_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"NAME": self.name, "OSC_PORT": self.osc_port, "OSC_TRANSPORT": "UDP",
                                "EXTENSIONS": dict(EXTENSIONS)}
        if self.host not in ("0.0.0.0", "::"):
            info["OSC_IP"] = "127.0.0.1" if self.host == "localhost" else self.host
        return info

    # -- HTTP -----------------------------------------------------------------------------------
    async def _guard(self, request: Any, handler: Callable) -> Any:
        web = aiohttp_web()
        remote = request.remote or "?"
        why = None
        if not self.osc.allowed(remote):
            why = f"{remote} is not in [oscquery] allow"
        elif is_loopback(self.host) and not host_ok(request.host):
            why = f"Host {request.host[:60]!r} is not this machine's address"
        elif not self._requests.take(remote):
            self._log.warning(f"oscquery: {remote} asks faster than {REQUESTS_PER_S:g} requests/s")
            return web.Response(status=429, text="too many requests\n")
        if why is not None:
            self.refused += 1
            self._log.warning(f"oscquery: refused: {why}")
            return web.Response(status=403, text=f"livernn: {why}\n")
        return await handler(request)

    async def _get(self, request: Any) -> Any:
        web = aiohttp_web()
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._socket(request)
        query = request.query_string
        if query == "HOST_INFO":
            return web.json_response(self.host_info())
        node = find(self.tree(), request.path)
        if node is None:
            return web.Response(status=404, text=f"no node {request.path[:80]!r}\n")
        if not query:
            return web.json_response(node)
        if query not in ATTRIBUTES:
            return web.Response(status=400, text=f"unknown attribute {query[:40]!r}; known: {', '.join(ATTRIBUTES)}\n")
        if query not in node:
            return web.Response(status=204)
        return web.json_response({query: node[query]})

    # -- the LISTEN websocket -------------------------------------------------------------------
    async def _socket(self, request: Any) -> Any:
        web = aiohttp_web()
        if not origin_ok(request.headers.get("Origin"), request.host):
            self.refused += 1
            return web.Response(status=403, text="livernn: websocket from another site\n")
        if len(self._clients) >= MAX_LISTENERS:
            return web.Response(status=503, text=f"already {MAX_LISTENERS} listeners\n")
        return await self._serve_socket(request, _Listener, self._message)

    def _message(self, listener: _Listener, message: Any) -> bool:
        web = aiohttp_web()
        if not listener.bucket.take():
            self._log.warning(f"oscquery: a listener sends faster than {MESSAGES_PER_S:g} messages/s")
            return True
        if message.type == web.WSMsgType.TEXT:
            self._command(listener, message.data)
        elif message.type == web.WSMsgType.BINARY:
            self._osc_packet(message.data)
        else:
            return False
        return True

    def _command(self, listener: _Listener, text: str) -> None:
        try:
            message = json.loads(text)
            command, path = message["COMMAND"], message["DATA"]
        except (ValueError, KeyError, TypeError):
            self.bad += 1
            return
        if command == "LISTEN" and isinstance(path, str) and len(listener.paths) < 4096:
            node = find(self.tree(), path)
            if node is not None and "VALUE" in node:
                listener.paths.add(node["FULL_PATH"])
        elif command == "IGNORE" and isinstance(path, str):
            listener.paths.discard(path)

    def _push(self, values: list[tuple[str, Any]]) -> None:
        for listener in list(self._clients):
            for path, value in values:
                if path in listener.paths:
                    self._queue(listener, osc_message(path, value))

    def _update(self) -> None:
        for event in self.surface.changes():
            self._tell(event)
        self.surface.take_notes()  # keeps the note buffer from filling

    def _tell(self, event: dict[str, Any]) -> None:
        if not self._clients:
            return
        kind = event["type"]
        if kind == "params":
            self._push([(f"/{voice}/{param}", value) for voice, param, value in event["changes"]])
        elif kind == "tempo":
            self._push([(f"/{SHOW}/tempo", float(event["bpm"]))])
        elif kind == "scene":
            self._push([(f"/{SHOW}/scene", event["name"] or "")])
        elif kind == "show":
            changed = json.dumps({"COMMAND": "PATH_CHANGED", "DATA": "/"})
            tree = namespace(event)
            for listener in list(self._clients):
                self._queue(listener, changed)
                for path in list(listener.paths):
                    node = find(tree, path)
                    if node is None:
                        listener.paths.discard(path)
                    else:
                        self._queue(listener, osc_message(path, node["VALUE"][0]))

    # -- writes -----------------------------------------------------------------------------------
    def _osc_packet(self, data: bytes) -> None:
        if data.count(b"#bundle\x00") > MAX_BUNDLES:
            self.bad += 1
            return
        try:
            messages = osc_packet.OscPacket(data).messages
        except Exception:  # python-osc raises several kinds on a malformed packet
            self.bad += 1
            return
        for timed in messages:
            self._osc_write(timed.message.address, *timed.message.params)

    def _osc_write(self, address: str, *args: Any) -> None:
        try:
            self.write(address, args)
            self.writes += 1
        except LivernnError as exc:
            self.bad += 1
            self._log.warning(f"oscquery: {address[:80]}: {exc}")

    def write(self, address: str, args: tuple[Any, ...]) -> None:
        """A write to a node of the tree (see the module docstring); LivernnError if it is
        not one, or the show refuses the value."""
        parts = [p for p in str(address).split("/") if p]
        surface = self.surface
        if len(parts) == 2 and parts[0] == SHOW:
            name, need = parts[1], {"tempo": 1, "scene": 1, "panic": 0, "mute": 1, "unmute": 1, "swap": 2}
            if name not in need:
                raise LivernnError(f"{address} is not in the namespace")
            if len(args) < need[name]:
                raise LivernnError(f"{address} takes {need[name]} argument(s)")
            if name == "tempo":
                surface.act("tempo", {"bpm": args[0]})
            elif name == "scene":
                surface.act("scene", {"scene": args[0]})
            elif name == "panic":
                surface.act("panic")
            elif name == "swap":
                surface.act("swap", {"voice": args[0], "model": args[1], "at": "bar"})
            else:
                surface.act(name, {"voice": args[0]})
            return
        if len(parts) == 2 and parts[0] in surface.session.voices:
            if not args:
                raise LivernnError(f"{address} needs a value")
            if parts[1] == "model":
                surface.act("swap", {"voice": parts[0], "model": args[0], "at": "bar"})
            else:
                surface.write(parts[0], parts[1], args[0])
            return
        raise LivernnError(f"{address} is not in the namespace")

    def listened(self) -> set[str]:
        """The paths some LISTEN client follows now."""
        return {path for listener in list(self._clients) for path in listener.paths}

"""A patch's ``[web]`` and ``[oscquery]`` tables: the page and OSCQuery, opened with the show.

    [web]
    port = 8080                # bind = "127.0.0.1" unless given; "0.0.0.0" for a phone

    [oscquery]
    port = 9010                # HTTP; OSC on the same UDP port unless osc_port says
    bind = "0.0.0.0"           # beyond loopback: announced by zeroconf,
    allow = ["192.168.1.0/24"] # and only these hosts (and this machine) are answered
    name = "my show"           # the name controllers list

The patch loader imports this module only when a patch has one of the tables
(livernn.patch.sections), so a patch without them never imports aiohttp. ``check_*`` find
every problem without opening a port; ``start_*`` open the server on the show's session
and runtime and return its ``close`` (called on reload and at the end of the show).

``perform --web [HOST:]PORT`` and ``--oscquery [HOST:]PORT`` (with ``--oscquery-allow``)
are laid over these tables (``flag_override``), so a show runs one page and one OSCQuery
server whichever way they were asked for: the flag's address replaces ``port`` and
``bind`` (a bare port is 127.0.0.1, as everywhere: the flag never inherits a table's
network address), ``--oscquery-allow`` adds to ``allow``, and the table's other keys
(``osc_port``, ``allow``, ``name``) stay. Without the table, the flag alone opens the server.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from livernn.errors import LivernnError
from livernn.patch.sections import Problems, Section, register_section

WEB_KEYS = ("port", "bind")
OSCQUERY_KEYS = ("port", "bind", "osc_port", "allow", "name")
DEFAULT_WEB_PORT = 8080
DEFAULT_OSCQUERY_PORT = 9010


def _port(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535
    return None if ok else f"must be a port number 0..65535 (0 = any free one), got {value!r}"


def _bind(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be an IP address such as \"127.0.0.1\" or \"0.0.0.0\", got {value!r}"
    if value == "localhost":
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IP address such as \"127.0.0.1\" or \"0.0.0.0\", got {value!r}"
    return None


def _allow(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"must be a list of hosts or networks such as [\"192.168.1.0/24\"], got {value!r}"
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"{entry!r} is not an IP address or network"
    return None


def _name(value: Any) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= 63 and value.isprintable() and "." not in value
    return None if ok else f"must be a short name without dots (the name controllers list), got {value!r}"


CHECKS: dict[str, Callable[[Any], str | None]] = {"port": _port, "osc_port": _port, "bind": _bind,
                                                   "allow": _allow, "name": _name}


def _check(table: dict[str, Any], allowed: tuple[str, ...]) -> Problems:
    problems: Problems = []
    for key, value in table.items():
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(((key,), f"unknown key; {hint}allowed: {', '.join(allowed)}"))
        elif (message := CHECKS[key](value)) is not None:
            problems.append(((key,), message))
    return problems


def check_web(table: dict[str, Any]) -> Problems:
    return _check(table, WEB_KEYS)


def check_oscquery(table: dict[str, Any]) -> Problems:
    return _check(table, OSCQUERY_KEYS)


def _where(table: dict[str, Any], default_port: int) -> str:
    bind = table.get("bind", "127.0.0.1")
    return f"[{bind}]:{table.get('port', default_port)}" if ":" in bind else f"{bind}:{table.get('port', default_port)}"


def start_web(session: Any, runtime: Any, table: dict[str, Any]) -> Callable[[], None]:
    from livernn.web.serve import open_page

    try:
        page = open_page(session, runtime, _where(table, DEFAULT_WEB_PORT))
    except LivernnError as exc:
        raise LivernnError(f"[web]: {exc}") from None
    return page.close


def start_oscquery(session: Any, runtime: Any, table: dict[str, Any]) -> Callable[[], None]:
    from livernn.web.serve import open_oscquery

    try:
        server = open_oscquery(session, runtime, _where(table, DEFAULT_OSCQUERY_PORT), allow=table.get("allow", ()),
                               osc_port=table.get("osc_port"), name=table.get("name", "livernn"))
    except LivernnError as exc:
        raise LivernnError(f"[oscquery]: {exc}") from None
    return server.close


Merge = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def flag_override(kind: str, where: str | None, allow: Iterable[str] = ()) -> Merge | None:
    """How ``--web``/``--oscquery WHERE`` (``kind`` "web" or "oscquery") and
    ``--oscquery-allow`` change the patch's table: a function from the table (None when the
    patch has none) to the one to serve (None: no server), or None when no flag was given.
    A bad value is a LivernnError now, before anything opens."""
    from livernn.web.guard import parse_listen

    allow = list(allow)
    if where is None and not allow:
        return None
    extra: dict[str, Any] = {}
    if where is not None:
        host, port = parse_listen(where, kind)
        extra.update(port=port, bind=host)
    if allow and (problem := _allow(allow)) is not None:
        raise LivernnError(f"--{kind}-allow: {problem}")

    def merge(table: dict[str, Any] | None) -> dict[str, Any] | None:
        if table is None and where is None:
            return None  # --oscquery-allow alone adds to a table, and opens nothing by itself
        merged = {**(table or {}), **extra}
        if allow:
            merged["allow"] = list(dict.fromkeys([*merged.get("allow", []), *allow]))
        return merged

    return merge


register_section(Section("web", validate=check_web, start=start_web))
register_section(Section("oscquery", validate=check_oscquery, start=start_oscquery))

"""Opening the page and OSCQuery for a show, and saying where they are.

The one way in for the ``[web]``/``[oscquery]`` patch tables (which ``perform --web``
and ``--oscquery`` override) and ``web()`` at the prompt: each prints the address to open
(and, for a page opened beyond loopback, a QR code of the URL with its token, for a phone)
and returns the running server (``close()`` ends it). ``running(session, kind)`` is the
show's page or OSCQuery server while it runs: a show has one of each, so ``web()`` at the
prompt returns the one a patch opened rather than starting a second.
"""

from __future__ import annotations

import io
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from livernn.web.deps import qrcode
from livernn.web.guard import is_loopback, parse_listen

Say = Callable[[str], None]
_OPEN: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()  # session -> kind -> server


def running(session: Any, kind: str) -> Any:
    """The show's open page (``kind`` "web") or OSCQuery server ("oscquery"), or None."""
    server = _OPEN.get(session, {}).get(kind)
    return server if server is not None and server.running else None


def _opened(session: Any, kind: str, server: Any) -> Any:
    _OPEN.setdefault(session, {})[kind] = server
    return server


def say_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def qr_text(text: str) -> str:
    """``text`` as a QR code drawn with block characters (two rows a line), dark on light."""
    code = qrcode().QRCode(border=2)
    code.add_data(text)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def open_page(session: Any, runtime: Any, where: str | int = "127.0.0.1:8080", say: Say = say_stderr,
              model_names: Callable[[], list[str]] | None = None) -> Any:
    """Serve the control page at ``where`` (``[HOST:]PORT``) and print its URL."""
    from livernn.web.page import WebPage

    host, port = parse_listen(where, "web")
    page = _opened(session, "web", WebPage(session, runtime, host, port, model_names=model_names).start())
    say(f"web page: {page.url}")
    if page.token is not None:
        say(f"web page open beyond this machine ({host}); the URL's token is its key. For a phone:")
        say(qr_text(page.url).rstrip("\n"))
    return page


def open_oscquery(session: Any, runtime: Any, where: str | int, allow: Iterable[str] = (),
                  osc_port: int | None = None, name: str = "livernn", say: Say = say_stderr,
                  model_names: Callable[[], list[str]] | None = None) -> Any:
    """Serve OSCQuery at ``where`` (``[HOST:]PORT``) and print where; announced by zeroconf
    when beyond loopback."""
    from livernn.web.oscquery import OscQuery

    host, port = parse_listen(where, "oscquery")
    allow = (allow,) if isinstance(allow, str) else tuple(allow)
    server = _opened(session, "oscquery", OscQuery(session, runtime, host, port, osc_port=osc_port, allow=allow,
                                                   name=name, model_names=model_names).start())
    line = f"oscquery: {server.url} (OSC on UDP {server.osc_port})"
    if server.announced:
        line += f", announced as {server.announced[0]}"
    say(line)
    if not is_loopback(host) and not allow:
        say("oscquery: only this machine is answered; let controllers in with [oscquery] allow = "
            "[\"192.168.1.0/24\"] or --oscquery-allow")
    return server

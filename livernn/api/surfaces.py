"""Other ways in: hand tracking (``gesture``) and the browser control page (``web``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livernn.api.core import _state, controls, session

if TYPE_CHECKING:  # completion and mypy see the real types; importing stays lazy
    from livernn.gesture.tracker import GestureTracker
    from livernn.web.page import WebPage


def gesture(source: int | str = 0, **options: Any) -> GestureTracker:
    """Track hands from a camera index, video or picture and publish ``hand.*`` controls.

    Options are GestureTracker's (``mirror``, ``filters``, ``realtime``, ``osc``…). Stopped
    by ``quit()``; ``patch("hand.right.pinch", "lead.temperature")`` puts it to work.
    """
    from livernn.gesture.tracker import GestureTracker

    tracker = GestureTracker(source, bus=session().bus, **options).start()
    _state["trackers"].append(tracker)
    return tracker


def web(port: int | None = None, host: str | None = None, oscquery: int | None = None) -> WebPage:
    """Open the control page of this show in a browser: sliders for every voice's
    parameters, mute/solo, model swap, scenes, tempo, panic, status and a piano roll.

    Prints the URL (127.0.0.1:8080 unless ``port``/``host`` say, e.g. ``host="0.0.0.0"``
    for a phone: then the URL carries a token and a QR code is printed). ``oscquery=9010``
    also serves the show's OSC namespace for TouchOSC, Open Stage Control and Max. Returns
    the page (``.url``, ``.close()``). A show has one page (and one OSCQuery server): when
    one runs already (the patch's ``[web]``, or an earlier ``web()``) it is returned, with a
    line saying where it is if another address was asked for. Needs the ``web`` extra
    (``pip install 'livernn[web]'``).
    """
    from livernn.web.serve import open_oscquery, open_page, running

    s, runtime = session(), controls()
    opened = _state.setdefault("web", [])
    bind = "127.0.0.1" if host is None else host
    at = (lambda p: f"[{bind}]:{p}") if ":" in str(bind) else (lambda p: f"{bind}:{p}")
    page = running(s, "web")
    if page is None:
        page = open_page(s, runtime, at(8080 if port is None else port))
        opened.append(page)
    elif (port is not None and port not in (0, page.port)) or (host is not None and host != page.host):
        print(f"web page: {page.url} (the show's page is open there already; page.close() first to move it)")
    else:
        print(f"web page: {page.url}")
    if oscquery is not None:
        query = running(s, "oscquery")
        if query is None:
            opened.append(open_oscquery(s, runtime, at(oscquery)))
        elif oscquery not in (0, query.port) or (host is not None and host != query.host):
            print(f"oscquery: {query.url} (the show's OSCQuery is open there already)")
    return page

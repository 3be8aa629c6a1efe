"""A control page in the browser and an OSCQuery namespace, generated from the running show.

``WebPage`` (livernn.web.page) serves one static page and a small script: per voice a
slider for each parameter, mute/solo and a model menu; scene buttons, tempo, panic; a
status strip and a piano roll; two-way over a websocket. ``OscQuery``
(livernn.web.oscquery) serves the show's OSC namespace over HTTP for TouchOSC, Open Stage
Control and Max to discover, pushes value changes to LISTEN websockets and takes writes
over OSC. Both read and move the show through ``Surface`` (livernn.web.surface), so a
move from a page takes the road every other control takes. Both run on a thread of their
own and bind to 127.0.0.1 unless told otherwise (livernn.web.guard says what protects them
beyond it).

Opened by ``livernn perform PATCH --web [HOST:]PORT --oscquery [HOST:]PORT``, by a patch's
``[web]`` and ``[oscquery]`` tables (livernn.web.section) and by ``web()`` at the prompt.
aiohttp, zeroconf and qrcode come with the ``web`` extra and are imported only here.
"""

from __future__ import annotations

from livernn.web.surface import Surface

__all__ = ["Surface"]

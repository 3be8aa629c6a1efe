"""Lazy imports of the ``web`` extra (aiohttp, zeroconf, qrcode).

A show without a page or OSCQuery never imports them; asking for one without the extra
installed is a one-line ``LivernnError`` that says what to install
(``livernn.errors.require_extra``).
"""

from __future__ import annotations

from types import ModuleType

from livernn.errors import require_extra


def _require(module: str, what: str) -> ModuleType:
    return require_extra(module, what, "web")


def aiohttp_web() -> ModuleType:
    return _require("aiohttp.web", "the web page and OSCQuery")


def zeroconf_asyncio() -> ModuleType:
    return _require("zeroconf.asyncio", "announcing OSCQuery on the network")


def qrcode() -> ModuleType:
    return _require("qrcode", "the QR code of the page's address")

"""Lazy imports of the ``web`` extra (aiohttp, zeroconf, qrcode).

A show without a page or OSCQuery never imports them; asking for one without the extra
installed is a one-line ``LivernnError`` that says what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from livernn.errors import LivernnError

INSTALL_HINT = "pip install 'livernn[web]'"


def _require(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LivernnError(f"{what} needs {module.split('.')[0]}, which is not installed here ({exc}); "
                           f"install it with: {INSTALL_HINT}") from None


def aiohttp_web() -> ModuleType:
    return _require("aiohttp.web", "the web page and OSCQuery")


def zeroconf_asyncio() -> ModuleType:
    return _require("zeroconf.asyncio", "announcing OSCQuery on the network")


def qrcode() -> ModuleType:
    return _require("qrcode", "the QR code of the page's address")

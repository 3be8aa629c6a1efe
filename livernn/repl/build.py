"""Building the show the REPL starts with: the construction ``livernn perform`` uses.

A patch is loaded by ``livernn.patch.Show`` (schema check, ``apply_patch``, OSC/MIDI
servers, control ticks, live reload) before the session starts, exactly as ``perform``
does, so a set started from a patch can be taken over at the prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


async def open_show(patch: Path | None, bpm: float | None = None) -> tuple[Any, Any]:
    """A started Session playing ``patch`` (or empty), and the patch's Show (or None)."""
    from livernn.engine import Session

    if patch is None:
        return Session(bpm=bpm or 120.0).start(), None
    from livernn.patch import Show, load_patch

    first = load_patch(patch)  # a bad patch: one error line before anything opens
    session = Session(bpm=bpm or first.bpm, beats_per_bar=first.beats_per_bar)
    show = Show(session, patch, report=lambda line: print(f"livernn: {line}"))
    try:
        await show.load()
    except BaseException:
        await show.close()
        session.stop()
        raise
    if bpm is not None:
        session.set_tempo(bpm)
    return session.start(), show

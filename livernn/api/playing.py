"""The show: ``tempo``, ``panic``, ``mute``/``unmute``/``solo``, ``record``/``stop_record``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from livernn.api.core import _state, controls, session
from livernn.api.voices import _voice
from livernn.controls.actions import perform
from livernn.errors import LivernnError, kind_of


def tempo(bpm: float | None = None) -> float:
    """Set the tempo in BPM (beat position stays continuous); with no argument, read it."""
    if bpm is not None:
        perform(controls(), "tempo", {"bpm": bpm})
    return session().tempo


def panic() -> None:
    """End every sounding note now, on every output (tracked note-offs, then CC 123/120)."""
    perform(controls(), "panic", {})


def mute(*voices: Any) -> None:
    """Silence voices (they keep generating, so unmuting resumes mid-phrase); none = all."""
    for name in _voice_names(voices):
        perform(controls(), "mute", {"voice": name})


def unmute(*voices: Any) -> None:
    """Let voices play again; none = all (this also ends a solo)."""
    for name in _voice_names(voices):
        perform(controls(), "unmute", {"voice": name})
    if not voices:
        _state["solo"] = None


def solo(*voices: Any) -> None:
    """Play only these voices; ``solo()`` with none restores the mutes from before the solo."""
    s = session()
    if not voices:
        saved = _state["solo"] or {}
        for name, muted in saved.items():
            if name in s.voices:
                s.voices[name].set("mute", muted)
        _state["solo"] = None
        return
    keep = {_voice(v).name for v in voices}
    if _state["solo"] is None:
        _state["solo"] = {name: v.params.mute for name, v in s.voices.items()}
    for name, v in s.voices.items():
        v.set("mute", name not in keep)


def _voice_names(voices: Iterable[Any]) -> list[str]:
    """The names of ``voices`` (Voices or names, each checked), or ``["*"]`` (all) for none."""
    return [_voice(v).name for v in voices] or ["*"]


def record(path: str | os.PathLike[str]) -> Path:
    """Record every note from now on into a MIDI file (at the notes' logical times)."""
    if not isinstance(path, (str, os.PathLike)):
        raise LivernnError(f"record takes a file name like 'set.mid', got {kind_of(path)}")
    target = Path(path).expanduser()
    session().record(target)
    return target


def stop_record() -> Path:
    """Close the recording and return its path."""
    return session().stop_record()

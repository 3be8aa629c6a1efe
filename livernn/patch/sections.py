"""Plug-in sections of a patch file, e.g. ``[gesture]``, owned by other packages.

A package that wants its own table in a patch registers a ``Section``: ``validate``
returns problems as ``(key path inside the table, message)`` pairs (the loader adds
``file:line``), ``files`` names the keys that are file paths relative to the patch, and
``start`` wires the table into a running show and returns the function that unwires it
(called on reload and at the end). The patch loader imports the
owning module lazily, only when the table is present, so a patch without ``[gesture]``
never loads MediaPipe.

    # livernn/gesture/section.py
    from livernn.patch.sections import Section, register_section
    register_section(Section("gesture", validate=check_table, start=start_tracker))
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Problems = list[tuple[tuple[str | int, ...], str]]

# table name -> module that registers it when imported
OWNERS = {"gesture": "livernn.gesture.section", "web": "livernn.web.section", "oscquery": "livernn.web.section",
          "listen": "livernn.patch.listen"}


@dataclass(frozen=True)
class Section:
    name: str
    validate: Callable[[dict[str, Any]], Problems]
    # start(session, runtime, table) -> stop; runtime is a livernn.controls.runtime.ControlRuntime
    start: Callable[[Any, Any, dict[str, Any]], Callable[[], None]] | None = None
    # files(table) -> the keys whose values name files relative to the patch (a video, a model
    # bundle); the loader checks each stays inside the patch's folder and exists, and start()
    # gets the absolute path, so a show does not depend on the folder it was started from
    files: Callable[[dict[str, Any]], tuple[str, ...]] | None = None
    # voices(table) -> (key path, voice name) for each voice of the patch the table names; the
    # loader reports a name the patch lacks at its line, like any other bad value
    voices: Callable[[dict[str, Any]], list[tuple[tuple[str | int, ...], str]]] | None = None


SECTIONS: dict[str, Section] = {}


def register_section(section: Section) -> None:
    SECTIONS[section.name] = section


def section(name: str) -> Section | None:
    """The registered hook for a table, importing its owner on first use (None if none)."""
    if name not in SECTIONS and name in OWNERS:
        module = OWNERS[name]
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is not None:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError:
                return None
    return SECTIONS.get(name)

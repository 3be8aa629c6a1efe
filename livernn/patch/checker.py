"""Walking parsed TOML: typed getters that record problems against key paths.

Each problem keeps the key path it is about (``("voices", "lead", "channel")``) and gets
its line from ``KeyLines``, so every message can say ``file:line: voices.lead.channel: ...``.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

from livernn.errors import kind_of, nearest
from livernn.patch.lines import KeyLines


def show_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Checker:
    """Collects problems against key paths while walking the parsed TOML."""

    def __init__(self, file: Path, lines: KeyLines) -> None:
        self.file, self.lines = file, lines
        self.problems: list[tuple[int, str]] = []

    def bad(self, path: tuple[str | int, ...], message: str) -> None:
        where = f"{show_path(path)}: " if path else ""
        self.problems.append((self.lines.line(path), f"{where}{message}"))

    def table(self, path: tuple[str | int, ...], value: Any, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.bad(path, f"must be a table, got {kind_of(value)}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    self.bad((*path, key), f"unknown key; {hint}allowed: {', '.join(allowed)}")
        return value

    def number(self, path: tuple[str | int, ...], value: Any, lo: float = -math.inf, hi: float = math.inf,
               integer: bool = False) -> Any:
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            self.bad(path, f"must be {'an integer' if integer else 'a number'}, got {kind_of(value)}")
            return None
        if not (math.isfinite(value) and lo <= value <= hi):
            self.bad(path, f"{value!r} is out of range {lo:g}..{hi:g}")
            return None
        return value

    def string(self, path: tuple[str | int, ...], value: Any, choices: tuple[str, ...] | None = None) -> str | None:
        if not isinstance(value, str):
            self.bad(path, f"must be a string, got {kind_of(value)}")
            return None
        if choices is not None and value not in choices:
            guess = nearest(value, choices)  # type = "fiel": did you mean 'file'?
            self.bad(path, f"{value!r} is not allowed" + (f"; did you mean {guess!r}?" if guess else ";")
                     + f" allowed: {', '.join(choices) or 'none defined'}")
            return None
        return value

    def strings(self, path: tuple[str | int, ...], value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.bad(path, f"must be a list of strings, got {kind_of(value)}")
            return []
        return value

    def pair(self, path: tuple[str | int, ...], value: Any) -> tuple[float, float] | None:
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
            self.bad(path, f"must be [low, high], two finite numbers, got {value!r}")
            return None
        return float(value[0]), float(value[1])

    def inside(self, path: tuple[str | int, ...], value: str, folder: Path, also: Path | None = None) -> Path | None:
        """A relative path that stays inside ``folder`` (or ``also``), resolved."""
        if Path(value).is_absolute():
            self.bad(path, f"{value!r}: absolute paths are refused; give a path relative to the patch file")
            return None
        resolved = (folder / value).resolve()
        roots = [folder.resolve()] + ([also.resolve()] if also is not None else [])
        if not any(resolved.is_relative_to(root) for root in roots):
            where = " or ".join(str(r) for r in roots)
            self.bad(path, f"{value!r} leads outside the patch's folder; allowed inside {where}")
            return None
        return resolved

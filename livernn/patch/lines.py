"""Line numbers for TOML keys: tomllib gives none, a performer needs ``file:line``.

``KeyLines(text).line(path)`` finds the line that defines a key path such as
``("voices", "lead", "params", "temperature")`` or ``("mappings", 2, "curve")`` by
scanning the text for table headers (``[a.b]``, ``[[a]]`` with a running index per array
of tables) and ``key =`` lines, including keys inside one-line inline tables. When the
exact key is not written in the file (a missing key), the nearest written ancestor's line
is given, so the error points at the table that lacks it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_NAME = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""  # a bare or quoted key
_KEY = re.compile(rf"""^\s*({_NAME}(?:\s*\.\s*{_NAME})*)\s*=(.*)$""")
_INLINE_KEY = re.compile(r"""[{,]\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")

Path_ = tuple[str | int, ...]


def _parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


class KeyLines:
    """Map key paths to 1-based line numbers for one TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path_, int] = {}
        arrays: dict[Path_, int] = {}
        table: Path_ = ()
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = not in_multiline
                if not in_multiline:
                    continue
            elif in_multiline:
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                names: Path_ = tuple(_parts(header.group(2)))
                table = self._resolve(names, arrays)
                if header.group(1) == "[[":
                    index = arrays.get(names, -1) + 1
                    arrays[names] = index
                    table = (*table, index)
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = (*table, *_parts(key.group(1)))
                self.lines.setdefault(path, number)
                for inner in _INLINE_KEY.findall(key.group(2)):
                    self.lines.setdefault((*path, inner.strip("\"'")), number)

    @staticmethod
    def _resolve(names: Path_, arrays: dict[Path_, int]) -> Path_:
        """``[a.b]`` under an earlier ``[[a]]`` means the last element of array ``a``."""
        out: list[str | int] = []
        for i, name in enumerate(names):
            out.append(name)
            prefix = names[: i + 1]
            if prefix in arrays and i + 1 < len(names):
                out.append(arrays[prefix])
        return tuple(out)

    def line(self, path: Sequence[str | int]) -> int:
        """The line of ``path``, or of its nearest written ancestor, or 1."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1

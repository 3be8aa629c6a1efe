"""Tab completion that knows livernn: names, voice parameters, control-source names.

``v.tem<TAB>`` offers ``temperature`` (with its range as the hint); inside a string,
``patch("osc./1/f<TAB>`` offers the names the control bus has seen, the voices and their
``voice.param`` targets, and the outputs. Attribute chains are resolved with plain
``getattr`` on names already in the namespace; nothing typed is ever called.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

_ATTR = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$")
_NAME = re.compile(r"([A-Za-z_]\w*)$")
_STRING = re.compile(r"""(['"])([^'"\\]*)$""")


def param_specs() -> dict[str, Any]:
    """The engine's parameter table (empty if the engine cannot be imported)."""
    try:
        from livernn.engine import PARAM_SPECS
    except ImportError:
        return {}
    return dict(PARAM_SPECS)


def spec_hint(spec: Any) -> str:
    """'0.0..5.0' / 'major|minor|…' / 'bool': what a parameter accepts, for the menu."""
    if getattr(spec, "choices", None):
        return "|".join(str(c) for c in spec.choices)
    if getattr(spec, "kind", None) == "bool":
        return "bool"
    return f"{spec.min}..{spec.max}"


def is_voice(obj: Any) -> bool:
    try:
        from livernn.engine import Voice
    except ImportError:
        return False
    return isinstance(obj, Voice)


class LivernnCompleter(Completer):
    """Completes from the REPL namespace and from a callable giving in-string names."""

    def __init__(self, namespace: dict[str, Any], string_names: Callable[[], Iterable[str]]):
        self.namespace = namespace
        self.string_names = string_names

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        string = _open_string(text)
        if string is not None:
            yield from self._strings(string)
            return
        match = _ATTR.search(text)
        if match:
            yield from self._attributes(match.group(1), match.group(2))
            return
        match = _NAME.search(text)
        if match:
            yield from self._names(match.group(1))

    def _strings(self, prefix: str) -> Iterator[Completion]:
        try:
            names = sorted(set(self.string_names()))
        except Exception:  # noqa: BLE001 - a completion must never break the prompt
            return
        for name in names:
            if name.startswith(prefix) and name != prefix:
                yield Completion(name, -len(prefix))

    def _attributes(self, path: str, prefix: str) -> Iterator[Completion]:
        head, *rest = path.split(".")
        if head not in self.namespace and not hasattr(builtins, head):
            return
        obj = self.namespace.get(head, getattr(builtins, head, None))
        try:
            for part in rest:
                obj = getattr(obj, part)
        except Exception:  # noqa: BLE001 - properties may raise; then offer nothing
            return
        params = param_specs() if is_voice(obj) else {}
        for name, spec in sorted(params.items()):
            if name.startswith(prefix):
                yield Completion(name, -len(prefix), display_meta=spec_hint(spec))
        hidden = prefix.startswith("_")
        for name in sorted(set(dir(obj)) - set(params)):
            if name.startswith(prefix) and (hidden or not name.startswith("_")):
                yield Completion(name, -len(prefix))

    def _names(self, prefix: str) -> Iterator[Completion]:
        names = set(self.namespace) | set(dir(builtins)) | set(keyword.kwlist)
        for name in sorted(names):
            if name.startswith(prefix) and not name.startswith("_") and name != prefix:
                yield Completion(name, -len(prefix))


def _open_string(text: str) -> str | None:
    """The text of a string literal left open at the cursor, or None if not in a string."""
    match = _STRING.search(text)
    if match is None:
        return None
    before = text[: match.start()]
    quote = match.group(1)
    return match.group(2) if before.count(quote) % 2 == 0 else None

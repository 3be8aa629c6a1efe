"""The layer rules, checked by reading every import in livernn/ (docs/ARCHITECTURE.md).

Every import counts, wherever it is: at the top, inside a function, or under
``TYPE_CHECKING`` (a type-only import still ties the layers together for a reader and
for mypy). The rules:

- the engine knows no controls, patch files or REPL;
- outputs know no engine or controls;
- controls know no outputs or REPL;
- the model knows no engine or training stack;
- ``livernn.api`` knows no REPL;
- no two modules of the engine, the outputs or the controls import each other.

Neutral modules that more than one layer needs live outside them (``livernn.bus``,
``livernn.midi_system``, ``livernn.realtime``, ``livernn.errors``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "livernn"

FORBIDDEN = {
    "livernn.engine": ("livernn.controls", "livernn.patch", "livernn.repl"),
    "livernn.outputs": ("livernn.engine", "livernn.controls"),
    "livernn.controls": ("livernn.outputs", "livernn.repl"),
    "livernn.model": ("livernn.engine", "livernn.train"),
    "livernn.api": ("livernn.repl",),
}
NO_MUTUAL = ("livernn.engine", "livernn.outputs", "livernn.controls")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """Each livernn module -> the livernn modules (or packages) it imports, by name."""
    found: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names.add(base)
                # ``from livernn import outputs`` imports the module livernn.outputs
                names.update(f"{base}.{alias.name}" for alias in node.names)
        found[module] = {n for n in names if n == "livernn" or n.startswith("livernn.")}
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _real(name: str, modules: set[str]) -> str | None:
    """The module an imported name stands for (``livernn.x.y.Thing`` -> ``livernn.x.y``)."""
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name if name in modules else None


GRAPH = imports()


def test_the_import_reader_sees_imports_of_every_kind():
    # a function-level import, a TYPE_CHECKING one and a ``from package import module``
    assert "livernn.outputs.midi_port" in GRAPH["livernn.outputs.midi_sender"]  # inside main()
    assert "livernn.model" in GRAPH["livernn.engine.session"]
    assert "livernn.engine.clock" in GRAPH["livernn.engine"]
    assert len(GRAPH) > 50


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_rules(layer):
    broken = [
        f"{module} imports {name}"
        for module, names in GRAPH.items() if _within(module, layer)
        for name in sorted(names) for banned in FORBIDDEN[layer] if _within(name, banned)
    ]
    assert not broken, f"{layer} knows no {', '.join(FORBIDDEN[layer])}:\n" + "\n".join(broken)


@pytest.mark.parametrize("layer", NO_MUTUAL)
def test_no_two_modules_of_a_layer_import_each_other(layer):
    modules = set(GRAPH)
    edges = {
        (module, real)
        for module, names in GRAPH.items() if _within(module, layer) and module != layer
        for real in (_real(n, modules) for n in names) if real and real != module and real != layer
    }
    mutual = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not mutual, "\n".join(mutual)

"""The documents cite tests that exist: every ``tests/test_x.py::name[param]`` in
SECURITY.md and RELIABILITY.md is a test pytest collects.

A bare ```::name``` cites a test of the file cited before it in the same line. A bare
```[param]``` after a cited test (``[SIGHUP]``, ``(and [random], [empty])``) names another
case of the test cited before it in the same line, as the tables write them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = ("SECURITY.md", "RELIABILITY.md")
TOKEN = re.compile(r"`(tests/test_\w+\.py)?::(\w+)(\[[^\]`]*\])?`|`(\[[^\]`]*\])`")


def cited() -> dict[str, list[str]]:
    """Node ids cited, each with the document lines that cite it."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for n, line in enumerate((REPO / doc).read_text(encoding="utf-8").splitlines(), 1):
            current = None
            for m in TOKEN.finditer(line):
                if m.group(2):  # `tests/test_x.py::name`, or `::name` in the file cited before it
                    file = m.group(1) or (current.split("::")[0] if current else "?")
                    current = f"{file}::{m.group(2)}"
                    node = current + (m.group(3) or "")
                elif current is not None:
                    node = current + m.group(4)
                else:
                    continue
                found.setdefault(node, []).append(f"{doc}:{n}")
    return found


def collected(files: set[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          *sorted(files)], cwd=REPO, capture_output=True, text=True, timeout=300)
    ids = {line.strip() for line in out.stdout.splitlines() if "::" in line}
    assert ids, out.stdout[-2000:] + out.stderr[-2000:]
    return ids


def defined(file: str) -> set[str]:
    """``file::test_name`` for each test function the file defines (read, not imported)."""
    tree = ast.parse((REPO / file).read_text(encoding="utf-8"))
    return {f"{file}::{n.name}" for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")}


def test_every_test_cited_in_security_and_reliability_exists():
    citations = cited()
    assert len(citations) > 40  # the tables were read
    functions = set().union(*(defined(f) for f in {node.split("::")[0] for node in citations}))
    # Parametrized cases need pytest's own ids: collect only the files cited with one.
    ids = collected({node.split("::")[0] for node in citations if "[" in node})
    missing = {node: where for node, where in citations.items()
               if node not in (ids if "[" in node else functions)}
    assert not missing, "cited but not collected:\n" + "\n".join(f"{k}  ({', '.join(v)})" for k, v in missing.items())


def test_nothing_reads_the_shared_folder_beside_the_checkout():
    """A user's clone has no shared folder beside it: the package and the tests carry what they need."""
    needle = re.compile(r"\.\./" + "shared|" + r"parent\s*/\s*[\"']" + "shared")
    offenders = [str(p.relative_to(REPO)) for folder in ("livernn", "tests") for p in (REPO / folder).rglob("*.py")
                 if needle.search(p.read_text(encoding="utf-8"))]
    assert not offenders

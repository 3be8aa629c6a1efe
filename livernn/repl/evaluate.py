"""Running what the performer typed: top-level ``await``, echo of values, short tracebacks.

User code runs in the REPL's own thread (the asyncio loop that also draws the prompt); the
engine's sender has its own thread, so a slow line delays the prompt, never a note. An
exception prints the user's frames only and leaves the namespace and the show as they were;
a ``LivernnError`` prints as one line, as everywhere else in livernn, and so does a name
typed wrong (``tmepo(96)``: ``name 'tmepo' is not defined; did you mean 'tempo'?``): on
stage a misspelling needs the fix, not a traceback. So does an error raised by a one-line
input itself (``record()``: ``TypeError: record() missing 1 required positional argument:
'path'``), where the traceback would only repeat the line just typed.
"""

from __future__ import annotations

import ast
import asyncio
import codeop
import inspect
import linecache
import sys
import traceback
from collections.abc import Callable
from types import CodeType
from typing import Any, TextIO

from livernn.errors import LivernnError, nearest

FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
FILENAME_PREFIX = "<repl-"


def is_complete(source: str) -> bool:
    """True when ``source`` should run on Enter; False when it needs another line.

    Mirrors the Python prompt: an open bracket or a compound statement without its closing
    blank line continues; a syntax error is "complete" so that it gets reported.
    """
    if not source.strip():
        return True
    lines = source.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        return True  # a blank line closes a block, as in the Python prompt
    compiler = codeop.CommandCompiler()
    compiler.compiler.flags |= FLAGS
    try:
        return compiler(source, "<input>", "single") is not None
    except (SyntaxError, ValueError, OverflowError):
        return True


class Evaluator:
    """Compiles and runs inputs in one namespace, numbering them so tracebacks show source."""

    def __init__(self, namespace: dict[str, Any], out: Callable[[], TextIO] = lambda: sys.stdout):
        self.namespace = namespace
        self._out = out
        self.count = 0  # inputs evaluated (tests wait on it)
        self.exit_code: int | None = None  # set when the code asked to leave (quit())
        self._noted: set[str] = set()  # parameter names already said to be plain Python names

    def _register(self, source: str) -> str:
        """Give the input a file name and put its text in linecache for tracebacks/inspect."""
        filename = f"{FILENAME_PREFIX}{self.count + 1}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        return filename

    def compile(self, source: str) -> tuple[CodeType | None, CodeType | None]:
        """Compile ``source`` into (statements, final expression whose value is echoed)."""
        filename = self._register(source)
        tree = ast.parse(source, filename, "exec", type_comments=False)
        last: ast.expr | None = None
        if tree.body and isinstance(final := tree.body[-1], ast.Expr):
            tree.body.pop()
            last = final.value
        body = compile(tree, filename, "exec", flags=FLAGS) if tree.body else None
        expr = (
            compile(ast.Expression(last), filename, "eval", flags=FLAGS) if last is not None else None
        )
        return body, expr

    async def run(self, source: str) -> None:
        """Evaluate one input. Exceptions are printed; ``SystemExit`` sets ``exit_code``.

        Nothing propagates: a task that raised SystemExit would stop the whole event loop.
        """
        try:
            try:
                body, expr = self.compile(source)
                if body is not None:
                    await self._exec(body)
                    self._note_parameter_names(source)
                if expr is not None:
                    value = await self._exec(expr)
                    if value is not None:
                        self.namespace["_"] = value
                        print(_echo(value), file=self._out())
            except SystemExit as exc:
                self.exit_code = exc.code if isinstance(exc.code, int) else 0
            except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C: in a loop, or in an await
                print("KeyboardInterrupt", file=self._out())
            except BaseException as exc:  # noqa: BLE001 - the prompt survives anything typed
                if isinstance(exc, GeneratorExit):
                    raise
                self.report(exc)
        finally:
            self.count += 1

    def _note_parameter_names(self, source: str) -> None:
        """``scale = 'dorian'`` at the top level makes a Python variable and changes no voice:
        said once per name, with the line that does (the voice's attribute)."""
        from livernn.engine.params import PARAM_SPECS

        names = {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign | ast.AnnAssign)
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                 if isinstance(t, ast.Name)}
        for name in sorted(names & set(PARAM_SPECS) - self._noted):
            self._noted.add(name)
            print(f"note: {name} is now just a Python variable, no voice changed; to change a voice, "
                  f"set v.{name} (v = voice('lead'))", file=self._out())

    async def _exec(self, code: CodeType) -> Any:
        result = eval(code, self.namespace)  # noqa: S307 - this is the REPL
        if code.co_flags & inspect.CO_COROUTINE:
            result = await result
        return result

    def report(self, exc: BaseException) -> None:
        """Print ``exc``: one line for a LivernnError, else the user's frames and the error."""
        print(format_error(exc, self.namespace), file=self._out(), end="")


def _echo(value: Any) -> str:
    """What a value typed at the prompt shows: its repr, except that one of livernn's own
    commands typed without its parentheses (``quit``, ``status``, ``panic``), which would do
    nothing at all, says how to run it (as Python's own ``quit`` does)."""
    if inspect.isfunction(value) and str(getattr(value, "__module__", "")).startswith("livernn."):
        name = value.__name__
        return f"{name} is a command: type {name}() to run it (help({name}) says what it takes)"
    return repr(value)


def format_error(exc: BaseException, namespace: dict[str, Any] | None = None) -> str:
    """The short report: user frames only (none for a LivernnError), then the error line."""
    if isinstance(exc, LivernnError):
        return f"error: {exc}\n"
    if type(exc) is NameError and namespace is not None:
        line = _misspelt_name(exc, namespace)
        if line is not None:
            return line
    if isinstance(exc, SyntaxError) and str(exc.filename).startswith(FILENAME_PREFIX):
        return "".join(traceback.format_exception_only(exc))
    stack = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in stack if f.filename.startswith(FILENAME_PREFIX)]
    if len(frames) == 1 and stack[-1] is frames[0] and len(linecache.getlines(frames[0].filename)) == 1:
        # Raised by the one line just typed itself (``record()``: a missing argument), not
        # inside anything it called: a traceback would only repeat that line.
        return "".join(traceback.format_exception_only(exc))
    head = "Traceback (your code):\n" + "".join(traceback.format_list(frames)) if frames else ""
    return head + "".join(traceback.format_exception_only(exc))


def _misspelt_name(exc: NameError, namespace: dict[str, Any]) -> str | None:
    """One line for a name typed wrong in the user's own code, with the nearest known name
    (the prompt's names, then Python's builtins), and the input line when it had several."""
    import builtins

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(FILENAME_PREFIX)]
    name = getattr(exc, "name", None)
    if not frames or not isinstance(name, str):
        return None  # raised from inside a library: a bug, keep its traceback
    last = frames[-1]
    known = [n for n in namespace if not n.startswith("_")] + [n for n in dir(builtins) if not n.startswith("_")]
    guess = nearest(name, known)
    text = f"name {name!r} is not defined" + (f"; did you mean {guess!r}?" if guess else "")
    lines = linecache.getlines(last.filename)
    inside = f", in {last.name}" if last.name != "<module>" else ""
    where = f" (line {last.lineno}{inside})" if len(lines) > 1 or len(frames) > 1 else ""
    return f"{text}{where}\n"

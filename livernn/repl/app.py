"""The prompt: an asyncio prompt_toolkit session in front of the running engine.

``prompt_async`` under ``patch_stdout`` keeps the prompt at the bottom while notes, prints
and errors scroll above it; the bottom toolbar is a live status line redrawn a few times a
second. Enter runs the input when it is complete and opens a continuation line when it is
not. Ctrl-C clears the line (or interrupts running code), never the show; Ctrl-D or
``quit()`` leaves (``livernn.repl.run_repl`` then ends every note, as it does on SIGTERM
and SIGHUP).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.patch_stdout import patch_stdout
from pygments.lexers.python import PythonLexer

from livernn.repl.complete import LivernnCompleter
from livernn.repl.evaluate import FILENAME_PREFIX, Evaluator, is_complete

DEFAULT_HISTORY = Path("~/.livernn_history")


def history_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The history file: the argument, else $LIVERNN_HISTORY, else ~/.livernn_history."""
    chosen = path or os.environ.get("LIVERNN_HISTORY") or DEFAULT_HISTORY
    return Path(chosen).expanduser()


def _bindings() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.document.is_cursor_at_the_end and is_complete(buffer.text):
            buffer.validate_and_handle()
            return
        line = buffer.document.current_line_before_cursor
        indent = line[: len(line) - len(line.lstrip())]
        if line.rstrip().endswith(":"):
            indent += "    "
        buffer.insert_text("\n" + indent)

    @keys.add("escape", "enter")
    def _run_now(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    return keys


class Repl:
    """Reads, evaluates and prints in ``namespace`` until Ctrl-D or ``quit()``."""

    def __init__(
        self,
        namespace: dict[str, Any],
        *,
        history: Path | None = None,
        toolbar: Callable[[], str] | None = None,
        string_names: Callable[[], Iterable[str]] = lambda: (),
        on_exit: Callable[[], None] = lambda: None,
        refresh_interval: float = 0.25,
        banner: str = "",
    ) -> None:
        self.namespace = namespace
        self.evaluator = Evaluator(namespace)
        self.on_exit = on_exit
        self.banner = banner
        self._task: asyncio.Task[None] | None = None
        self.prompt: PromptSession[str] = PromptSession(
            message="livernn> ",
            prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
            multiline=True,
            key_bindings=_bindings(),
            history=FileHistory(str(history)) if history else InMemoryHistory(),
            completer=LivernnCompleter(namespace, string_names),
            complete_while_typing=False,
            lexer=PygmentsLexer(PythonLexer),
            bottom_toolbar=toolbar,
            refresh_interval=refresh_interval if toolbar else 0,
        )

    async def run(self, use_patch_stdout: bool = True) -> int:
        """The read-eval-print loop; returns an exit code when the performer leaves."""
        try:
            with patch_stdout(raw=True) if use_patch_stdout else nullcontext():
                if self.banner:
                    print(self.banner)
                while True:
                    try:
                        text = await self.prompt.prompt_async()
                    except KeyboardInterrupt:
                        continue  # Ctrl-C at the prompt: the line is gone, the show goes on
                    except EOFError:
                        return 0
                    if not text.strip():
                        continue
                    await self._evaluate(text)
                    if self.evaluator.exit_code is not None:
                        return self.evaluator.exit_code
        finally:
            self.on_exit()

    async def _evaluate(self, text: str) -> None:
        """Run one input as a task so Ctrl-C can cancel an ``await`` or interrupt a loop."""
        self._task = asyncio.ensure_future(self.evaluator.run(text))
        loop = asyncio.get_running_loop()
        try:
            with self._sigint(loop):
                try:
                    await asyncio.shield(self._task)
                except asyncio.CancelledError:  # the REPL itself is being shut down
                    self._task.cancel()
                    raise
        finally:
            self._task = None

    @contextmanager
    def _sigint(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """While code runs: Ctrl-C interrupts the user's frames, or cancels their ``await``."""
        if not _main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if running_user_code(frame):
                raise KeyboardInterrupt
            task = self._task
            if task is not None:
                loop.call_soon_threadsafe(task.cancel)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def running_user_code(frame: FrameType | None) -> bool:
    """Whether a signal interrupted code typed at the prompt (a frame of a REPL input):
    raising there breaks out of the performer's busy loop, and nowhere else."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(FILENAME_PREFIX):
            return True
        frame = frame.f_back
    return False


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


"""The performer's REPL: an async prompt over the running engine.

``run_repl(session)`` puts the ``livernn.api`` vocabulary, the session's voices (by name)
and a pager-free ``help`` at the prompt, shows a live status line, and ends the show
cleanly however the performer leaves (Ctrl-D, ``quit()``, SIGTERM).
"""

from __future__ import annotations

import asyncio
import pydoc
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from livernn import api
from livernn.repl.app import Repl, history_path
from livernn.repl.status import Toolbar

BANNER = (
    "livernn {version}: {voices} voice(s) at {bpm:g} BPM. Try voice('lead'), status(), help(voice);"
    " Ctrl-D or quit() ends the show."
)


def help(obj: Any = None) -> None:  # noqa: A001 - replaces the builtin at the prompt
    """Print an object's documentation (no pager: the show keeps its screen)."""
    if obj is None:
        print(pydoc.render_doc(api, "%s", renderer=pydoc.plaintext))
        return
    print(pydoc.render_doc(obj, "%s", renderer=pydoc.plaintext))


def namespace(session: Any) -> dict[str, Any]:
    """What the prompt sees: the api functions, the session's voices by name, ``help``."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    ns.update({name: getattr(api, name) for name in api.__all__})
    ns.update({"help": help, "exit": api.quit, "asyncio": asyncio})
    for name, voice in session.voices.items():
        if name.isidentifier() and name not in ns:
            ns[name] = voice
    return ns


def string_names(session: Any) -> list[str]:
    """Names worth completing inside a string: bus sources, voices, voice.param, outputs."""
    from livernn.engine import PARAM_SPECS

    names = list(session.bus.names()) + list(session.outputs)
    for voice in session.voices:
        names.append(voice)
        names.extend(f"{voice}.{param}" for param in PARAM_SPECS)
    return names


def make_repl(session: Any, runtime: Any = None, history: Path | None = None) -> Repl:
    """A prompt over ``session`` (already started) with the api vocabulary and a status line.

    ``runtime`` is the patch's ControlRuntime when the show came from a patch.
    """
    from livernn import __version__

    api.use(session, runtime)
    toolbar = Toolbar(session)
    return Repl(
        namespace(session),
        history=history_path(history),
        toolbar=toolbar,
        string_names=lambda: string_names(session),
        on_exit=lambda: (toolbar.close(), api.close()),
        banner=BANNER.format(version=__version__, voices=len(session.voices), bpm=session.tempo),
    )


async def run_repl(repl: Repl, use_patch_stdout: bool = True) -> int:
    """Run ``repl`` until the performer leaves, ticking the controls (smoothing, LFOs) meanwhile."""
    ticking = asyncio.ensure_future(api.controls().run())
    with _sigterm_ends_the_show():
        try:
            return await repl.run(use_patch_stdout=use_patch_stdout)
        finally:
            ticking.cancel()


class _Terminated(SystemExit):
    pass


class _sigterm_ends_the_show:
    """SIGTERM leaves like Ctrl-D does (the REPL's ``finally`` ends every note)."""

    def __enter__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handler)

    @staticmethod
    def _handler(signum: int, frame: Any) -> None:
        raise _Terminated(128 + signum)

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def main_repl(session: Any, runtime: Any = None, history: Path | None = None) -> int:
    """Blocking entry for the CLI: run the REPL on a fresh event loop."""
    try:
        return asyncio.run(run_repl(make_repl(session, runtime, history)))
    except _Terminated as exc:
        print("livernn: terminated, all notes ended", file=sys.stderr)
        return int(exc.code or 0)

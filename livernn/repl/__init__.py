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
    """Names worth completing inside a string: bus sources, voices, voice.param, outputs,
    and the model names ``swap(v, "...")`` and ``voice(..., model="...")`` take."""
    from livernn.engine import PARAM_SPECS
    from livernn.library import model_names

    names = list(session.bus.names()) + list(session.outputs) + model_names()
    for voice in session.voices:
        names.append(voice)
        names.extend(f"{voice}.{param}" for param in PARAM_SPECS)
    return names


def make_repl(session: Any, runtime: Any = None, history: Path | None = None, show: Any = None) -> Repl:
    """A prompt over ``session`` (already started) with the api vocabulary and a status line.

    ``runtime`` and ``show`` are the patch's ControlRuntime and Show when the show came from
    a patch (its OSC/MIDI inputs then count as open for ``patch()`` and ``status()``).
    """
    from livernn import __version__

    api.use(session, runtime, show)
    toolbar = Toolbar(session)
    return Repl(
        namespace(session),
        history=history_path(history),
        toolbar=toolbar,
        string_names=lambda: string_names(session),
        on_exit=toolbar.close,
        banner=BANNER.format(version=__version__, voices=len(session.voices), bpm=session.tempo),
    )


async def run_repl(repl: Repl, show: Any = None, use_patch_stdout: bool = True) -> int:
    """Run ``repl`` until the performer leaves, then end the show (every note, the recording).

    With a ``show`` (from a patch) its file is watched and reloaded on save, as in
    ``perform``; without one, the controls made at the prompt are ticked here.
    """
    stop = asyncio.Event()
    if show is None:
        background = asyncio.ensure_future(api.controls().run(stop))
    else:
        background = asyncio.ensure_future(show.watch(stop))
    try:
        with _sigterm_ends_the_show():
            return await repl.run(use_patch_stdout=use_patch_stdout)
    finally:
        stop.set()
        background.cancel()
        if show is not None:
            await show.close()
        api.close()


class _Terminated(SystemExit):
    """SIGTERM: leave like Ctrl-D does (the ``finally`` above ends every note)."""


class _sigterm_ends_the_show:
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


async def _main(patch: Path | None, bpm: float | None, history: Path | None) -> int:
    from livernn.repl.build import open_show

    session, show = await open_show(patch, bpm)
    repl = make_repl(session, show.runtime if show else None, history, show)
    return await run_repl(repl, show)


def main_repl(patch: Path | None = None, bpm: float | None = None, history: Path | None = None) -> int:
    """Blocking entry for the CLI: build the show (from ``patch``) and run the prompt."""
    try:
        return asyncio.run(_main(patch, bpm, history))
    except _Terminated as exc:
        print("livernn: terminated, all notes ended", file=sys.stderr)
        return int(exc.code or 0)

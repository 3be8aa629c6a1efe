"""The performer's REPL: an async prompt over the running engine.

``run_repl(session)`` puts the ``livernn.api`` vocabulary, the session's voices (by name)
and a pager-free ``help`` at the prompt, shows a live status line, and ends the show
cleanly however the performer leaves (Ctrl-D, ``quit()``, SIGTERM, a closed terminal).
"""

from __future__ import annotations

import asyncio
import errno
import pydoc
import re
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from livernn import api
from livernn.engine.signals import STOP_SIGNALS, StopHandler
from livernn.repl.app import Repl, history_path, running_user_code
from livernn.repl.status import Toolbar

# Every stop signal but Ctrl-C, which stays the prompt's: it clears the line or interrupts code.
PROMPT_STOP_SIGNALS = tuple(sig for sig in STOP_SIGNALS if sig != signal.SIGINT)
HANGUP_EXIT = 129  # a closed terminal, as a shell reports SIGHUP: 128 + 1
# help() without bold overstrikes; typeshed does not declare pydoc.plaintext (a module-level _PlainTextDoc).
_PLAIN = pydoc.plaintext  # type: ignore[attr-defined]

BANNER = (
    "livernn {version}: {voices} voice(s) at {bpm:g} BPM. Try voice('lead'), status(), help(voice);"
    " Ctrl-D or quit() ends the show."
)


def help(obj: Any = None) -> None:  # noqa: A001 - replaces the builtin at the prompt
    """Print an object's documentation (no pager: the show keeps its screen)."""
    if obj is None:  # the vocabulary, not how livernn/api/ is laid out in modules
        print(re.sub(r"\nPACKAGE CONTENTS\n(?:    .*\n)+", "", pydoc.render_doc(api, "%s", renderer=_PLAIN)))
        return
    print(pydoc.render_doc(obj, "%s", renderer=_PLAIN))


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
    ``perform``; without one, the controls made at the prompt are ticked here. SIGTERM and
    SIGHUP (a closed terminal) end the show too and return 143 and 129; Ctrl-C stays the
    prompt's (it clears the line or interrupts the running code).
    """
    done = asyncio.Event()
    if show is None:
        background = asyncio.ensure_future(api.controls().run(done))
    else:
        background = asyncio.ensure_future(show.watch(done))
    with StopHandler(api.close, signals=PROMPT_STOP_SIGNALS, interrupt=_leave_user_code) as stopping:
        try:
            code = await _prompt(repl, stopping, use_patch_stdout)
        finally:
            done.set()
            background.cancel()
            if show is not None:
                await show.close()
    if stopping.requested:
        _say("livernn: terminated, all notes ended")
    return code


async def _prompt(repl: Repl, stopping: StopHandler, use_patch_stdout: bool) -> int:
    """The prompt as a task a stop signal cancels; after a signal, that signal's exit code
    (however the prompt ended: cancelled, left by the interrupted code, or at the EOF of a
    terminal that hung up). A terminal that is gone (EIO) ends the show as SIGHUP does,
    also when no SIGHUP comes (a parent that ignores it) or it comes after the prompt saw."""
    prompt = asyncio.ensure_future(repl.run(use_patch_stdout=use_patch_stdout))
    stopping.on_request(prompt.cancel)
    try:
        code = await prompt
    except asyncio.CancelledError:
        if not stopping.requested:
            raise
    except OSError as exc:
        if not stopping.requested and exc.errno != errno.EIO:
            raise
        return stopping.exit_code or HANGUP_EXIT
    return stopping.exit_code if stopping.requested else code


def _leave_user_code(signum: int, frame: FrameType | None) -> None:
    """A stop signal during a busy loop typed at the prompt ends that code (the loop would
    otherwise hold the prompt, and the show, until it finished)."""
    if running_user_code(frame):
        raise SystemExit  # the prompt then ends; _prompt answers with the signal's exit code


def _say(line: str) -> None:
    """A line on stderr, which may be a terminal that has closed (SIGHUP)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


async def _main(patch: Path | None, bpm: float | None, history: Path | None) -> int:
    if patch is None:
        from livernn.engine import Session

        session, show = Session(bpm=120.0 if bpm is None else bpm).start(), None
    else:
        from livernn.patch.show import open_show

        show = await open_show(patch, bpm=bpm, report=lambda line: print(f"livernn: {line}"))
        session = show.session
    repl = make_repl(session, show.runtime if show else None, history, show)
    return await run_repl(repl, show)


def main_repl(patch: Path | None = None, bpm: float | None = None, history: Path | None = None) -> int:
    """Blocking entry for the CLI: build the show (from ``patch``) and run the prompt."""
    return asyncio.run(_main(patch, bpm, history))

"""The one running Session the vocabulary drives, its ControlRuntime, and ending both.

``_state`` holds what the other modules of ``livernn.api`` share: the session, the runtime,
the patch's Show, and what the prompt opened (inputs, trackers, the web page, the player
feed), so that ``close()`` ends all of it.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any

from livernn.errors import LivernnError, kind_of, unknown

if TYPE_CHECKING:  # completion and mypy see the real types; importing stays lazy
    from livernn.controls.runtime import ControlRuntime
    from livernn.engine import Session
    from livernn.patch import Show


_state: dict[str, Any] = {"session": None, "runtime": None, "show": None, "trackers": [], "solo": None,
                          "osc_in": [], "midi_in": []}


# -- the session ------------------------------------------------------------------------

def session() -> Session:
    """The running Session, started on first use (120 BPM, the engine's default lookahead).

    One session per process: the REPL, scripts and patch files all play into it.
    """
    current = _state["session"]
    if current is None:
        from livernn.engine import Session

        current = use(Session())
        current.start()
    return current


def use(new_session: Session, runtime: ControlRuntime | None = None, show: Show | None = None) -> Session:
    """Make ``new_session`` (already built, e.g. from a patch) the one these functions drive.

    ``runtime`` is the patch's ControlRuntime, so ``patch()`` and ``scene()`` extend it;
    ``show`` is the patch's Show, whose OSC and MIDI inputs ``patch()`` and ``status()``
    then count as open (its inputs stay the show's to open and close).

    While another session plays, ``use`` refuses (one line, the show plays on): dropping it
    would leave its notes, outputs and recording running with nothing here to reach them,
    and stopping it would end the music on a line typed to do something else. Stop it first
    (``session().stop()`` ends every note and saves the recording), then ``use`` the new one.
    ``use(None)`` forgets the session without stopping it: for its owner (a test, a patch's
    Show), who stops it.
    """
    if new_session is not None and not hasattr(new_session, "voices"):  # use('folk'): every call after failed
        raise LivernnError(f"use takes a Session (a show built from a patch), got {kind_of(new_session)}; "
                           "a model plays on a voice: voice('lead', 'folk') or swap(v, 'folk')")
    current = _state["session"]
    if new_session is not None and current is not None and current is not new_session and current.playing:
        voices = ", ".join(current.voices) or "none"
        raise LivernnError(f"a session is playing here (voices: {voices}); stop it first with "
                           "session().stop(), which ends every note, then use the new one")
    _state.update(session=new_session, runtime=runtime, show=show, solo=None)
    return new_session


def quit() -> None:  # noqa: A001 - the performer types quit(), as in Python
    """End the show: stop gesture tracking, end every note, close outputs and the recording."""
    close()
    raise SystemExit(0)


def close() -> None:
    """Stop everything this module started (called by quit(), Ctrl-D, SIGTERM, and at exit)."""
    for tracker in _state["trackers"]:
        tracker.stop()
    _state["trackers"] = []
    for opened in [*_state["osc_in"], *(m for _, m in _state["midi_in"]), *_state.pop("web", [])]:
        opened.close()
    _state.update(osc_in=[], midi_in=[])
    if _state.get("feed") is not None:
        _state.pop("feed").close()
    runtime, current = _state["runtime"], _state["session"]
    _state.update(session=None, runtime=None, show=None, solo=None)
    if runtime is not None:
        runtime.close()
    if current is not None:
        current.stop()


atexit.register(close)


# -- controls ----------------------------------------------------------------------------

def controls() -> ControlRuntime:
    """The ControlRuntime wiring the bus to voices (the patch's, or one made here)."""
    if _state["runtime"] is None:
        from livernn.controls.runtime import ControlRuntime

        _state["runtime"] = ControlRuntime(session(), resolve_model=_remote_model)
    return _state["runtime"]


def _remote_model(name: str) -> str:
    """A model a remote ``/livernn/swap`` may name: one reachable by name (shipped or the
    user's, ``livernn models``), never a path: a controller must not make this process
    open a file of its choosing."""
    from livernn.library import models as reachable

    found = {entry.name: entry.path for entry in reachable()}
    if name not in found:
        raise unknown("model", name, found)
    return str(found[name])

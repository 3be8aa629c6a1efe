"""Models and voices: ``load``, ``models``, ``voice``, ``swap`` and ``learn``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livernn.api.core import session
from livernn.api.outputs import midi
from livernn.controls.actions import SWAP_AT
from livernn.errors import LivernnError, unknown

if TYPE_CHECKING:  # completion and mypy see the real types; importing stays lazy
    from livernn.engine import Voice
    from livernn.engine.learn import LearnJob
    from livernn.engine.voice import ModelLike
    from livernn.model.generator import LoadedModel


SWAP_POLICIES = ("ring", "cut")


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a model: a name (``"folk"``; ``models()`` lists them) or a directory with
    model.safetensors + config.json (or either file).

    Loading is checked (foreign, corrupt or oversized files are refused with one line);
    pass the result to ``voice(..., model=m)`` or ``swap(v, m)`` to play it.
    """
    from livernn.model import load_model

    return load_model(path if isinstance(path, str) else Path(path))  # a string may be a name ("folk")


class Models(str):
    """``models()``'s listing: a string that shows itself as the table at the prompt."""

    def __repr__(self) -> str:
        return str(self)


def models() -> Models:
    """The models a name reaches (``swap(v, "folk")``), with each card's one-line summary:
    the shipped ones, then the user's folder ($LIVERNN_MODELS or the user data folder)."""
    from livernn.commands.models import table

    return Models(table())


def voice(name: str, model: str | Path | ModelLike | None = None, out: Any = None, channel: int = 1,
          **params: Any) -> Voice:
    """Start a voice (or retune the one already called ``name``) and return it.

    ``model``: None for the shipped model, a path, or what ``load`` returned.
    ``out``: an output (``midi("synth")``), an output's name, or a list of them; None means
    every output the session has, or a new MIDI port "livernn" when it has none.
    ``params``: any voice parameter (``temperature=1.2``, ``scale="minor"``; see
    ``PARAM_SPECS``). On an existing voice, the parameters are set and a different ``model``
    is swapped in at the next bar.
    """
    s = session()
    existing = s.voices.get(name)
    if existing is not None:
        existing.update(**params)
        if model is not None:
            swap(existing, model)
        return existing
    outputs = _outputs(s, out, name)
    return s.add_voice(name, model=model, outputs=outputs, channel=channel, **params)


def _outputs(s: Any, out: Any, name: str = "lead") -> Any:
    """What ``voice(out=...)`` plays on; names and Output objects are the session's to resolve."""
    if out is None:
        if s.outputs:
            return list(s.outputs.values())
        try:
            return [midi("livernn")]
        except LivernnError as exc:  # no MIDI here: say what else plays, in the same line
            raise LivernnError(f"{exc}; or play over OSC: voice({name!r}, out=scsynth()) "
                               f"or out=superdirt()") from None
    return list(out) if isinstance(out, list | tuple) else [out]


def _voice(v: Voice | str) -> Voice:
    """A Voice from a Voice or its name, with an error that lists the voices."""
    s = session()
    if isinstance(v, str):
        found = s.voices.get(v)
        if found is None:
            raise unknown("voice", v, s.voices)
        return found
    if getattr(v, "name", None) in s.voices and s.voices[v.name] is v:
        return v
    raise LivernnError(f"expected a voice or a voice's name, got {v!r}")


class Swap:
    """A model swap on its way: ``await`` it in the REPL, or ``.result()`` in a script.

    It finishes when the new model has taken over (at the boundary asked for); if loading
    failed, the old model is still playing and awaiting raises the one-line reason.
    """

    def __init__(self, future: concurrent.futures.Future[Any], voice: str, model: str | Path | ModelLike) -> None:
        self.future = future
        self.label = f"{voice} <- {getattr(model, 'name', model)}"

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self.future).__await__()

    def result(self, timeout: float | None = 30.0) -> Any:
        return self.future.result(timeout)

    def done(self) -> bool:
        return self.future.done()

    def __repr__(self) -> str:
        if not self.future.done():
            return f"<swap {self.label}: pending>"
        exc = self.future.exception()
        return f"<swap {self.label}: {'failed: ' + str(exc) if exc else 'done'}>"


def swap(v: Voice | str, model: str | Path | ModelLike, at: str = "bar", policy: str = "ring") -> Swap:
    """Hot-swap a voice's model at the next ``"bar"``, ``"beat"`` or ``"now"``.

    The new model is loaded, warmed up and primed with the voice's recent notes off the
    clock; notes sounding at the swap ring out (``policy="ring"``) or end (``"cut"``).
    """
    if at not in SWAP_AT:
        raise unknown("swap boundary", at, SWAP_AT)
    if policy not in SWAP_POLICIES:
        raise unknown("swap policy", policy, SWAP_POLICIES)
    target = _voice(v)
    future = session().swap(target, model, at=at, policy=policy)
    return Swap(future, target.name, model)


def learn(v: Voice | str, bars: float = 32, seconds: float = 60.0, steps: int | None = None) -> LearnJob:
    """Fine-tune a voice's model on what it (and, listening, its player) played in the last
    ``bars`` bars, then hot-swap the result in at the next bar; the show plays on meanwhile.

    The training runs in a process of its own at low priority (on a CUDA GPU where there is
    one) for at most ``seconds`` (``steps`` caps the steps too). The new model is saved in your
    models folder as ``<model>-learn-<n>`` (``models()`` lists it, with what it was tuned on).
    Returns the job at once: ``job.cancel()``, ``job.wait()``, ``status()`` shows it, and one
    line says how it ended; if it fails or is cancelled, the old model plays on.
    """
    return session().learn(_voice(v), bars=bars, seconds=seconds, steps=steps, report=print)

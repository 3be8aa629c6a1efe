"""The actions a show can be told to do: one table, read by every way in.

A trigger crossing its threshold, a remote ``/livernn/...`` OSC command, a patch file's
``[[triggers]]`` and the prompt's ``scene()``, ``tempo()``, ``panic()``, ``mute()`` all
name an action of ``ACTIONS``. Each entry says which arguments the action takes, what a
remote controller may send for each (types, never a bool), what each must name (a voice,
a scene, a model: checked against the patch when it loads, against the running show when
the action runs), and what the action does to a ``ControlRuntime``. So a new action is one
entry here: the trigger, the OSC commands, the patch schema and the runtime all look it up.

Models are named, never given as paths (the runtime resolves a name from the patch's list
or the models folders): a trigger or a controller must not make the show open a file of
its choosing. The prompt's ``swap()`` is the performer's own hand and takes any model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from livernn.engine.session import SWAP_AT
from livernn.errors import LivernnError, unknown

PREFIX = "/livernn/"  # a remote command's address: PREFIX + the action's name


class _Session(Protocol):
    def panic(self) -> None: ...

    def set_tempo(self, bpm: float) -> None: ...


class ControlRuntime(Protocol):
    """What an action does its work on (``livernn.controls.runtime.ControlRuntime`` is one):
    a protocol, so this module and the runtime do not import each other."""

    @property
    def session(self) -> _Session: ...

    def apply_scene(self, scene: str) -> None: ...

    def swap(self, voice: str, model: str, at: str = ...) -> Any: ...

    def tune(self, voice: str, bars: float = ..., seconds: float = ...) -> Any: ...

    def find_voices(self, name: str) -> list[Any]: ...
NUMBER = (int, float)


@dataclass(frozen=True)
class Arg:
    """One argument of an action.

    ``types``: what a remote command may send for it. ``names``: the kind of name it must
    be (``"voice"``, ``"scene"``, ``"model"``, ``"parameter"``, ``"swap boundary"``);
    ``choices`` lists them when they are fixed, otherwise whoever checks supplies them (the
    patch schema: its scenes, voices, models, and the engine's parameters). ``bounds``: a
    number's range. ``value_of``: the argument naming the parameter this is a value of.
    """

    name: str
    types: type | tuple[type, ...] = str
    names: str | None = None
    choices: tuple[str, ...] | None = None
    bounds: tuple[float, float] | None = None
    value_of: str | None = None
    required: bool = True


@dataclass(frozen=True)
class Action:
    """One action: its name, arguments, whether a remote controller may send it, and what
    it does (``run(runtime, args)``, raising LivernnError when it cannot)."""

    name: str
    args: tuple[Arg, ...]
    run: Callable[[ControlRuntime, dict[str, Any]], None]
    remote: bool = True

    @property
    def address(self) -> str:
        """The OSC address of its remote command."""
        return PREFIX + self.name

    @property
    def required(self) -> tuple[Arg, ...]:
        """The arguments it cannot do without: a remote command sends exactly these, in order."""
        return tuple(a for a in self.args if a.required)


def _scene(runtime: ControlRuntime, args: dict[str, Any]) -> None:
    """Apply a scene of the patch, by name or by 0-based index."""
    runtime.apply_scene(args["scene"])


def _panic(runtime: ControlRuntime, _args: dict[str, Any]) -> None:
    """End every sounding note on every output."""
    runtime.session.panic()


def _tempo(runtime: ControlRuntime, args: dict[str, Any]) -> None:
    runtime.session.set_tempo(args["bpm"])  # the clock checks it (a number, 1..999)


def _swap(runtime: ControlRuntime, args: dict[str, Any]) -> None:
    """Swap a voice's model, named (never a path), at the next bar, beat or now."""
    at = str(args.get("at", "bar"))
    if at not in SWAP_AT:
        raise unknown("swap boundary", at, SWAP_AT)
    runtime.swap(str(args["voice"]), str(args["model"]), at)


def _learn(runtime: ControlRuntime, args: dict[str, Any]) -> None:
    """Fine-tune a voice's model (``*``: each voice's) on what was played in the last
    ``bars`` bars, within ``seconds``, then swap it in at a bar (livernn.engine.learn)."""
    for voice in runtime.find_voices(str(args["voice"])):
        runtime.tune(voice.name, args.get("bars", 32), args.get("seconds", 60))


def _muting(muted: bool | None) -> Callable[[ControlRuntime, dict[str, Any]], None]:
    """Mute (True), unmute (False) or toggle (None) one voice, or every voice for ``*``."""

    def run(runtime: ControlRuntime, args: dict[str, Any]) -> None:
        for voice in runtime.find_voices(str(args.get("voice", "*"))):
            voice.set("mute", (not voice.params.mute) if muted is None else muted)

    return run


def _param(runtime: ControlRuntime, args: dict[str, Any]) -> None:
    """Set one parameter of a voice, clamped to its range (``*``: the first voice)."""
    voice = runtime.find_voices(str(args["voice"]))[0]
    voice.set(str(args["param"]), args["value"], clamp=True)


_VOICE = Arg("voice", str, names="voice")
ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("scene", (Arg("scene", (int, float, str), names="scene"),), _scene),
    Action("swap", (_VOICE, Arg("model", str, names="model"),
                    Arg("at", str, names="swap boundary", choices=SWAP_AT, required=False)), _swap),
    # Not remote: it writes a model file and keeps a core busy for a minute (a trigger may).
    Action("learn", (_VOICE, Arg("bars", NUMBER, bounds=(1, 1024), required=False),
                     Arg("seconds", NUMBER, bounds=(1, 3600), required=False)), _learn, remote=False),
    Action("panic", (), _panic),
    Action("mute", (_VOICE,), _muting(True)),
    Action("unmute", (_VOICE,), _muting(False)),
    Action("toggle_mute", (_VOICE,), _muting(None), remote=False),
    Action("tempo", (Arg("bpm", NUMBER, bounds=(1, 999)),), _tempo),
    Action("param", (_VOICE, Arg("param", str, names="parameter"),
                     Arg("value", (int, float, str), value_of="param")), _param),
)}
ARG_NAMES = tuple(dict.fromkeys(arg.name for action in ACTIONS.values() for arg in action.args))


def action(name: str) -> Action:
    """The action called ``name``, or the one-line did-you-mean error."""
    found = ACTIONS.get(name)
    if found is None:
        raise unknown("action", name, ACTIONS)
    return found


def perform(runtime: ControlRuntime, name: str, args: dict[str, Any]) -> None:
    """Run an action now; raises LivernnError (the runtime's ``fire`` logs it instead)."""
    action(name).run(runtime, args)


def parse_remote(address: str, values: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """A remote command's (action, named arguments), its values checked for count and
    type; the rest (names, ranges) is checked when it runs. Raises LivernnError."""
    found = ACTIONS.get(address.removeprefix(PREFIX)) if address.startswith(PREFIX) else None
    if found is None or not found.remote:
        raise unknown("command", address, REMOTE)
    wanted = found.required
    if len(values) != len(wanted):
        usage = " ".join(a.name.upper() for a in wanted)
        raise LivernnError(f"{address} takes {len(wanted)} argument(s): {address} {usage}".rstrip())
    for arg, value in zip(wanted, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, arg.types):
            raise LivernnError(f"{address}: {arg.name} has the wrong type ({type(value).__name__})")
    return found.name, {arg.name: value for arg, value in zip(wanted, values, strict=True)}


REMOTE = tuple(a.address for a in ACTIONS.values() if a.remote)

"""Remote commands over OSC: ``/livernn/scene``, ``panic``, ``tempo``, ``swap``, ``param``.

A controller, Max patch or another laptop drives the show with the same actions a trigger
can fire. Arguments are checked here (types and count); the runtime checks the rest
(voice names, ranges, model names: a model is named from the patch's list or its models
folder, never given as a path). A bad command is refused with one logged line.

Commands are off unless asked for (``[osc] commands = true`` in a patch,
``listen_osc(..., commands=True)`` at the prompt): an OSC input opened only so that a
fader can move a parameter must not also let any local program stop the show, change its
tempo or swap its models. With commands off a ``/livernn/...`` message is refused with a
logged line that says how to turn them on, rather than silently doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livernn.controls.osc_in import OscIn
from livernn.controls.runtime import ControlRuntime
from livernn.errors import LivernnError, unknown

PREFIX = "/livernn/"

# address -> (action, argument names, argument types)
COMMANDS: dict[str, tuple[str, tuple[str, ...], tuple[type | tuple[type, ...], ...]]] = {
    "/livernn/scene": ("scene", ("scene",), ((int, float, str),)),
    "/livernn/panic": ("panic", (), ()),
    "/livernn/tempo": ("tempo", ("bpm",), ((int, float),)),
    "/livernn/swap": ("swap", ("voice", "model"), (str, str)),
    "/livernn/param": ("param", ("voice", "param", "value"), (str, str, (int, float, str))),
    "/livernn/mute": ("mute", ("voice",), (str,)),
    "/livernn/unmute": ("unmute", ("voice",), (str,)),
}


def parse_command(address: str, args: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """Check a command's arguments; returns (action, named args) or raises LivernnError."""
    action, names, types = COMMANDS[address]
    if len(args) != len(names):
        usage = " ".join(n.upper() for n in names)
        raise LivernnError(f"{address} takes {len(names)} argument(s): {address} {usage}".rstrip())
    for name, value, kind in zip(names, args, types, strict=True):
        if isinstance(value, bool) or not isinstance(value, kind):
            raise LivernnError(f"{address}: {name} has the wrong type ({type(value).__name__})")
    return action, dict(zip(names, args, strict=True))


def install_commands(osc: OscIn, runtime: ControlRuntime, enabled: bool) -> None:
    """Route the ``/livernn/...`` addresses of ``osc`` to ``runtime``'s actions, or, when
    not ``enabled``, refuse them all (see the module docstring)."""
    osc.commands = enabled
    if not enabled:
        def refuse(address: str, *_args: Any) -> None:
            osc.stats.refused_command += 1
            osc.warn(f"OSC {address[:80]!r} refused: remote commands are off on {osc.where}"
                     " (turn them on with [osc] commands = true, or listen_osc(..., commands=True))")

        osc.on(PREFIX + "*", refuse)
        return

    def misspelt(address: str, *_args: Any) -> None:
        if address not in COMMANDS:
            osc.stats.bad_value += 1
            osc.warn(str(unknown("command", address, COMMANDS)))

    def handler_for(address: str) -> Callable[..., None]:
        def handle(_address: str, *args: Any) -> None:
            try:
                action, named = parse_command(address, args)
            except LivernnError as exc:
                osc.stats.bad_value += 1
                osc.warn(str(exc))
                return
            runtime.fire(action, named)

        return handle

    for address in COMMANDS:
        osc.on(address, handler_for(address))
    osc.on(PREFIX + "*", misspelt)

"""Remote commands over OSC: ``/livernn/scene``, ``panic``, ``tempo``, ``swap``, ``param``.

A controller, Max patch or another laptop drives the show with the same actions a trigger
can fire. Arguments are checked here (types and count); the runtime checks the rest
(voice names, ranges, model names: a model is named from the patch's list or its models
folder, never given as a path). A bad command is refused with one logged line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livernn.controls.osc_in import OscIn
from livernn.controls.runtime import ControlRuntime
from livernn.errors import LivernnError

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


def install_commands(osc: OscIn, runtime: ControlRuntime) -> None:
    """Route the ``/livernn/...`` addresses of ``osc`` to ``runtime``'s actions."""

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

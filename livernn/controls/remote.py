"""Remote commands over OSC: ``/livernn/<action>`` runs an action of ``controls.actions``.

A controller, Max patch or another laptop drives the show with the same actions a trigger
can fire (``/livernn/scene``, ``panic``, ``tempo``, ``swap``, ``param``, ``mute``,
``unmute``: the table's remote ones), each with its required arguments in order. Their
count and types are checked here; the runtime checks the rest (voice names, ranges, model
names: a model is named from the patch's list or its models folder, never given as a
path). A bad command is refused with one logged line.

Commands are off unless asked for (``[osc] commands = true`` in a patch,
``listen_osc(..., commands=True)`` at the prompt): an OSC input opened only so that a
fader can move a parameter must not also let any local program stop the show, change its
tempo or swap its models. With commands off a ``/livernn/...`` message is refused with a
logged line that says how to turn them on, rather than silently doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livernn.controls.actions import PREFIX, REMOTE, parse_remote
from livernn.controls.osc_in import OscIn
from livernn.controls.runtime import ControlRuntime
from livernn.errors import LivernnError, unknown


def install_commands(osc: OscIn, runtime: ControlRuntime, enabled: bool) -> None:
    """Route the ``/livernn/...`` addresses of ``osc`` to ``runtime``'s actions, or, when
    not ``enabled``, refuse them all (see the module docstring)."""
    osc.commands = enabled
    if not enabled:
        def refuse(address: str, *_args: Any) -> None:
            if osc.owned(address):
                return  # not a command: a player's notes (/livernn/note, a [listen] over OSC)
            osc.stats.refused_command += 1
            osc.warn(f"OSC {address[:80]!r} refused: remote commands are off on {osc.where}"
                     " (turn them on with [osc] commands = true, or listen_osc(..., commands=True))")

        osc.on(PREFIX + "*", refuse)
        return

    def misspelt(address: str, *_args: Any) -> None:
        if address not in REMOTE and not osc.owned(address):
            osc.stats.bad_value += 1
            osc.warn(str(unknown("command", address, REMOTE)))

    def handler_for(address: str) -> Callable[..., None]:
        def handle(_address: str, *args: Any) -> None:  # _address may be a pattern (/livernn/tem*)
            try:
                action, named = parse_remote(address, args)
            except LivernnError as exc:
                osc.stats.bad_value += 1
                osc.warn(str(exc))
                return
            runtime.fire(action, named)

        return handle

    for address in REMOTE:
        osc.on(address, handler_for(address))
    osc.on(PREFIX + "*", misspelt)

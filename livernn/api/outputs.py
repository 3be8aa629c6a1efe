"""Outputs: ``midi``, ``osc``, ``scsynth``, ``superdirt`` and ``output`` (any registered kind).

Each reuses the session's output of the same kind and address rather than open a second.
"""

from __future__ import annotations

from typing import Any

from livernn.api.core import session
from livernn.errors import unknown
from livernn.outputs.base import Output


def _add(key: str, same: Any, factory: Any, *args: Any, **kwargs: Any) -> Any:
    """The session's output for which ``same(output)`` holds, else a new one under ``key``."""
    s = session()
    for output in s.outputs.values():
        if same(output):
            return output
    while key in s.outputs:
        key += "'"
    return s.add_output(key, factory(*args, **kwargs))


def midi(name: str = "livernn", create: bool = True) -> Output:
    """A MIDI output: an existing port named ``name`` (its whole name, its client's or its
    port's; else one whose name contains it), or a new virtual port. ``midi("synth")`` is
    ``synth:in`` beside ``synth2:in``; a part of two names is a one-line error naming them.

    Sent from the engine's MIDI sender process, so nothing typed here can delay a note.
    ``livernn devices`` lists the ports. Asking again for the same name (here or in the
    patch the show started from) reuses that output instead of opening a second port.
    """
    from livernn import outputs

    def same(o: Any) -> bool:
        return o.kind == "midi" and getattr(o, "name", None) == name

    return _add(name, same, outputs.midi, name, create=create)


def _udp(kind: str, factory: Any, host: str, port: int, options: dict[str, Any]) -> Any:
    from livernn.outputs.osc import parse_address

    address = parse_address(host, port)

    def same(o: Any) -> bool:
        return o.kind == kind and getattr(o, "address", None) == address

    return _add(f"{kind}:{address[0]}:{address[1]}", same, factory, address[0], address[1], **options)


def osc(host: str = "127.0.0.1", port: int = 57120, **options: Any) -> Output:
    """Notes as OSC messages, sent ahead in timestamped bundles, to ``host:port``.

    Options: ``address`` ("/livernn/note"), ``args`` (from channel, pitch, velocity,
    duration …), ``off_address``, ``off_args``, ``latency`` (s, default 0.2).
    """
    from livernn import outputs

    return _udp("osc", outputs.osc, host, port, options)


def scsynth(host: str = "127.0.0.1", port: int = 57110, **options: Any) -> Output:
    """Notes as gated synths on a SuperCollider server (the SynthDef is sent on start)."""
    from livernn import outputs

    return _udp("scsynth", outputs.scsynth, host, port, options)


def superdirt(host: str = "127.0.0.1", port: int = 57120, **options: Any) -> Output:
    """Notes as SuperDirt ``/dirt/play`` events (``sound``, ``orbit``, ``latency`` options)."""
    from livernn import outputs

    return _udp("superdirt", outputs.superdirt, host, port, options)


def output(kind: str, name: str | None = None, **options: Any) -> Output:
    """An output of any registered kind (``livernn.outputs.KINDS``), with its patch options.

    ``output("file", path="set.mid")``; a kind added by a plug-in module is reachable here
    without a function of its own. Asking again for ``name`` returns that output.
    """
    from livernn import outputs

    if kind not in outputs.KINDS:
        raise unknown("output kind", kind, outputs.KINDS)
    s = session()
    key = name or kind
    if key in s.outputs:
        return s.outputs[key]
    return s.add_output(key, outputs.build(kind, key, options, s.clock.bpm))

"""Controls wired to voices: ``patch``/``unpatch`` (mappings) and ``scene``."""

from __future__ import annotations

from typing import Any

from livernn.api.core import controls
from livernn.api.inputs import _inputs_for
from livernn.api.voices import _voice
from livernn.controls.actions import perform
from livernn.errors import LivernnError, unknown


def _target(target: str) -> tuple[str, str]:
    from livernn.engine import PARAM_SPECS

    voice_name, dot, param = str(target).partition(".")
    if not dot or not voice_name or not param:
        raise LivernnError(f"patch target must be 'voice.param' (like 'lead.temperature'), got {target!r}")
    _voice(voice_name)
    if param not in PARAM_SPECS:
        raise unknown("parameter", param, PARAM_SPECS)
    return voice_name, param


def patch(source: str, target: str, **mapping: Any) -> None:
    """Wire a control source (``"osc./1/fader1"``, ``"hand.right.pinch"``) to ``"voice.param"``.

    The verb is a patch cable's; what it makes is a *mapping*, the same thing as a patch
    file's ``[[mappings]]`` entry (``status()`` lists them under "mappings", ``unpatch``
    removes them). A "patch" everywhere else is a show file.

    Mapping options, as in patch files (``controls.mapping.build_mapping`` reads both):
    ``range=(lo, hi)`` of the input, ``out=(lo, hi)`` in the parameter's units (default:
    the parameter's whole range), ``curve`` (lin, exp, log),
    ``clip`` (clip, free, wrap, fold), ``invert``, ``smooth`` (ema, one_euro) with ``alpha``
    or ``mincutoff``/``beta``/``dcutoff``, ``quantize``, ``steps``, ``deadband``, ``rate``.
    A source that has not sent anything yet is fine: the mapping acts from its first value.

    An ``osc.*`` source with no OSC input open opens the default one (127.0.0.1:9000, remote
    commands off) and says so; a ``midi.*`` source with no MIDI input open says how to open
    one (``listen_midi('name')``) rather than guess a port. See ``listen_osc``.
    """
    from livernn.controls.mapping import build_mapping, source_problem
    from livernn.controls.runtime import Binding
    from livernn.engine import PARAM_SPECS

    voice_name, param = _target(target)
    if (problem := source_problem(str(source))) is not None:  # 'midi:cc1' would never move anything
        raise LivernnError(f"patch source: {problem}")
    shaped = build_mapping(PARAM_SPECS[param], mapping)  # the same options, checks and errors as a patch's
    _inputs_for(str(source))  # after every check: a refused mapping opens nothing
    controls().add_mapping(Binding(str(source), voice_name, param, shaped))


def unpatch(source: str | None = None, target: str | None = None) -> int:
    """Remove mappings by source, by ``"voice.param"`` target, or both; none = all. Returns how many."""
    runtime = controls()
    keep, removed = [], 0
    for b in runtime.bindings:
        hit = (source is None or b.source == source) and (target is None or f"{b.voice}.{b.param}" == target)
        if hit:
            removed += 1
        else:
            keep.append(b)
    runtime.set_mappings(keep)
    return removed


def scene(n: int | str) -> str:
    """Apply a scene from the patch, by name or by 0-based index; returns its name."""
    runtime = controls()
    perform(runtime, "scene", {"scene": n})
    assert runtime.scene is not None  # applying a scene names it, or raises
    return runtime.scene

"""Patch -> Session: build a show from a patch, or move a running one to a new patch.

``apply_patch(session, patch, runtime, old)`` changes only what differs between ``old``
and ``patch``: voices added, removed or changed (model swapped at the next bar, params
set, re-created when outputs or channel change), outputs opened or closed, and every
control binding rebuilt. Everything that can fail (opening ports, loading models) is done
first, before the running show is touched: if it fails, what was opened is closed again
and the old patch keeps playing. Shared by ``livernn perform`` and the REPL.
"""

from __future__ import annotations

from typing import Any

from livernn.controls.runtime import Binding, ControlRuntime
from livernn.engine.params import PARAM_SPECS
from livernn.outputs.base import Output
from livernn.patch.schema import AutomationSpec, OutputSpec, Patch, VoiceSpec

_KEEP_ALIVE = object()


def build_output(spec: OutputSpec, bpm: float) -> Output:
    """Open one output from its patch table (raises LivernnError if it cannot).

    Each kind builds its own (``livernn.outputs.KINDS``); MIDI goes through the sender
    process, like ``livernn.outputs.midi()``: a show's deadlines must not wait on this
    interpreter's GIL.
    """
    from livernn.outputs import build

    return build(spec.type, spec.name, spec.options, bpm)


def _model_for(patch: Patch, name: str) -> Any:
    from livernn.model import default_model_path, load_model

    path = patch.models.get(name, name)
    return load_model(default_model_path() if path == "default" else path)


def _voice_outputs(patch: Patch, voice: VoiceSpec) -> tuple[str, ...]:
    """A voice that names no outputs plays on all of them."""
    return voice.outputs or tuple(patch.outputs)


def _voice_needs_rebuild(old: Patch, new: Patch, name: str, reopened: set[str]) -> bool:
    before, after = _voice_outputs(old, old.voices[name]), _voice_outputs(new, new.voices[name])
    return before != after or old.voices[name].channel != new.voices[name].channel or bool(reopened & set(after))


def apply_patch(session: Any, patch: Patch, runtime: ControlRuntime, old: Patch | None = None) -> None:
    """Make ``session`` play ``patch``; ``old`` is the patch it plays now (None = fresh)."""
    old_outputs = old.outputs if old else {}
    old_voices = old.voices if old else {}
    reopen = {n for n, spec in patch.outputs.items() if old_outputs.get(n) != spec}
    rebuild = {
        n for n, spec in patch.voices.items()
        if old is None or n not in old_voices or _voice_needs_rebuild(old, patch, n, reopen)
    }
    swap = {
        n for n, spec in patch.voices.items()
        if old is not None and n in old_voices and n not in rebuild
        and (old_voices[n].model != spec.model or old.models.get(spec.model) != patch.models.get(spec.model))
    }

    # 1. everything that can fail, off to the side
    opened: dict[str, Output] = {}
    try:
        for name in sorted(reopen):
            opened[name] = build_output(patch.outputs[name], patch.bpm)
        loaded = {n: _model_for(patch, patch.voices[n].model) for n in sorted(rebuild)}
    except Exception:
        for output in opened.values():
            output.close()
        raise

    # 2. the running show changes
    if (old is None or old.bpm != patch.bpm) and not session.clock.source.startswith("midi:"):
        session.set_tempo(patch.bpm)  # an external MIDI clock leads the tempo
    session.clock.beats_per_bar = patch.beats_per_bar
    for name in [n for n in old_voices if n not in patch.voices or n in rebuild]:
        session.remove_voice(name)
    for name in list(session.band.clock_outs):  # clock outs go before their outputs close
        if name not in patch.clock_out or name in reopen:
            session.stop_clock_out(name)
    for name in [n for n in old_outputs if n not in patch.outputs or n in reopen]:
        session.remove_output(name)
    for name, output in opened.items():
        session.add_output(name, output)
    _apply_band(session, patch, old)
    for name in sorted(rebuild):
        spec = patch.voices[name]
        session.add_voice(name, model=loaded[name], outputs=list(_voice_outputs(patch, spec)),
                          channel=spec.channel, **spec.params)
    rebuild_controls(runtime, patch)  # before the swaps: model names resolve in the new patch
    for name, spec in patch.voices.items():
        if name in rebuild:
            continue
        _set_changed_params(session.voices[name], old_voices[name].params, spec.params)
        if name in swap:
            runtime.swap(name, spec.model)
    if patch.scene is not None and (old is None or old.scene != patch.scene):
        runtime.apply_scene(patch.scene)


def _apply_band(session: Any, patch: Patch, old: Patch | None) -> None:
    """[clock] source / out / start_stop and each output's offset_ms (engine/band.py)."""
    for name, spec in patch.outputs.items():
        if name in session.outputs and session.band.offsets_ms().get(name, 0.0) != spec.offset_ms:
            session.set_offset(name, spec.offset_ms)
    if old is None or (old.clock_source, old.start_stop) != (patch.clock_source, patch.start_stop):
        if old is not None and old.start_stop != patch.start_stop and patch.clock_source != "internal":
            session.sync("internal")  # the option is fixed when the source is made
        session.sync(patch.clock_source, patch.start_stop)
    for name in patch.clock_out:
        if name not in session.band.clock_outs and name in session.outputs:
            session.clock_out(name)


def _set_changed_params(voice: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    changes = {k: v for k, v in new.items() if old.get(k, _KEEP_ALIVE) != v}
    changes.update({k: PARAM_SPECS[k].default for k in old if k not in new})
    if changes:  # one snapshot: the generation thread never sees a half-applied reload
        voice.update(clamp=True, **changes)


def rebuild_controls(runtime: ControlRuntime, patch: Patch) -> None:
    """Replace the runtime's bindings, automation, triggers and scenes with the patch's."""
    bindings = [Binding(m.source, m.voice, m.param, m.build()) for m in patch.mappings]
    bindings += [_direct_binding(a) for a in patch.automation if a.target is not None]
    runtime.set_mappings(bindings)
    runtime.set_automation([(a.build(), a.name) for a in patch.automation])
    runtime.set_triggers([t.build() for t in patch.triggers])
    runtime.scenes = dict(patch.scenes)
    runtime.resolve_model = lambda name: _resolve(patch, name)


def _resolve(patch: Patch, name: str) -> str:
    path = patch.model_path(name)
    if path == "default":
        from livernn.model import default_model_path

        return str(default_model_path())
    return path


def _direct_binding(spec: AutomationSpec) -> Binding:
    """Automation with ``target``: its values are already in parameter units."""
    from livernn.controls.mapping import Mapping

    assert spec.target is not None
    span = spec.span()
    param = PARAM_SPECS[spec.target[1]]
    return Binding(spec.name, spec.target[0], spec.target[1],
                   Mapping(in_range=span, out_range=span, clip="free", kind=param.kind))

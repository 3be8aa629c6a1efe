"""What a checked patch is: plain frozen values that ``apply_patch`` turns into a show.

Equality is by value, so ``apply_patch`` can diff an old patch against a new one voice by
voice and output by output. ``schema.load_patch`` builds these; nothing else should.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livernn.controls.automation import Lfo, Ramp
from livernn.controls.mapping import Mapping, build_mapping
from livernn.controls.runtime import Scene
from livernn.controls.trigger import Trigger
from livernn.errors import LivernnError


def _shipped_models() -> Path:
    from livernn.library import shipped

    return shipped("models")


REPO_MODELS = _shipped_models()  # the shipped models: in the wheel, or the checkout's models/
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class PatchError(LivernnError):
    """A patch that cannot be played; ``problems`` holds one ``file:line: ...`` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more: run `livernn check`)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


@dataclass(frozen=True)
class OutputSpec:
    name: str
    type: str
    options: dict[str, Any]
    offset_ms: float = field(default=0.0, compare=False)  # latency compensation; changing it reopens nothing


@dataclass(frozen=True)
class VoiceSpec:
    name: str
    model: str  # a key of Patch.models, or "default"
    outputs: tuple[str, ...]
    channel: int
    params: dict[str, Any]


@dataclass(frozen=True)
class MappingSpec:
    """One [[mappings]] entry: ``source`` shaped onto ``voice.param`` by ``options``, the
    table's own keys (``range``, ``out``, ``curve``...; see ``controls.mapping.OPTIONS``)."""

    source: str
    voice: str
    param: str
    options: dict[str, Any]

    def build(self) -> Mapping:
        from livernn.engine.params import PARAM_SPECS

        return build_mapping(PARAM_SPECS[self.param], self.options)


@dataclass(frozen=True)
class AutomationSpec:
    name: str  # the bus name it publishes to
    type: str  # "lfo" | "ramp"
    options: dict[str, Any]
    target: tuple[str, str] | None  # (voice, param) for a direct write

    def build(self) -> Lfo | Ramp:
        cls = Lfo if self.type == "lfo" else Ramp
        return cls(self.name, **self.options)

    def span(self) -> tuple[float, float]:
        """The values it can take: the identity range for a direct write."""
        if self.type == "lfo":
            lo, hi = self.options.get("lo", 0.0), self.options.get("hi", 1.0)
        else:
            values = [v for _, v in self.options["points"]]
            lo, hi = min(values), max(values)
        return (lo, hi) if lo != hi else (lo, lo + 1.0)


@dataclass(frozen=True)
class TriggerSpec:
    source: str
    action: str
    args: dict[str, Any]
    condition: dict[str, Any]

    def build(self) -> Trigger:
        return Trigger(self.source, self.action, dict(self.args), **self.condition)


@dataclass(frozen=True)
class OscSpec:
    port: int = 9000
    bind: str = "127.0.0.1"
    allow: tuple[str, ...] = ()
    feedback: tuple[str, int] | None = None
    commands: bool = False  # /livernn/... remote commands: off unless the patch asks


@dataclass(frozen=True)
class MidiSpec:
    input: str
    listen: str | None = None
    listen_channel: int = 0  # 0 = every channel


@dataclass(frozen=True)
class Patch:
    path: Path
    name: str
    bpm: float
    beats_per_bar: int
    models: dict[str, str]  # name -> absolute path, or "default"
    outputs: dict[str, OutputSpec]
    voices: dict[str, VoiceSpec]
    osc: OscSpec | None
    midi: MidiSpec | None
    mappings: tuple[MappingSpec, ...]
    automation: tuple[AutomationSpec, ...]
    triggers: tuple[TriggerSpec, ...]
    scenes: dict[str, Scene]
    scene: str | None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock_source: str = "internal"  # [clock] source: "internal", "link" or "midi:NAME"
    clock_out: tuple[str, ...] = ()  # [clock] out: the patch's MIDI outputs that send MIDI clock
    start_stop: bool = False  # [clock] start_stop: Link start/stop sync

    @property
    def folder(self) -> Path:
        return self.path.parent

    def model_path(self, name: str) -> str:
        """A model by its patch name, or by name on the search path (livernn.library):
        the shipped models, the user's, the patch's ``models/`` folder."""
        if name in self.models:
            return self.models[name]
        if not NAME.match(name):
            raise LivernnError(f"model {name!r}: give a model name from the patch, not a path")
        from livernn.library import find_model

        return str(find_model(name, self.folder, known=self.models))

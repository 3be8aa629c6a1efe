"""The control runtime: bindings from the bus to voices, automation, triggers, scenes.

One ``ControlRuntime`` sits beside a ``Session``. Sources publish to the session's bus;
bindings shape each value with a ``Mapping`` and write it with
``voice.set(name, value, clamp=True)``; triggers turn crossings into actions. A tick
(100 Hz on the event loop, or called by hand in tests) samples automation, publishes
``clock.beat``/``clock.bar``, lets smoothing settle and sends OSC feedback.

Threads (docs/ARCHITECTURE.md, "Threads"): ``receive`` runs on whichever thread published
the value (the OSC loop, the rtmidi thread, the gesture thread), ``tick`` on the event
loop or a caller's thread. A binding's lock covers compute-then-write, so the values a
mapping produces reach the voice in the order it produced them (a tick that computed
before a fresh input cannot write after it and pull the fader back); the voice's own
lock makes each write whole. Neither lock is ever taken by the generation thread.

Nothing here may raise into a source: a failed write or action is logged at a limited
rate and the show goes on (an OSC packet, a MIDI callback or the tick loop must never die
because a voice went away or a model failed to load).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingOf
from dataclasses import dataclass, field
from typing import Any, Protocol

from livernn.controls.actions import perform
from livernn.controls.automation import Automation
from livernn.controls.bus import ControlBus
from livernn.controls.feedback import OscFeedback
from livernn.controls.mapping import Mapping, build_mapping
from livernn.controls.osc_in import RateLimitedLog
from livernn.controls.trigger import Trigger
from livernn.errors import LivernnError, nearest, shown, unknown

log = logging.getLogger(__name__)


class VoiceLike(Protocol):
    """What the runtime (and its feedback) needs of ``livernn.engine.Voice``."""

    @property
    def params(self) -> Any: ...
    def set(self, name: str, value: Any, clamp: bool = False) -> Any: ...
    def update(self, clamp: bool = False, **values: Any) -> Any: ...


class ClockLike(Protocol):
    """What the tick needs of ``livernn.engine.Clock``: beats for ``clock.beat``/``clock.bar``."""

    @property
    def beats_per_bar(self) -> int: ...
    def beat(self, t: float | None = None) -> float: ...


class SessionLike(Protocol):
    """What the runtime needs of ``livernn.engine.Session``."""

    @property
    def bus(self) -> ControlBus: ...
    @property
    def voices(self) -> MappingOf[str, VoiceLike]: ...
    @property
    def clock(self) -> ClockLike: ...

    def swap(self, voice: Any, model: Any, at: str = ..., policy: str = ...) -> Any: ...
    def learn(self, voice: Any, bars: float = ..., seconds: float = ...) -> Any: ...
    def panic(self) -> None: ...
    def set_tempo(self, bpm: float) -> None: ...


@dataclass
class Binding:
    """One mapping wired from a bus source to ``voice.param``."""

    source: str
    voice: str
    param: str
    mapping: Mapping
    last_input_t: float = -1e9
    last_written: Any = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass
class Scene:
    """Parameter values per voice, model choices per voice, and optionally a tempo."""

    name: str
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    tempo: float | None = None


def _same(value: Any, last: Any, mapping: Mapping) -> bool:
    """Equal, or a float within a millionth of the output range (settled smoothing)."""
    if isinstance(value, float) and isinstance(last, float):
        lo, hi = mapping.out_range
        return abs(value - last) <= 1e-6 * abs(hi - lo)
    return value == last


class ControlRuntime:
    """Wires control sources to a session; see the module docstring."""

    def __init__(
        self,
        session: SessionLike,
        resolve_model: Callable[[str], Any] | None = None,
        tick_hz: float = 100.0,
    ) -> None:
        self.session = session
        self.bus = session.bus
        self.resolve_model = resolve_model or (lambda name: name)
        self.tick_hz = tick_hz
        self.bindings: list[Binding] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self.automation: list[tuple[Automation, str]] = []
        self.triggers: list[Trigger] = []
        self._trigger_unsub: list[Callable[[], None]] = []
        self.scenes: dict[str, Scene] = {}
        self.scene: str | None = None
        self.feedback: OscFeedback | None = None
        self.started = time.monotonic()
        self.errors = 0
        self._log = RateLimitedLog(log)
        self.on_action: list[Callable[[str, dict[str, Any]], None]] = []
        self.tickers: list[Callable[[float], None]] = []  # more work for each tick (listen mode, plug-ins)

    # -- reporting ------------------------------------------------------------------------
    def warn(self, message: str) -> None:
        self.errors += 1
        self._log.warning(message)

    # -- mappings -------------------------------------------------------------------------
    def set_mappings(self, bindings: Iterable[Binding]) -> None:
        """Replace every binding at once (a patch reload rebuilds them all)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.bindings = list(bindings)
        self._unsubscribe = [self.bus.subscribe(b.source, self._receiver(b)) for b in self.bindings]

    def add_mapping(self, binding: Binding) -> Binding:
        self.bindings.append(binding)
        self._unsubscribe.append(self.bus.subscribe(binding.source, self._receiver(binding)))
        return binding

    def _receiver(self, binding: Binding) -> Callable[[str, Any, float], None]:
        def receive(_name: str, value: Any, t: float) -> None:
            binding.last_input_t = t
            if isinstance(value, str):
                return  # discrete values drive triggers, not continuous parameters
            with binding.lock:
                self._write(binding, binding.mapping(value, t))

        return receive

    def _write(self, binding: Binding, value: Any) -> None:
        if value is None or _same(value, binding.last_written, binding.mapping):
            return
        voice = self.session.voices.get(binding.voice)
        if voice is None:
            return  # the voice left with a reload; its binding goes with the next rebuild
        try:
            voice.set(binding.param, value, clamp=True)
            binding.last_written = value
        except LivernnError as exc:
            self.warn(f"{binding.source} -> {binding.voice}.{binding.param}: {exc}")

    def learn(self, voice: str, param: str, pattern: str = "midi.*",
              on_bound: Callable[[Binding], None] | None = None) -> Callable[[], None]:
        """MIDI learn: the next control moved (a bus name matching ``pattern``) is bound to
        ``voice.param`` over the parameter's whole range. Returns a function that cancels."""
        from livernn.engine.params import PARAM_SPECS

        spec = PARAM_SPECS.get(param)
        if spec is None:
            raise unknown("parameter", param, PARAM_SPECS)
        self.find_voices(voice)
        state: dict[str, Callable[[], None]] = {}

        def first(name: str, value: Any, t: float) -> None:
            if "cancel" not in state or isinstance(value, str) or name.startswith("midi.note."):
                return
            state.pop("cancel")()
            in_range = (-1.0, 1.0) if name.startswith("midi.bend") else (0.0, 1.0)
            binding = Binding(name, voice, param, build_mapping(spec, {"range": in_range}))
            self.add_mapping(binding)
            with binding.lock:
                self._write(binding, binding.mapping(value, t))
            if on_bound is not None:
                on_bound(binding)

        state["cancel"] = self.bus.subscribe(pattern, first)
        return lambda: state.pop("cancel", lambda: None)()

    # -- automation and triggers -----------------------------------------------------------
    def set_automation(self, items: Iterable[tuple[Automation, str]]) -> None:
        self.automation = list(items)

    def set_triggers(self, triggers: Iterable[Trigger]) -> None:
        for unsubscribe in self._trigger_unsub:
            unsubscribe()
        self.triggers = list(triggers)
        self._trigger_unsub = [self.bus.subscribe(t.source, self._trigger_receiver(t)) for t in self.triggers]

    def _trigger_receiver(self, trigger: Trigger) -> Callable[[str, Any, float], None]:
        lock = threading.Lock()  # a glob source may be published from several threads

        def receive(_name: str, value: Any, _t: float) -> None:
            with lock:
                crossed = trigger.feed(value)
            if crossed:  # the action runs outside the lock: it may take a while (a scene)
                self.fire(trigger.action, trigger.args)

        return receive

    # -- actions ----------------------------------------------------------------------------
    def fire(self, action: str, args: dict[str, Any]) -> None:
        """Run one action of ``controls.actions`` (from a trigger or a remote command);
        failures are logged, never raised into the source."""
        try:
            perform(self, action, args)
            for listener in self.on_action:
                listener(action, args)
        except LivernnError as exc:
            self.warn(f"{action}: {exc}")

    def find_voices(self, name: str) -> list[Any]:
        """The voice called ``name``, or every voice for ``*``; an unknown name is the
        did-you-mean error."""
        if name == "*":
            return list(self.session.voices.values())
        voice = self.session.voices.get(name)
        if voice is None:
            raise unknown("voice", name, self.session.voices)
        return [voice]

    def swap(self, voice: str, model: str, at: str = "bar") -> Any:
        """Swap a voice's model by its patch name (never by an arbitrary path)."""
        self.find_voices(voice)
        future = self.session.swap(voice, self.resolve_model(model), at=at)
        if hasattr(future, "add_done_callback"):
            future.add_done_callback(lambda f: self._swap_done(voice, model, f))
        return future

    def tune(self, voice: str, bars: float = 32, seconds: float = 60) -> Any:
        """The ``learn`` action (not MIDI learn, ``learn`` above): fine-tune a voice's model
        on what was just played, then swap it in at a bar (livernn.engine.learn); its
        outcome is one line of its own."""
        self.find_voices(voice)
        return self.session.learn(voice, bars=bars, seconds=seconds)

    def _swap_done(self, voice: str, model: str, future: Any) -> None:
        exc = future.exception() if not future.cancelled() else None
        if exc is not None:
            self.warn(f"swap {voice} -> {model} failed, the old model keeps playing: {exc}")

    def apply_scene(self, scene: str | int | float) -> None:
        """Apply a scene by name or by its 0-based index in the patch."""
        names = list(self.scenes)
        if not names:
            raise LivernnError(f"no scene {shown(scene)}: the patch has no scenes (a [scenes.NAME] table makes one)")
        listed = ", ".join(f"{i} {name}" for i, name in enumerate(names))
        if isinstance(scene, int | float) and not isinstance(scene, bool):
            if scene not in range(len(names)):  # 1.5, nan, inf, -1, 10**400: none is an index
                raise LivernnError(f"no scene {shown(scene)}; scenes: {listed}")
            scene = names[int(scene)]
        found = self.scenes.get(str(scene))
        if found is None:
            guess = nearest(scene, names) if isinstance(scene, str) else None
            hint = f"; did you mean {guess!r}? scenes" if guess else "; scenes"
            raise LivernnError(f"no scene {shown(scene)}{hint}: {listed}")
        if found.tempo is not None:
            self.session.set_tempo(found.tempo)
        for voice_name, params in found.params.items():
            for voice in self.find_voices(voice_name):
                voice.update(clamp=True, **params)  # one snapshot: never half a scene
        for voice_name, model in found.models.items():
            self.swap(voice_name, model)
        self.scene = found.name

    # -- time -----------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        """Sample automation, publish the clock, settle smoothing, send feedback."""
        now = time.monotonic() if now is None else now
        clock = self.session.clock
        beat = clock.beat(now)
        try:
            self.bus.publish("clock.beat", beat, now)
            self.bus.publish("clock.bar", beat / clock.beats_per_bar, now)
            seconds = now - self.started
            for item, name in self.automation:
                self.bus.publish(name, item.value(beat, seconds), now)
            for binding in self.bindings:
                if binding.mapping.settles:
                    with binding.lock:
                        self._write(binding, binding.mapping.tick(now))
            for ticker in self.tickers:
                ticker(now)
            if self.feedback is not None:
                self.feedback.poll(self.session.voices, self.bindings, now)
        except Exception as exc:  # a tick must never stop the ticking
            self.warn(f"control tick: {type(exc).__name__}: {exc}")

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tick at ``tick_hz`` until cancelled or ``stop`` is set."""
        period = 1.0 / self.tick_hz
        while stop is None or not stop.is_set():
            self.tick()
            await asyncio.sleep(period)

    def close(self) -> None:
        self.set_mappings([])
        self.set_triggers([])
        if self.feedback is not None:
            self.feedback.close()
            self.feedback = None

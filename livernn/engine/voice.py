"""A voice: one model slot and its generator, turned into timed notes on some outputs.

The session's generation thread calls ``fill(now)`` every few milliseconds. The voice
keeps one sampled note in hand and emits it once its onset falls inside the horizon
(``lookahead`` plus the slowest output's latency), so generation runs ahead of the
sender by about one lookahead and a control change is heard about one lookahead later.
Timing, velocity, mute, transpose, scale and range are (re)applied to the note in hand
when it is emitted, so they respond within the lookahead; temperature and top_p act from
the next sampled note.

Model seconds become beats with ``beats = s * ref_bpm / 60 / density``; onsets are then
quantized (with swing on every second grid step), note lengths capped, polyphony bounded
(the oldest note is cut) and velocities scaled. Parameters are a frozen snapshot swapped
in whole, so the generation thread reads them without a lock.

Writers (the OSC loop, the rtmidi thread, the gesture thread, the control tick, the REPL)
may call ``set``/``update`` at the same moment: each builds the next snapshot from the
current one, so two writers racing on *different* parameters would each swap in a copy
missing the other's change. A writer-only lock makes read-modify-write one step; the
generation thread never takes it (docs/ARCHITECTURE.md, "Threads").
"""

from __future__ import annotations

import math
import operator
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from livernn.engine.host import VoiceHost
from livernn.engine.params import PARAM_SPECS, VoiceParams
from livernn.engine.scheduler import Note
from livernn.errors import LivernnError, unknown
from livernn.model.generator import NoteGenerator
from livernn.model.sampling import allowed_pitches
from livernn.notes import make_notes
from livernn.outputs.base import Output

RECENT = 64  # notes kept for priming a swapped-in model
HISTORY = 4096  # notes kept, with their beats, for learning from what was played (engine/learn.py)
MIN_LENGTH = 0.01  # seconds
LATE_DROP = 0.05  # a note found this late (seconds; generation was stalled) is dropped


class UnknownParameter(LivernnError, AttributeError):
    """``v.temprature``: a one-line error naming the nearest parameter, and still an
    AttributeError, so ``hasattr``/``getattr(v, name, default)`` keep working."""


@dataclass(slots=True)
class _Sampled:
    """The note in hand: what the model said, in model space."""

    model_pitch: int
    out_pitch: int
    step_s: float
    dur_s: float
    velocity: int
    params: VoiceParams
    sampler: Any = None  # the SamplerParams it was sampled under (a listening policy's chord)


class ModelLike(Protocol):
    """What a voice needs of a model: ``livernn.model.LoadedModel``, or a stand-in with the same two."""

    @property
    def ref_bpm(self) -> float: ...
    @property
    def name(self) -> str: ...
    def generator(self, seed: int | None = None) -> NoteGenerator: ...


@dataclass(slots=True)
class SwapPlan:
    model: ModelLike
    generator: Any
    at: str
    policy: str
    future: Future
    primed_at: int  # the voice's note count when the new generator was primed
    boundary: float | None = None


class Voice:
    """A named voice: ``v.temperature = 1.2``, ``v.set("density", 2)``, ``v.observe(...)``."""

    def __init__(self, session: VoiceHost, name: str, model: ModelLike, outputs: list[Output],
                 channel: int = 1, params: VoiceParams | None = None, seed: int | None = None) -> None:
        object.__setattr__(self, "_params", params or VoiceParams())
        object.__setattr__(self, "_write_lock", threading.Lock())  # writers only, never fill()
        object.__setattr__(self, "_built", False)
        self.name = name
        self.channel = channel
        self.outputs = list(outputs)
        self.session = session
        self.seed = seed
        self.model = model
        self.generator = model.generator(seed)
        self.generator.warmup()
        self.last_good: Any = None  # the model before the last swap: where a failure falls back to
        self.epoch = 0
        self.failed: str | None = None
        self.notes_played = 0
        self.generated = 0
        self.late = 0
        self.notes_heard = 0
        self._cursor: float | None = None  # raw (unquantized) beat of the last onset
        self._at_cursor = False  # next onset exactly at the cursor (first note after a beat/bar swap)
        self._hand: _Sampled | None = None
        self._recent: deque[tuple[int, float, float, int]] = deque(maxlen=RECENT)
        # (beat, pitch, step, duration, velocity): the same notes as _recent, kept longer and
        # with the beat each was heard at, so ``played(bars)`` can cut out the last bars
        self._history: deque[tuple[float, int, float, float, int]] = deque(maxlen=HISTORY)
        self._observed: deque[tuple[int, float, float, int]] = deque()
        self._sounding: list[Note] = []
        self._plan: SwapPlan | None = None
        # Listening (livernn.engine.listen): the policy, and the lock a follow policy holds
        # while it steps the generator on the input's thread (fill does not step it then).
        self.listening: Any = None
        self.generating = threading.Lock()
        self.removed = False  # Session.remove_voice: its policy hears nothing, plays nothing
        self._window_id = 0
        self._built = True  # from here on, a new attribute name is a typo (see __setattr__)

    @property
    def channel(self) -> int:
        return self._channel

    @channel.setter
    def channel(self, channel: int) -> None:
        # A property, so ``v.channel = 99`` at the prompt is checked as the constructor checks it.
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
            raise LivernnError(f"MIDI channel must be 1..16, got {channel!r}")
        object.__setattr__(self, "_channel", channel)

    # -- parameters ------------------------------------------------------------------
    @property
    def params(self) -> VoiceParams:
        return self._params

    def set(self, name: str, value: Any, clamp: bool = False) -> Any:
        """Change one parameter (validated; see PARAM_SPECS); returns the value now in force.
        Safe from any thread: writers queue on a lock, the generation thread never waits."""
        with self._write_lock:
            new = self._params.with_(clamp=clamp, **{name: value})
            object.__setattr__(self, "_params", new)
        return getattr(new, name)

    def update(self, clamp: bool = False, **values: Any) -> VoiceParams:
        """Change several parameters at once, all or none: the generation thread sees
        either none of them or all of them."""
        with self._write_lock:
            new = self._params.with_(clamp=clamp, **values)
            object.__setattr__(self, "_params", new)
        return new

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: parameters, or a typo.
        if name in PARAM_SPECS:
            return getattr(self._params, name)
        if name.startswith("_"):  # protocol probes (copy, pickle, IPython): plain and quick
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")
        raise UnknownParameter(str(unknown("parameter", name, PARAM_SPECS)))

    def __setattr__(self, name: str, value: Any) -> None:
        # Hot path first: the generation thread updates its own existing attributes.
        if name in self.__dict__ or not self._built:
            object.__setattr__(self, name, value)
        elif name in PARAM_SPECS:
            self.set(name, value)
        elif hasattr(type(self), name):  # a property: let Python say it cannot be set
            object.__setattr__(self, name, value)
        else:  # ``v.temprature = 2`` would otherwise quietly make a new attribute
            raise UnknownParameter(str(unknown("parameter", name, PARAM_SPECS)))

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(PARAM_SPECS))

    # -- listening and history -------------------------------------------------------
    def observe(self, pitch: int, step_s: float, dur_s: float, velocity: int) -> None:
        """Listen mode: the model hears a note someone else played (output-space pitch)."""
        values = (pitch, step_s, dur_s, velocity)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise LivernnError(f"observe needs finite numbers, got {values!r}")
        if not 0 <= pitch <= 127 or not 1 <= velocity <= 127 or step_s < 0 or dur_s <= 0:
            raise LivernnError("observe: pitch 0..127, velocity 1..127, step >= 0, duration > 0")
        self._observed.append((int(pitch), float(step_s), float(dur_s), int(velocity)))

    def listen_with(self, policy: Any) -> None:
        """Install a listening policy (livernn.engine.listen.attach), or None to stop."""
        with self.generating:
            self.listening = policy
            self._hand = None

    def hear_now(self, pitch: int, step_s: float, dur_s: float, velocity: int) -> None:
        """A player's note into the generator at once (a follow policy, holding ``generating``)."""
        model_pitch = min(max(pitch - self._params.transpose, 0), 127)
        self.generator.observe(model_pitch, step_s, dur_s, velocity)
        self._remember(model_pitch, step_s, dur_s, velocity, self.session.clock.beat())

    def sound(self, pitch: int, velocity: int, t_on: float, t_off: float) -> Note | None:
        """Play one note now, outside the grid (a companion); None when muted."""
        params = self._params
        if params.mute:
            return None
        velocity = min(max(round(velocity * params.velocity_scale + params.velocity_offset), 1), 127)
        outs = (*self.outputs, *self.session.taps)
        n = Note(self.name, self.channel, pitch, velocity, t_on, max(t_off, t_on + MIN_LENGTH), outs, self.epoch)
        self.session.scheduler.schedule_note(n)
        self.notes_played += 1
        self.session.emit("note", self.name, pitch, velocity, t_on, n.t_off)
        return n

    def recent_notes(self) -> np.ndarray:
        """The last notes the model heard (NOTE_DTYPE, model-space pitches), oldest first."""
        recent = list(self._recent)
        if not recent:
            return make_notes([], [], [])
        pitch, step, dur, vel = zip(*recent)
        return make_notes(pitch, step, dur, vel)

    def played(self, bars: float) -> np.ndarray:
        """What the model heard in the last ``bars`` bars, in the order it heard it: its own
        notes and, when listening, the player's (NOTE_DTYPE, model space: pitches before
        ``transpose``, seconds at the model's ``ref_bpm``). Notes scheduled ahead of now
        (one lookahead) are in it too. What ``learn`` fine-tunes on."""
        clock = self.session.clock
        since = clock.beat() - bars * clock.beats_per_bar
        history = list(self._history)  # one C-level copy: atomic under the GIL
        first = len(history)
        while first > 0 and history[first - 1][0] >= since:
            first -= 1
        kept = history[first:]
        if not kept:
            return make_notes([], [], [])
        _beat, pitch, step, dur, vel = zip(*kept)
        return make_notes(pitch, step, dur, vel)

    # -- generation (the session's generation thread only) ----------------------------
    def horizon(self) -> float:
        return self.session.lookahead + max((o.latency for o in self.outputs), default=0.0)

    def fill(self, now: float) -> None:
        """Emit every note whose onset falls before ``now + horizon``."""
        if self.failed is not None:
            return
        clock = self.session.clock
        until = now + self.horizon()
        listening = self.listening
        if listening is not None and listening.mode == "follow":
            self._fill_follow(until)  # the policy steps the generator on the input's thread
            return
        window = None
        if listening is not None and listening.mode == "answer":
            window = listening.window(now)
            if window is None:  # the player's turn (or no call yet): hear, say nothing
                self._hand, self._cursor = None, None
                self._drain_observed()
                if self._plan is not None and self._plan.boundary is None:
                    self._plan.boundary = clock.beat(until)
                if self._plan is not None:
                    self._swap_now(self._plan)
                return
            if window[0] != self._window_id:  # a new answer: from its first beat
                self._window_id, self._hand = window[0], None
                self._cursor, self._at_cursor = window[1], True
        if self._cursor is None:
            self._cursor = clock.next_boundary(clock.beat(until), "beat")
        self._drain_observed()
        self._fill_notes(now, until, window)

    def _drain_observed(self) -> None:
        while self._observed:
            pitch, step, dur, vel = self._observed.popleft()
            model_pitch = min(max(pitch - self._params.transpose, 0), 127)
            self.generator.observe(model_pitch, step, dur, vel)
            self._remember(model_pitch, step, dur, vel, self.session.clock.beat())

    def _fill_follow(self, until: float) -> None:
        plan = self._plan
        if plan is not None:
            with self.generating:
                plan.boundary = self.session.clock.beat(until) if plan.boundary is None else plan.boundary
                self._swap_now(plan)

    def _fill_notes(self, now: float, until: float, window: tuple[int, float, float] | None) -> None:
        clock = self.session.clock
        for _ in range(256):  # bounded: a burst of chord notes, never an endless loop
            plan = self._plan
            if plan is not None and plan.boundary is None:
                self._plan_boundary(plan, until)
            if self._hand is None:
                self._hand = self._sample()
            params = self._params
            onset = self._onset(self._hand, params)
            if plan is not None and self._swap_due(plan, onset, until):
                self._swap_now(plan)
                continue
            if window is not None and onset >= window[2]:
                return  # the answer is over: the note in hand waits for the next one
            t_on = clock.time_of(onset)
            if t_on < now - 0.002 and self._hand.params is not params:
                # A parameter change since the note was drawn (density up, a coarser grid, a
                # scene) moved its onset into the past: the engine kept time, the performer
                # moved the music. It plays on the first grid point from now, not late (nor
                # dropped), and the voice goes on from there.
                onset = _grid_from(clock.beat(now), params.quantize, params.swing)
                t_on = clock.time_of(onset)
                self._at_cursor, self._cursor = True, onset
            if t_on > until:
                return
            late = t_on < now - 0.002
            if late:
                self.late += 1
            # Slightly late (a stall shorter than LATE_DROP): play it now. Later than that:
            # drop it, rather than flood the outputs with every note of the stall at once.
            self._emit(self._hand, params, onset, max(t_on, now), play=t_on >= now - LATE_DROP)
            self._hand = None

    def _swap_due(self, plan: SwapPlan, onset: float, until: float) -> bool:
        """The pending swap takes over before the note in hand (its boundary is planned)."""
        if plan.at == "now":
            return True
        boundary = plan.boundary
        assert boundary is not None  # _fill_notes plans it before asking
        return self.session.clock.time_of(boundary) <= until + 1e-6 and onset >= boundary - 1e-9

    def _beat_cursor(self) -> float:
        """The cursor while notes are being filled (fill sets it before ``_fill_notes``)."""
        assert self._cursor is not None
        return self._cursor

    def _sampler(self, params: VoiceParams) -> Any:
        listening = self.listening
        return params.sampler() if listening is None else listening.sampler(params)

    def _sample(self) -> _Sampled:
        params = self._params
        sampler = self._sampler(params)
        pitch, step, dur, vel = self.generator.next(sampler)
        self.generated += 1
        model_pitch = min(max(int(pitch) - params.transpose, 0), 127)
        return _Sampled(model_pitch, int(pitch), float(step), float(dur), int(vel), params, sampler)

    def _onset(self, note: _Sampled, params: VoiceParams) -> float:
        """Quantized beat of the note in hand (with the parameters in force now)."""
        cursor = self._beat_cursor()
        if self._at_cursor:
            return cursor
        raw = cursor + self._beats(note.step_s, params)
        return _quantize(raw, params.quantize, params.swing)

    def _beats(self, seconds: float, params: VoiceParams) -> float:
        return seconds * self.model.ref_bpm / 60.0 / params.density

    def _emit(self, note: _Sampled, params: VoiceParams, onset: float, t_on: float, play: bool) -> None:
        clock = self.session.clock
        self._cursor = onset if self._at_cursor else self._beat_cursor() + self._beats(note.step_s, params)
        self._at_cursor = False
        self._remember(note.model_pitch, note.step_s, note.dur_s, note.velocity, onset)
        if params.mute or not play:
            return
        length = self._beats(note.dur_s, params)
        if params.max_length > 0:
            length = min(length, params.max_length)
        t_off = max(clock.time_of(onset + length), t_on + MIN_LENGTH)
        sampler = self._sampler(params)
        pitch = note.out_pitch if note.params is params and note.sampler is sampler else \
            _constrain(note.model_pitch, params, sampler.pitches)
        listening = self.listening
        if listening is not None:  # accompany's passing tones: where a non-chord tone may play
            pitch = listening.place(pitch, onset, params)
        velocity = min(max(round(note.velocity * params.velocity_scale + params.velocity_offset), 1), 127)
        self._sounding = [n for n in self._sounding if n.t_off > t_on and not n.cancelled]
        while len(self._sounding) >= params.max_polyphony:
            oldest = self._sounding.pop(0)
            self.session.scheduler.end_notes(partial(operator.is_, oldest), t_on)
        outs = (*self.outputs, *self.session.taps)
        n = Note(self.name, self.channel, pitch, velocity, t_on, t_off, outs, self.epoch)
        self._sounding.append(n)
        self.session.scheduler.schedule_note(n)
        self.notes_played += 1
        self.session.emit("note", self.name, pitch, velocity, t_on, t_off)

    def _remember(self, pitch: int, step: float, dur: float, vel: int, beat: float) -> None:
        self._recent.append((pitch, step, dur, vel))
        self._history.append((beat, pitch, step, dur, vel))
        self.notes_heard += 1

    # -- hot swap ----------------------------------------------------------------------
    def install(self, plan: SwapPlan) -> None:
        """Hand a loaded, warmed, primed model to the generation thread (any thread)."""
        old, self._plan = self._plan, plan
        if old is not None and not old.future.done():
            old.future.set_exception(LivernnError(f"swap on voice {self.name} replaced by a newer swap"))

    def _plan_boundary(self, plan: SwapPlan, until: float) -> None:
        clock = self.session.clock
        frontier = max(self._beat_cursor(), clock.beat(until))
        plan.boundary = frontier if plan.at == "now" else clock.next_boundary(frontier, plan.at)

    def _swap_now(self, plan: SwapPlan) -> None:
        self._plan = None
        heard = self.notes_heard - plan.primed_at
        if heard > 0:  # notes generated while the new model was being primed
            for pitch, step, dur, vel in list(self._recent)[-heard:]:
                plan.generator.observe(pitch, step, dur, vel)
        old_model = self.model
        boundary = plan.boundary
        assert boundary is not None  # every caller plans it first
        self.model, self.generator = plan.model, plan.generator
        self.last_good = old_model
        self.epoch += 1
        self._hand = None
        if plan.at != "now":
            self._cursor, self._at_cursor = boundary, True
        if plan.policy == "cut":
            epoch = self.epoch
            self.session.scheduler.end_notes(
                lambda n: n.voice == self.name and n.epoch < epoch, self.session.clock.time_of(boundary)
            )
        # The event first: code awaiting the swap's Future (the REPL's ``await swap(...)``)
        # resumes on another thread and must already see the "swap" event's effects.
        self.session.emit("swap", self.name, getattr(plan.model, "name", str(plan.model)), plan.boundary)
        plan.future.set_result(plan.model)

    def fail(self, exc: BaseException) -> str:
        """A failure inside the voice: end its notes, fall back to the last good model or go silent."""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.session.scheduler.end_notes(lambda n: n.voice == self.name)
        self._sounding, self._hand = [], None
        fallback, self.last_good = self.last_good, None
        if fallback is not None:
            try:
                generator = fallback.generator(self.seed)
                generator.prime(self.recent_notes())
                self.model, self.generator = fallback, generator
                self.epoch += 1
                return f"voice {self.name}: {type(exc).__name__}: {reason}; back to model {fallback.name}"
            except Exception:  # the fallback is broken too: silence
                pass
        self.failed = f"{type(exc).__name__}: {reason}"
        return f"voice {self.name}: {type(exc).__name__}: {reason}; the voice is silent"

    def status(self) -> dict[str, Any]:
        return {
            "model": getattr(self.model, "name", str(self.model)),
            "channel": self.channel,
            "outputs": [o.describe() for o in self.outputs],
            "params": self._params.as_dict(),
            "notes": self.notes_played,
            "late": self.late,  # generated after their onset time (played at once, or dropped)
            "failed": self.failed,
            "swap_pending": self._plan is not None,
            "listening": self.listening.status() if self.listening is not None else None,
        }

    def __repr__(self) -> str:
        return f"<Voice {self.name} model={getattr(self.model, 'name', self.model)} ch={self.channel}>"


def _grid_from(beat: float, grid: float, swing: float) -> float:
    """The first point of the (swung) grid at or after ``beat``."""
    if grid <= 0:
        return beat
    k = math.floor(beat / grid) - 1
    while (point := k * grid + (swing * grid if k % 2 else 0.0)) < beat - 1e-9:
        k += 1
    return point


def _quantize(beat: float, grid: float, swing: float) -> float:
    if grid <= 0:
        return beat
    step = round(beat / grid)
    return step * grid + (swing * grid if step % 2 else 0.0)


def _constrain(model_pitch: int, params: VoiceParams, pitches: tuple[int, ...] = ()) -> int:
    """The model's pitch under the parameters in force now: transposed, into range and scale
    (and a listening policy's chord): the same allowed set the generator's mask uses
    (livernn.model.sampling)."""
    pitch = model_pitch + params.transpose
    allowed = allowed_pitches(params.pitch_min, params.pitch_max, params.scale, params.root, pitches)
    return min(allowed, key=lambda p: (abs(p - pitch), p))

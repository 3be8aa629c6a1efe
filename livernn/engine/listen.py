"""Listening policies: a player's notes as input to a voice, and when and under what
constraints the voice speaks (DESIGN.md, "Playing with others").

A player's note reaches the voice at its **note-on**. Its length is not known then, and
the decisions that depend on hearing it (a companion at the same moment, a chord that
re-harmonises the next note, where a call ends) cannot wait for the note-off. So the
model hears a *provisional* length: the median of the player's last few lengths (0.5
beat before any), which is what the player usually does and what the model's duration
input needs (a scale of time, not an exact value); the true lengths still feed the
adaptive end-of-phrase gap. Rewinding the LSTM at each note-off would cost a step per
note on the hot path and change nothing already played.

Three modes, chosen per voice (``attach(voice, ListenOptions(mode=...))``):

- ``answer`` (call and response): the voice is silent while the player plays. A call ends
  after a silence longer than ``gap`` beats, or ``adapt`` times the player's median onset
  spacing if that is longer (capped at ``max_gap``), or at once when the ``end_cc`` pedal
  goes down. The voice then answers from the next beat for ``ratio`` times the call's
  length, having heard the call; a note from the player ends the answer at once (or at
  the end of the bar, ``finish_bar``).
- ``follow`` (harmonise): each player note gets ``companions`` notes at the same moment,
  sampled by the model with its pitch head masked to ``intervals`` (semitones) or
  ``degrees`` (steps of the voice's scale) from the player's note, inside the voice's
  range and scale, never a pitch the player holds. This runs on the input's thread, not
  the generation thread's lookahead: the companion is scheduled for now. The companion
  ends with the player's note.
- ``accompany``: the voice plays on the grid as usual and hears the player all along;
  notes below ``split`` are a chord zone: the held notes' pitch classes become the
  only pitch classes the voice may sample (a mask, through ``SamplerParams.pitches``),
  from the next note on. Releasing the chord keeps it until a new one is pressed.
  ``passing`` (off by default) lets a few non-chord tones through as passing tones:
  ``"scale"`` (inside the voice's scale) or ``"chromatic"`` (any pitch class). A passing
  tone is the first note of an onset nearest a weak 16th (the 2nd or 4th of a beat), a
  step (1 or 2 semitones) from a chord tone at the onset before, and the voice's next
  onset starts with the chord tone a step further the same way; at most ``passing_max``
  of any 16 consecutive notes are passing tones. Anything else stays inside the chord.

The policy knows no controls: an input (``livernn.controls.midi_in``, OSC) calls
``note_on``/``note_off``/``control`` from its own thread. What the generation thread
reads (``window``, ``sampler``) are single attribute reads of values swapped whole.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from livernn.errors import LivernnError, unknown
from livernn.model.sampling import SamplerParams, allowed_pitches

if TYPE_CHECKING:
    from livernn.engine.scheduler import Note
    from livernn.engine.voice import Voice

MODES = ("answer", "follow", "accompany")
HOLD = 8.0  # seconds a companion lasts if its player note never ends (a lost note-off)
DEFAULT_INTERVALS = (-9, -8, -5, -4, -3, 3, 4, 5, 8, 9)  # thirds, fourths, sixths, both ways
PASSING = ("off", "scale", "chromatic")
PASSING_WINDOW = 16  # passing_max is a share of any this many consecutive notes


@dataclass(frozen=True)
class ListenOptions:
    """How a voice listens (see the module's docstring); ``listen_options`` checks them."""

    mode: str = "answer"
    channel: int = 0  # the player's MIDI channel, 0 = any
    hear: bool = True  # the model hears the player's notes (every mode)
    # answer
    gap: float = 1.0  # beats of silence that end a call, at least
    adapt: float = 2.0  # ... or this many median onset spacings of the player, if longer (0 = off)
    max_gap: float = 4.0  # beats: ceiling of the adaptive gap
    ratio: float = 1.0  # answer length / call length
    finish_bar: bool = False  # a player coming back lets the answer finish its bar
    end_cc: int = -1  # a pedal/CC number whose press ends the call at once (-1 = none)
    # follow
    intervals: tuple[int, ...] = DEFAULT_INTERVALS
    degrees: tuple[int, ...] = ()  # scale steps from the player's note; replaces intervals
    companions: int = 1
    # accompany
    split: int = 60  # player notes below this pitch are the chord zone
    passing: str = "off"  # off | scale | chromatic: passing tones between chord tones
    passing_max: float = 0.25  # at most this share of any 16 consecutive notes passes


_RANGES: dict[str, tuple[float, float]] = {
    "channel": (0, 16), "gap": (0.05, 32.0), "adapt": (0.0, 16.0), "max_gap": (0.05, 64.0),
    "ratio": (0.1, 16.0), "end_cc": (-1, 127), "companions": (1, 4), "split": (0, 128),
    "passing_max": (0.0, 1.0),
}
OPTION_NAMES = tuple(f.name for f in fields(ListenOptions))


def listen_options(mode: str = "answer", **values: Any) -> ListenOptions:
    """Checked options: one-line LivernnError for an unknown mode/option or a bad value."""
    if mode not in MODES:
        raise unknown("listen mode", str(mode), MODES)
    clean: dict[str, Any] = {"mode": mode}
    for name, value in values.items():
        if name not in OPTION_NAMES or name == "mode":
            raise unknown("listen option", name, [n for n in OPTION_NAMES if n != "mode"])
        default = getattr(ListenOptions, name)
        if name == "passing":
            if value not in PASSING:
                raise unknown("listen passing", str(value), PASSING)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise LivernnError(f"listen {name} must be true or false, got {value!r}")
        elif isinstance(default, tuple):
            if isinstance(value, (str, bytes)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and -48 <= v <= 48 for v in value):
                raise LivernnError(f"listen {name} must be a list of whole numbers -48..48, got {value!r}")
            value = tuple(value)
            if name == "intervals" and 0 in value:
                raise LivernnError("listen intervals: 0 would double the player's own pitch")
        else:
            lo, hi = _RANGES[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                nearest = ""
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                    nearest = f"; nearest valid: {min(max(value, lo), hi):g}"
                raise LivernnError(f"listen {name} must be a number in {lo:g}..{hi:g}, got {value!r}{nearest}")
            value = int(value) if isinstance(default, int) else float(value)
        clean[name] = value
    options = ListenOptions(**clean)
    if mode == "follow" and not (options.degrees or options.intervals):
        raise LivernnError("listen follow needs intervals or degrees")
    if options.passing != "off" and mode != "accompany":
        raise LivernnError(f"listen passing is for mode 'accompany', not {mode!r}; use passing = 'off'")
    if options.degrees and 0 in options.degrees:
        raise LivernnError("listen degrees: 0 would double the player's own pitch")
    return options


class Listening:
    """One voice's listening policy; ``attach`` makes one and hands it to the voice."""

    def __init__(self, voice: Voice, options: ListenOptions) -> None:
        self.voice = voice
        self.options = options
        self.mode = options.mode
        self.heard = 0
        self.companions_played = 0
        self.answers = 0
        self.closed = False  # detached: hears nothing more
        self._lock = threading.Lock()  # input threads among themselves (two ports, OSC)
        self._held: dict[int, float] = {}  # player pitch -> onset
        self._last_onset: float | None = None
        self._last_activity = -1e9  # latest onset or release of the player (monotonic s)
        self._call_start: float | None = None
        self._spacings: deque[float] = deque(maxlen=8)
        self._lengths: deque[float] = deque(maxlen=8)
        self._pedal = False
        self._ended = False  # the end_cc pedal ended the call (answer): no gap to wait for
        # answer: what the generation thread reads, swapped whole
        self.phase = "waiting"  # waiting (no call yet) | call | answer
        self._window: tuple[int, float, float] | None = None  # (answer id, from beat, until beat)
        # follow
        self._companions: dict[int, list[Note]] = {}
        self._sampler_cache: dict[tuple, SamplerParams] = {}
        # accompany
        self._chord_held: set[int] = set()
        self.chord: frozenset[int] = frozenset()
        # accompany with passing tones: the generation thread's own state (place/sampler)
        self.passing_played = 0
        self._tone_cache: dict[tuple, tuple[tuple[int, ...], frozenset[int], frozenset[int]]] = {}
        self._onset_now: float | None = None  # beat of the latest onset the voice played
        self._at_onset: list[int] = []  # the pitches it played there
        self._pending: int | None = None  # the chord tone a passing tone resolves to
        self._recent_passing: deque[bool] = deque(maxlen=PASSING_WINDOW - 1)

    # -- input side (any thread) -------------------------------------------------------
    def note_on(self, pitch: int, velocity: int, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        voice = self.voice
        if not voice.session.playing or voice.removed:
            return  # a voice removed (a reload rebuilt it) hears nothing and plays nothing
        with self._lock:
            if self.closed:
                return
            step = 0.0 if self._last_onset is None else max(0.0, t - self._last_onset)
            if self._last_onset is not None and step > 1e-3:
                self._spacings.append(step)
            self._last_onset = t
            self._held[pitch] = t
            self._last_activity = t
            self.heard += 1
            if self.mode == "answer":
                self._ended = False  # playing again: the call goes on
                self._call_note(t)
            elif self.mode == "accompany" and pitch < self.options.split:
                if not self._chord_held:
                    self._chord_held = set()
                self._chord_held.add(pitch)
                self.chord = frozenset(p % 12 for p in self._chord_held)
            if self.mode == "follow":
                self._follow(pitch, velocity, step, t)
            elif self.options.hear:
                voice.observe(pitch, *self._model_times(step), velocity)

    def note_off(self, pitch: int, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        with self._lock:
            onset = self._held.pop(pitch, None)
            if onset is None:
                return
            self._lengths.append(max(t - onset, 1e-3))
            self._last_activity = max(self._last_activity, t)
            self._chord_held.discard(pitch)  # the chord itself stays until a new one
            notes = self._companions.pop(pitch, None)
        if notes:
            self.voice.session.scheduler.end_notes(lambda n: any(n is m for m in notes), t)

    def close(self, t: float | None = None) -> None:
        """The voice stops listening this way (detached, or another policy attached): it
        hears nothing more, and the companions still sounding end now (their player notes'
        releases would reach a policy that does not know them)."""
        t = time.monotonic() if t is None else t
        with self._lock:
            self.closed = True
            notes = [n for held in self._companions.values() for n in held]
            self._companions.clear()
            self._held.clear()
            self._window, self.phase = None, "waiting"
        if notes:
            self.voice.session.scheduler.end_notes(lambda n: any(n is m for m in notes), t)

    def control(self, cc: int, value: int, t: float | None = None) -> None:
        """A pedal (``end_cc``) pressed ends the call at once (answer mode): the call's
        length (for ``ratio``) runs to the pedal."""
        if cc != self.options.end_cc:
            return
        t = time.monotonic() if t is None else t
        pressed = value >= 64
        if pressed and not self._pedal and self.mode == "answer":
            with self._lock:
                self._held.clear()
                self._last_activity = max(self._last_activity, t)
                self._ended = True
        self._pedal = pressed

    # -- times ---------------------------------------------------------------------------
    def _model_times(self, step: float) -> tuple[float, float]:
        """Played seconds -> model seconds (the model runs at its ref_bpm), with the
        provisional length (see the module's docstring)."""
        voice = self.voice
        scale = voice.session.clock.bpm * voice.params.density / getattr(voice.model, "ref_bpm", 120.0)
        length = statistics.median(self._lengths) if self._lengths else 30.0 / voice.session.clock.bpm
        return step * scale, max(length * scale, 1e-3)

    def gap_seconds(self) -> float:
        """How long a silence ends a call now: ``gap`` beats, or ``adapt`` times the player's
        median onset spacing when longer, never above ``max_gap`` beats."""
        beat = 60.0 / self.voice.session.clock.bpm
        o = self.options
        gap = o.gap * beat
        if o.adapt > 0 and self._spacings:
            gap = max(gap, o.adapt * statistics.median(self._spacings))
        return min(gap, max(o.max_gap, o.gap) * beat)

    # -- answer ------------------------------------------------------------------------------
    def _call_note(self, t: float) -> None:
        if self.phase != "call":
            self._call_start = t
            answering, self.phase = self._window, "call"
            self._window = None
            if answering is not None:
                self._stop_answer(t)

    def _stop_answer(self, t: float) -> None:
        """The player is back: the answer stops now (or at the end of its bar)."""
        voice, clock = self.voice, self.voice.session.clock
        cut = t
        if self.options.finish_bar:
            cut = max(t, clock.time_of(clock.next_boundary(clock.beat(t), "bar")))
        voice.session.scheduler.end_notes(lambda n: n.voice == voice.name and n.t_off > cut, cut)

    def window(self, now: float) -> tuple[int, float, float] | None:
        """Generation thread: (answer id, from beat, until beat) while answering, else None."""
        if self.phase == "call" and not self._held and (self._ended or now - self._last_activity >= self.gap_seconds()):
            with self._lock:
                if self.phase == "call" and not self._held:
                    self._ended = False
                    clock = self.voice.session.clock
                    start = clock.next_boundary(clock.beat(now), "beat")
                    call_beats = max(self._last_activity - (self._call_start or now), 0.0) * clock.bpm / 60.0
                    self.answers += 1
                    self._window = (self.answers, start, start + max(1.0, self.options.ratio * call_beats))
                    self.phase = "answer"
        window = self._window
        if window is not None and self.voice.session.clock.beat(now) > window[2]:
            self._window, self.phase = None, "waiting"
        return self._window if self.phase == "answer" else None

    # -- follow ------------------------------------------------------------------------------
    def _follow(self, pitch: int, velocity: int, step: float, t: float) -> None:
        voice = self.voice
        params = voice.params
        taken = set(self._held)
        notes: list[Note] = []
        sampled = []
        with voice.generating:
            if voice.removed:  # removed since note_on looked: Session.remove_voice waits on this lock
                return
            generator = voice.generator
            # The companions first, from the state that has heard everything before this
            # note (the mask ties them to it): one read of the heads each, no LSTM step on
            # the way out. The model then hears the player's note and its companions.
            for _ in range(self.options.companions):
                allowed = self.companion_pitches(pitch, params, taken)
                if not allowed:
                    break
                out, _c_step, c_dur, c_vel = generator.next(self._sampler(params, allowed), advance=False)
                taken.add(out)
                note = voice.sound(out, c_vel, t, t + HOLD)
                sampled.append((out, c_dur, c_vel))
                if note is not None:
                    notes.append(note)
                    self.companions_played += 1
            if notes:
                self._companions.setdefault(pitch, []).extend(notes)
            if self.options.hear:  # after the companions left: nothing here delays them
                voice.hear_now(pitch, *self._model_times(step), velocity)
            for out, c_dur, c_vel in sampled:
                voice.hear_now(out, 0.0, c_dur, c_vel)

    def companion_pitches(self, pitch: int, params: Any, taken: AbstractSet[int] = frozenset()) -> tuple[int, ...]:
        """Where a companion of ``pitch`` may go: the intervals (or scale degrees) from it,
        inside the voice's range and scale, not a pitch the player holds."""
        inside = allowed_pitches(params.pitch_min, params.pitch_max, params.scale, params.root)
        o = self.options
        if o.degrees:
            ladder = allowed_pitches(0, 127, params.scale, params.root)
            below = [i for i, p in enumerate(ladder) if p <= pitch]
            base = below[-1] if below else 0
            wanted = {ladder[base + d] for d in o.degrees if 0 <= base + d < len(ladder)}
        else:
            wanted = {pitch + i for i in o.intervals}
        inside_set = set(inside) if len(inside) < 128 else None
        return tuple(sorted(p for p in wanted if 0 <= p <= 127 and p != pitch and p not in taken
                            and (inside_set is None or p in inside_set)
                            and params.pitch_min <= p <= params.pitch_max))

    def _sampler(self, params: Any, pitches: tuple[int, ...]) -> SamplerParams:
        key = (params, pitches)
        sampler = self._sampler_cache.get(key)
        if sampler is None:
            if len(self._sampler_cache) > 256:
                self._sampler_cache.clear()
            base = params.sampler()
            # the model's pitch is transposed on the way out: the mask is on output pitches
            sampler = self._sampler_cache[key] = replace(base, pitches=pitches)
        return sampler

    # -- accompany (generation thread) -------------------------------------------------------
    def sampler(self, params: Any) -> SamplerParams:
        """What the voice samples under now: the held chord's tones (accompany)."""
        base = params.sampler()
        chord = self.chord
        if self.mode != "accompany" or not chord:
            return base
        key = (params, chord)
        sampler = self._sampler_cache.get(key)
        if sampler is None:
            if len(self._sampler_cache) > 256:
                self._sampler_cache.clear()
            tones = tuple(p for p in range(params.pitch_min, params.pitch_max + 1) if p % 12 in chord)
            sampler = self._sampler_cache[key] = replace(base, pitches=tones) if tones else base
        if self.options.passing == "off" or self._pending is not None or not self._budget():
            return sampler
        chord_tones, _tone_set, in_scale = self._tones(params, chord)
        targets = self._passing_targets(params, chord, in_scale) if chord_tones else {}
        if not targets:
            return sampler
        passing_key = (params, chord, tuple(sorted(targets)))
        with_passing = self._sampler_cache.get(passing_key)
        if with_passing is None:
            # the chord tones (inside the voice's scale, as without passing tones) and the
            # passing tones on offer; "chromatic" ones may leave the scale, so the mask is
            # the set itself
            scale = "chromatic" if self.options.passing == "chromatic" else base.scale
            pitches = tuple(sorted({*chord_tones, *targets}))
            with_passing = self._sampler_cache[passing_key] = replace(base, pitches=pitches, scale=scale)
        return with_passing

    def _tones(self, params: Any, chord: frozenset[int]) -> tuple[tuple[int, ...], frozenset[int], frozenset[int]]:
        """The chord's tones inside the voice's range and scale, as a tuple and a set, and
        the range's pitches in the voice's scale (cached per snapshot and chord)."""
        key = (params, chord)
        found = self._tone_cache.get(key)
        if found is None:
            if len(self._tone_cache) > 256:
                self._tone_cache.clear()
            in_scale = allowed_pitches(params.pitch_min, params.pitch_max, params.scale, params.root)
            tones = tuple(p for p in in_scale if p % 12 in chord)
            found = self._tone_cache[key] = (tones, frozenset(tones), frozenset(in_scale))
        return found

    def _budget(self) -> bool:
        """One more passing tone keeps them within passing_max of any 16 consecutive notes."""
        return sum(self._recent_passing) + 1 <= self.options.passing_max * PASSING_WINDOW + 1e-9

    def _passing_targets(self, params: Any, chord: frozenset[int], in_scale: frozenset[int]) -> dict[int, int]:
        """Passing tones the next onset may start with -> the chord tone each resolves to:
        a step (1-2 semitones) from a chord tone at the latest onset, a step short of the
        next chord tone the same way, not a chord tone, in range (and scale, for "scale")."""
        tone_set = self._tones(params, chord)[1]
        targets: dict[int, int] = {}
        for p in self._at_onset:
            if p not in tone_set:
                continue
            for d in (-1, 1, -2, 2):
                r = p + d
                if r % 12 in chord or not params.pitch_min <= r <= params.pitch_max or r in targets:
                    continue
                if self.options.passing == "scale" and r not in in_scale:
                    continue
                way = 1 if d > 0 else -1
                q = next((r + way * e for e in (1, 2) if r + way * e in tone_set), None)
                if q is not None:
                    targets[r] = q
        return targets

    def place(self, pitch: int, onset: float, params: Any) -> int:
        """Generation thread, as a note is played at beat ``onset``: the pitch it plays.
        Accompany with passing tones only (else ``pitch`` as it is): a non-chord tone plays
        only as a passing tone (see the module's docstring), else it moves to the nearest
        chord tone; the onset after a passing tone starts with its resolution."""
        if self.mode != "accompany" or self.options.passing == "off":
            return pitch
        chord = self.chord
        new_onset = self._onset_now is None or onset > self._onset_now + 1e-9
        passing = False
        tones, tone_set, in_scale = self._tones(params, chord) if chord else ((), frozenset(), frozenset())
        if tones:
            pending = self._pending
            if pending is not None and new_onset:
                self._pending = None
                pitch = pending if pending in tone_set else _nearest(pitch, tones)
            elif pitch not in tone_set:
                target = None
                if new_onset and pending is None and round(onset * 4) % 2 == 1 and self._budget():
                    target = self._passing_targets(params, chord, in_scale).get(pitch)
                if target is None:
                    pitch = _nearest(pitch, tones)
                else:
                    passing, self._pending = True, target
                    self.passing_played += 1
        else:
            self._pending = None
        if new_onset:
            self._onset_now, self._at_onset = onset, [pitch]
        else:
            self._at_onset.append(pitch)
        self._recent_passing.append(passing)
        return pitch

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "heard": self.heard, "phase": self.phase if self.mode == "answer" else None,
                "answers": self.answers, "companions": self.companions_played,
                "chord": sorted(self.chord) if self.mode == "accompany" else None,
                "passing": self.passing_played if self.mode == "accompany" else None}


def _nearest(pitch: int, tones: tuple[int, ...]) -> int:
    return min(tones, key=lambda p: (abs(p - pitch), p))


def attach(voice: Voice, options: ListenOptions) -> Listening:
    """Make ``voice`` listen with ``options`` (replacing how it listened before: the old
    policy is closed, its companions end)."""
    policy = Listening(voice, options)
    old = voice.listening
    voice.listen_with(policy)
    if old is not None and old is not policy:
        old.close()
    return policy


def detach(voice: Voice) -> None:
    """The voice plays on its own again; its policy is closed (its companions end)."""
    old = voice.listening
    voice.listen_with(None)
    if old is not None:
        old.close()

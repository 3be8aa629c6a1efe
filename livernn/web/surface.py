"""The show as a control surface sees it, and the one way a surface changes it.

The browser page and OSCQuery are two faces of one ``Surface``: it describes the show
(voices with their parameters, ranges and current values, models reachable by name,
scenes, tempo), hands moves back into the show, and finds what changed since it last
looked, whoever changed it.

Moves take the road every other control takes. A parameter is set through the action
table's ``param`` action (``controls.actions``: the voice is found by name, the value is
checked and clamped by the voice's own ``set``, as for ``/livernn/param`` and triggers),
then published on the session's bus as ``<origin>.<voice>.<param>`` (``web.lead.temperature``,
``oscquery.lead.temperature``), so a patch may map or trigger on a page's slider like on
any other source. Scenes, panic, tempo, swap and mutes run the table's actions and tell the
runtime's ``on_action`` listeners (``livernn perform`` prints them). A model is swapped in
by a name from the surface's list only: a page never names a file.

Seeing changes: nothing in the engine announces a parameter write (and must not: a write
is one attribute store on the writer's thread). ``changes()`` compares each voice's frozen
``VoiceParams`` snapshot with the one it saw last (an identity check; a diff only when it
moved), so a move from OSC, MIDI, a gesture, automation, the REPL or another page is seen
alike. The servers call it 50 times a second on their own thread.
Notes come from the session's ``note`` event: the callback (on the generation thread)
appends one tuple to a deque, and the server thread drains it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from livernn.controls.actions import ACTIONS, perform
from livernn.engine.params import PARAM_SPECS
from livernn.errors import LivernnError, unknown

# what a surface may ask besides a parameter: the table's actions a remote controller may
# send, plus the page's own toggle and solo (both made of mute/unmute)
ACTIONS_ALLOWED = ("scene", "panic", "tempo", "swap", "mute", "unmute", "toggle_mute", "solo")
MODEL_REFRESH = 2.0  # seconds between looks at the models folders
RATE_WINDOW = 2.0  # seconds of onsets behind the notes/s figure
MAX_NOTES = 4096  # notes kept for the piano roll between two drains


def spec_table() -> dict[str, dict[str, Any]]:
    """Every parameter's kind, range, choices, default and doc, for a page or a namespace."""
    table = {}
    for name, spec in PARAM_SPECS.items():
        entry: dict[str, Any] = {"kind": spec.kind, "default": spec.default, "doc": spec.doc}
        if spec.kind in ("float", "int"):
            entry.update(min=spec.min, max=spec.max)
        if spec.kind == "choice":
            entry["choices"] = list(spec.choices)
        table[name] = entry
    return table


def clock_info(clock: Any) -> dict[str, Any]:
    """Where the beat comes from (internal, link, midi...) and how many peers share it."""
    source = getattr(clock, "source", None)
    if not isinstance(source, str) or not source:  # Clock -> internal, LinkClock -> link
        source = type(clock).__name__.lower().removesuffix("clock") or "internal"
    peers = getattr(clock, "peers", None)
    if peers is None:  # aalink's Link counts the other peers of the session
        peers = getattr(getattr(clock, "_link", None), "num_peers", None)
    return {"source": source, "peers": peers}


def model_name(voice: Any) -> str:
    return str(getattr(voice.model, "name", voice.model))


class Surface:
    """See the module docstring. ``origin`` names the bus sources of its moves."""

    def __init__(self, session: Any, runtime: Any, origin: str = "web",
                 model_names: Callable[[], list[str]] | None = None) -> None:
        self.session = session
        self.runtime = runtime
        self.origin = origin
        self._list_models = model_names or _library_models
        self._models: list[str] = []
        self._models_at = -1e9
        self._notes: deque[tuple[str, int, int, float, float]] = deque(maxlen=MAX_NOTES)
        self._onsets: deque[float] = deque(maxlen=MAX_NOTES)
        self._history: deque[tuple[str, int, int, float, float]] = deque(maxlen=512)  # for a page opened late
        self._seen: dict[str, Any] = {}  # voice -> the VoiceParams snapshot last reported
        self._shape: tuple | None = None
        self._tempo: float | None = None
        self._scene: str | None = None
        self._solo: dict[str, bool] | None = None  # mutes before a solo, to give back
        self._solo_lock = threading.Lock()
        self._off = session.on("note", self._on_note)

    # -- what the show is -------------------------------------------------------------------
    def models(self) -> list[str]:
        """Models a swap may name: the reachable names and what the voices play now."""
        now = time.monotonic()
        if now - self._models_at > MODEL_REFRESH:
            self._models_at = now
            try:
                names = list(self._list_models())
            except (OSError, LivernnError):
                names = []
            playing = [model_name(v) for v in list(self.session.voices.values())]
            self._models = sorted(set(names) | set(playing))
        return self._models

    def describe(self) -> dict[str, Any]:
        """The whole show as a page draws it (every value JSON-ready)."""
        voices = {}
        for name, voice in list(self.session.voices.items()):
            voices[name] = {"model": model_name(voice), "channel": voice.channel,
                            "params": voice.params.as_dict()}
        return {
            "voices": voices,
            "specs": spec_table(),
            "models": self.models(),
            "scenes": list(self.runtime.scenes),
            "scene": self.runtime.scene,
            "bpm": self.session.clock.bpm,
            "beats_per_bar": self.session.clock.beats_per_bar,
        }

    def _shape_now(self) -> tuple:
        voices = tuple((n, model_name(v), v.channel) for n, v in list(self.session.voices.items()))
        return voices, tuple(self.runtime.scenes), tuple(self.models())

    # -- moves --------------------------------------------------------------------------------
    def write(self, voice: object, param: object, value: Any) -> Any:
        """Set ``voice.param`` through the action table (clamped to its range); returns the
        value now in force. Raises LivernnError naming what is wrong (any argument may be
        unchecked input from a page or a controller)."""
        if not isinstance(voice, str) or voice not in self.session.voices:
            raise unknown("voice", str(voice)[:40], self.session.voices)
        if not isinstance(param, str) or param not in PARAM_SPECS:
            raise unknown("parameter", str(param)[:40], PARAM_SPECS)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, int | float | str) or (isinstance(value, str) and len(value) > 64):
            raise LivernnError(f"{voice}.{param}: a value must be a number or a short name")
        perform(self.runtime, "param", {"voice": voice, "param": param, "value": value})
        self.session.bus.publish(f"{self.origin}.{voice}.{param}", value)
        return getattr(self.session.voices[voice].params, param)

    def act(self, name: str, args: dict[str, Any] | None = None) -> None:
        """Run a show action (scene, panic, tempo, swap, mute, unmute, toggle_mute, solo);
        raises LivernnError with the reason."""
        args = dict(args or {})
        if name not in ACTIONS_ALLOWED:
            raise unknown("action", str(name)[:40], ACTIONS_ALLOWED)
        if name == "solo":
            self._check_args("mute", args)
            self.solo(str(args["voice"]))
        else:
            self._check_args(name, args)
            if name == "swap":
                if args["model"] not in self.models():
                    raise unknown("model", str(args["model"])[:40], self.models())
                args.setdefault("at", "bar")
            everyone = name in ("mute", "unmute", "toggle_mute") and args.get("voice") == "*"
            if "voice" in args and not everyone and args["voice"] not in self.session.voices:
                raise unknown("voice", str(args["voice"])[:40], self.session.voices)
            perform(self.runtime, name, args)
        for listener in list(self.runtime.on_action):
            listener(name, args)

    @staticmethod
    def _check_args(name: str, args: dict[str, Any]) -> None:
        action = ACTIONS[name]
        known = {arg.name: arg for arg in action.args}
        for key, value in args.items():
            arg = known.get(key)
            if arg is None:
                raise LivernnError(f"{name} takes {', '.join(known) or 'no arguments'}, not {str(key)[:40]!r}")
            if isinstance(value, bool) or not isinstance(value, arg.types):
                raise LivernnError(f"{name}: {key} has the wrong type ({type(value).__name__})")
            if isinstance(value, str) and len(value) > 64:
                raise LivernnError(f"{name}: {key} is too long")
        missing = [arg.name for arg in action.required if arg.name not in args]
        if missing:
            raise LivernnError(f"{name} needs {', '.join(missing)}")

    def solo(self, voice: str) -> None:
        """Play only ``voice``; solo the soloed voice again to give every mute back."""
        voices = self.session.voices
        if voice not in voices:
            raise unknown("voice", voice[:40], voices)
        with self._solo_lock:
            others = [n for n in voices if n != voice]
            soloed = self._solo is not None and not voices[voice].params.mute \
                and all(voices[n].params.mute for n in others)
            if soloed:
                saved, self._solo = self._solo or {}, None
                for name in voices:
                    perform(self.runtime, "mute" if saved.get(name, False) else "unmute", {"voice": name})
                return
            if self._solo is None:
                self._solo = {n: bool(v.params.mute) for n, v in voices.items()}
            perform(self.runtime, "unmute", {"voice": voice})  # first: never a moment of silence
            for name in others:
                perform(self.runtime, "mute", {"voice": name})

    # -- what changed ---------------------------------------------------------------------------
    def changes(self) -> list[dict[str, Any]]:
        """What moved since the last call: a whole new ``show`` when voices, models or
        scenes changed, else ``params`` ([voice, param, value] triples), ``tempo``, ``scene``."""
        events: list[dict[str, Any]] = []
        shape = self._shape_now()
        voices = dict(self.session.voices)
        if shape != self._shape:
            self._shape = shape
            self._seen = {name: voice.params for name, voice in voices.items()}
            self._tempo, self._scene = self.session.clock.bpm, self.runtime.scene
            events.append({"type": "show", **self.describe()})
            return events
        moved = []
        for name, voice in voices.items():
            params, last = voice.params, self._seen.get(name)
            if params is last:
                continue
            self._seen[name] = params
            now, before = params.as_dict(), (last.as_dict() if last is not None else {})
            moved += [[name, key, value] for key, value in now.items() if before.get(key) != value]
        if moved:
            events.append({"type": "params", "changes": moved})
        bpm = self.session.clock.bpm
        if bpm != self._tempo:
            self._tempo = bpm
            events.append({"type": "tempo", "bpm": bpm})
        if self.runtime.scene != self._scene:
            self._scene = self.runtime.scene
            events.append({"type": "scene", "name": self._scene})
        return events

    # -- what plays ---------------------------------------------------------------------------
    def _on_note(self, voice: str, pitch: int, velocity: int, t_on: float, t_off: float) -> None:
        self._notes.append((voice, pitch, velocity, t_on, t_off))  # generation thread: one append

    def take_notes(self, now: float | None = None) -> list[list[Any]]:
        """Notes generated since the last call: [voice, pitch, velocity, onset in seconds
        from ``now`` (positive: still to come), length in seconds]."""
        now = time.monotonic() if now is None else now
        taken = []
        while self._notes:
            try:
                voice, pitch, velocity, t_on, t_off = self._notes.popleft()
            except IndexError:
                break
            self._onsets.append(t_on)
            self._history.append((voice, pitch, velocity, t_on, t_off))
            taken.append([voice, int(pitch), int(velocity), round(t_on - now, 4), round(t_off - t_on, 4)])
        return taken

    def recent_notes(self, seconds: float = 8.0, now: float | None = None) -> list[list[Any]]:
        """The notes of the last ``seconds`` already drained (what a page opened now missed),
        in ``take_notes``' form."""
        now = time.monotonic() if now is None else now
        return [[v, int(p), int(vel), round(on - now, 4), round(off - on, 4)]
                for v, p, vel, on, off in list(self._history) if off >= now - seconds]

    def status(self, now: float | None = None) -> dict[str, Any]:
        """The status strip: notes/s, late notes, open notes, clock source and peers, bar,
        and each voice's latest ``learn`` job (``learning_info``)."""
        now = time.monotonic() if now is None else now
        recent = sum(1 for t in list(self._onsets) if now - RATE_WINDOW <= t <= now)
        session = self.session
        clock = session.clock
        beat = clock.beat(now)
        bar, in_bar = divmod(int(beat), clock.beats_per_bar) if beat >= 0 else (0, 0)
        scheduler = getattr(session, "scheduler", None)
        return {
            "type": "status",
            "notes_per_s": round(recent / RATE_WINDOW, 2),
            "late": sum(int(getattr(v, "late", 0)) for v in list(session.voices.values())),
            "open_notes": len(scheduler.open_notes()) if scheduler is not None else 0,
            "clock": clock_info(clock),
            "bpm": clock.bpm,
            "bar": bar + 1,
            "beat": in_bar + 1,
            "playing": bool(getattr(session, "playing", True)),
            "not_delivering": sorted(getattr(session, "not_delivering", dict)()),
            "learning": learning_info(session),
        }

    def close(self) -> None:
        self._off()


LEARN_FIELDS = ("voice", "model", "state", "seconds", "budget", "step", "message")


def learning_info(session: Any) -> list[dict[str, Any]]:
    """Each voice's latest ``learn(v)`` job (``Session.learning``): running (``message`` None:
    the page shows "learning lead 12 s", as the prompt's status line does) or how it ended
    (``state`` done, failed or cancelled, ``message`` its one line). An older job of a voice
    that learnt again is left out: its line is history, the newer one is the news."""
    latest = {}
    for job in list(getattr(session, "learning", ())):  # oldest first: a later job replaces it
        latest[job.voice.name] = job.status()
    return [{key: job[key] for key in LEARN_FIELDS} | {"running": job["message"] is None}
            for job in latest.values()]


def _library_models() -> list[str]:
    from livernn.library import model_names

    return model_names()

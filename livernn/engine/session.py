"""The session: one clock, one scheduler, the outputs and the voices, started and stopped together.

Three threads of its own, none of them the caller's: the sender (``Scheduler``), the
generation thread (every voice's ``fill`` every few milliseconds, so generation never
blocks sending and no asyncio loop is involved) and a housekeeping thread (port
reconnection, recorder saves). Clock sources and MIDI clock out: engine/band.py. Model
loading for hot swaps runs on a fourth, short-lived worker. Everything the REPL, patches
and controls need goes through the methods here (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livernn.bus import ControlBus
from livernn.engine.band import Band
from livernn.engine.clock import Clock, check_bpm
from livernn.engine.params import VoiceParams
from livernn.engine.scheduler import (
    REALTIME_PRIORITY,
    SPIN,
    SWITCH_INTERVAL,
    Scheduler,
    make_realtime,
    set_switch_interval,
)
from livernn.engine.voice import ModelLike, SwapPlan, Voice
from livernn.errors import LivernnError, kind_of, shown
from livernn.outputs.base import Output

if TYPE_CHECKING:
    from livernn.engine.learn import LearnJob
    from livernn.outputs.recorder import FileRecorder

GENERATION_PERIOD = 0.004  # seconds between generation passes
HOUSEKEEPING_PERIOD = 0.25
EVENTS = ("note", "swap", "error", "tempo", "panic", "transport")
SWAP_AT = ("now", "beat", "bar")
SWAP_POLICIES = ("ring", "cut")


class Session:
    """A playing (or ready-to-play) set: ``Session(bpm=120).start()``."""

    def __init__(self, bpm: float = 120.0, lookahead: float = 0.1, beats_per_bar: int = 4,
                 clock: str | Clock = "internal", switch_interval: float | None = SWITCH_INTERVAL,
                 spin: float = SPIN, bus: ControlBus | None = None, realtime: bool = True) -> None:
        if not isinstance(lookahead, (int, float)) or not 0.005 <= lookahead <= 2.0:
            raise LivernnError(f"lookahead must be 0.005..2 s, got {lookahead!r}")
        if not isinstance(clock, Clock):
            from livernn.sync import check_spec

            check_spec(clock)
        self.clock = clock if isinstance(clock, Clock) else Clock(bpm, beats_per_bar)
        self.lookahead = float(lookahead)
        self.switch_interval = switch_interval
        self.bus = bus or ControlBus()
        self.scheduler = Scheduler(spin, on_error=self._error, realtime=realtime)
        self.outputs: dict[str, Output] = {}
        self.voices: dict[str, Voice] = {}
        self.taps: tuple[Output, ...] = ()  # recorders: get every voice's notes
        self._recorder: FileRecorder | None = None
        self._listeners: dict[str, list[Callable]] = {e: [] for e in EVENTS}
        self._threads: list[threading.Thread] = []
        self._running = False
        self._stopped = threading.Event()
        self._previous_switch: float | None = None
        self._blas_limit: Any = None
        self._loader: ThreadPoolExecutor | None = None
        self.errors: list[str] = []
        self.learning: list[LearnJob] = []  # fine-tunes, running and the last few ended (engine/learn.py)
        self._problems: dict[str, str] = {}  # output name -> why it is not delivering now
        self.held = False  # the clock source's transport is stopped: voices wait (engine/band.py)
        self.band = Band(self)
        if isinstance(clock, str) and clock != "internal":
            self.band.sync(clock)

    # -- lifecycle -------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._running

    def start(self) -> Session:
        if self._running:
            return self
        self._running = True
        self._stopped.clear()
        if self.switch_interval is not None:
            self._previous_switch = set_switch_interval(self.switch_interval)
        # One-note steps gain nothing from BLAS threads, and those worker threads run at normal
        # priority: the SCHED_FIFO generation thread waiting on them stalled for seconds on a
        # loaded machine (priority inversion; tests/test_soak.py).
        from threadpoolctl import threadpool_limits

        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        # A full garbage collection walks every tracked object while holding the GIL: with
        # torch, a model and a REPL user's data loaded (millions of objects) that stalled
        # generation for up to 0.8 s (tests/test_soak.py). Collect once now, off the clock,
        # and freeze what exists, so collections while playing only walk what is new.
        gc.collect()
        gc.freeze()
        self.clock.restart()
        self.band.start()
        self.scheduler.start()
        for target, name in ((self._generate, "livernn-generate"), (self._housekeep, "livernn-house")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop playing: end every open note, save the recording, close every output."""
        if not self._running and not self.outputs and self._recorder is None:
            return
        self._running = False
        self._stopped.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(2.0)
        self._threads = []
        for job in self.learning:
            job.cancel()  # its process ends with the show
        self.band.close()
        self.scheduler.stop()
        self.scheduler.panic(all_notes_off=False)
        if self._loader is not None:
            self._loader.shutdown(wait=False, cancel_futures=True)
            self._loader = None
        if self._recorder is not None:
            self.stop_record()
        for out in [*self.outputs.values(), *self.taps]:
            try:
                out.close()
            except Exception as exc:  # closing must reach every output
                self._error(f"closing {out.describe()}: {exc}")
        self.outputs.clear()
        self._problems.clear()
        self.taps = ()
        if self._previous_switch is not None:
            set_switch_interval(self._previous_switch)
            self._previous_switch = None
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()
            self._blas_limit = None
        gc.unfreeze()  # what was frozen at start may be garbage by now

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- outputs and voices ------------------------------------------------------------
    def add_output(self, name: str, output: Output | str) -> Output:
        """Add an output under a name (an Output, or a spec such as ``"midi:synth"``)."""
        if name in self.outputs:
            raise LivernnError(f"there is already an output named {name!r}")
        if isinstance(output, str):
            from livernn.outputs import from_spec

            output = from_spec(output)
        if not isinstance(output, Output):
            raise LivernnError(f"output {name!r} must be an Output or a spec string, got {output!r}")
        output.attach(self.clock)
        self.outputs[name] = output
        return output

    def add_tap(self, output: Output | str) -> Output:
        """An output that hears every voice, like the recorder, whatever the voices route to.

        ``livernn perform --out midi:NAME`` uses it to play a patch on a port the patch does
        not name; voices keep their own channels."""
        if isinstance(output, str):
            from livernn.outputs import from_spec

            output = from_spec(output)
        if not isinstance(output, Output):
            raise LivernnError(f"a tap must be an Output or a spec string, got {output!r}")
        output.attach(self.clock)
        self.taps = (*self.taps, output)
        return output

    def remove_output(self, name: str) -> None:
        out = self.outputs.pop(name, None)
        if out is None:
            raise LivernnError(f"no output named {name!r}; outputs: {', '.join(self.outputs) or 'none'}")
        for voice in self.voices.values():
            if out in voice.outputs:
                voice.outputs = [o for o in voice.outputs if o is not out]
        self.scheduler.end_notes(lambda n: out in n.outputs)
        self._problems.pop(name, None)
        if name in self.band.clock_outs:
            self.band.stop_clock_out(name)
        out.close()

    def _resolve_outputs(self, outputs: Iterable[str | Output] | None) -> list[Output]:
        if outputs is None:
            return list(self.outputs.values())
        if isinstance(outputs, (str, Output)):
            outputs = [outputs]
        resolved = []
        for item in outputs:
            if isinstance(item, Output):
                if item not in self.outputs.values():
                    self.add_output(f"{item.kind}{len(self.outputs) + 1}", item)
                resolved.append(item)
            elif item in self.outputs:
                resolved.append(self.outputs[item])
            else:
                raise LivernnError(f"no output named {item!r}; outputs: {', '.join(self.outputs) or 'none'}")
        return resolved

    @staticmethod
    def load(model: str | Path | ModelLike | None) -> ModelLike:
        """A LoadedModel from None (the shipped model), a path, or a LoadedModel."""
        from livernn.model import default_model_path, load_model

        if model is None:
            return load_model(default_model_path())
        if isinstance(model, (str, Path)):
            return load_model(model)
        Session.check_model(model)
        return model

    @staticmethod
    def check_model(model: object) -> None:
        """Refuse, in one line, what cannot be a model before anything loads or swaps."""
        if model is None or isinstance(model, (str, Path)) or callable(getattr(model, "generator", None)):
            return
        raise LivernnError(f"a model is a name like 'folk', a path or what load() returned, "
                           f"got {kind_of(model)} ({shown(model)})")

    def add_voice(self, name: str, model: str | Path | ModelLike | None = None,
                  outputs: Iterable[str | Output] | None = None, channel: int = 1, seed: int | None = None,
                  clamp: bool = False, **params: Any) -> Voice:
        """Add a voice playing ``model`` (default: the shipped model) on ``outputs`` (default: all)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise LivernnError(f"a voice name must be an identifier such as 'lead', got {name!r}")
        if name in self.voices:
            raise LivernnError(f"there is already a voice named {name!r}")
        voice_params = VoiceParams().with_(clamp=clamp, **params)
        voice = Voice(self, name, self.load(model), self._resolve_outputs(outputs), channel, voice_params, seed)
        self.voices[name] = voice
        return voice

    def remove_voice(self, name: str) -> None:
        voice = self._voice(name)
        del self.voices[voice.name]
        voice.removed = True  # a listening policy still on it (a reload re-attaches it) stays silent
        with voice.generating:  # a companion being made now is scheduled before its end below
            pass
        self.scheduler.end_notes(lambda n: n.voice == voice.name)

    def _voice(self, voice: str | Voice) -> Voice:
        if isinstance(voice, Voice):
            return voice
        if voice not in self.voices:
            raise LivernnError(f"no voice named {voice!r}; voices: {', '.join(self.voices) or 'none'}")
        return self.voices[voice]

    # -- performance -----------------------------------------------------------------
    def swap(self, voice: str | Voice, model: str | Path | ModelLike, at: str = "now", policy: str = "ring") -> Future:
        """Load, warm and prime ``model`` off the clock, then swap it into ``voice`` at the
        next ``at`` boundary. The Future gives the new model, or a one-line LivernnError
        (and the old model plays on)."""
        voice = self._voice(voice)
        if at not in SWAP_AT:
            raise LivernnError(f"swap at must be one of {', '.join(SWAP_AT)}, got {at!r}")
        if policy not in SWAP_POLICIES:
            raise LivernnError(f"swap policy must be one of {', '.join(SWAP_POLICIES)}, got {policy!r}")
        if model is None:
            raise LivernnError("swap needs a model: a name like 'folk', a path or what load() returned")
        self.check_model(model)  # at once, not after the swap has started
        future: Future = Future()
        if self._loader is None:
            self._loader = ThreadPoolExecutor(1, thread_name_prefix="livernn-load")

        def job() -> None:
            try:
                loaded = self.load(model)
                generator = loaded.generator(voice.seed)
                generator.warmup()
                primed_at = voice.notes_heard
                generator.prime(voice.recent_notes())
                voice.install(SwapPlan(loaded, generator, at, policy, future, primed_at))
            except Exception as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                message = f"swap on voice {voice.name} failed, old model plays on: {reason}"
                future.set_exception(LivernnError(message))
                self._error(message)

        self._loader.submit(job)
        return future

    def learn(self, voice: str | Voice, bars: float = 32, seconds: float = 60.0, steps: int | None = None,
              report: Callable[[str], None] | None = None) -> LearnJob:
        """Fine-tune ``voice``'s model on what it (and its player) played in the last ``bars``
        bars, in a process of its own within ``seconds``, then swap the result in at a bar
        (engine/learn.py). Returns the job at once; ``report`` gets its one-line outcome."""
        from livernn.engine.learn import LearnJob

        voice = self._voice(voice)
        for running in self.learning:
            if running.voice is voice and running.running:
                raise LivernnError(f"voice {voice.name!r} is already learning ({running.name}); cancel that first")
        job = LearnJob(self, voice, bars, seconds, steps, report)
        recent = self.learning[-4:]
        self.learning = [j for j in self.learning if j.running or j in recent] + [job]
        return job

    @property
    def tempo(self) -> float:
        return self.clock.bpm

    @tempo.setter
    def tempo(self, bpm: float) -> None:
        self.set_tempo(bpm)

    def set_tempo(self, bpm: float) -> None:
        bpm = check_bpm(bpm)
        if self.clock.sync_source is not None:  # the source (Link) announces it when it has it
            self.clock.set_tempo(bpm)
            return
        self.band.said(bpm)
        self.clock.set_tempo(bpm)
        self.emit("tempo", self.clock.bpm)

    # -- playing with others (engine/band.py) ------------------------------------------
    def sync(self, source: str, start_stop: bool = False) -> str:
        """Take beats from ``"internal"``, ``"link"`` or ``"midi:NAME"`` from now on (no jump)."""
        return self.band.sync(source, start_stop)

    def clock_out(self, name: str) -> None:
        """Send MIDI clock (24 ppqn, SPP + Start/Continue, Stop) on the MIDI output ``name``."""
        self.band.clock_out(name)

    def stop_clock_out(self, name: str) -> None:
        self.band.stop_clock_out(name)

    def set_offset(self, name: str, ms: float) -> None:
        """Latency compensation: output ``name`` gets every event ``ms`` later (negative: earlier)."""
        self.band.set_offset(name, ms)

    def panic(self) -> None:
        """Tracked note-offs, then CC 123/120 on every output; voices play on from here."""
        self.scheduler.panic(list(self.outputs.values()) + list(self.taps))
        for voice in self.voices.values():
            voice._sounding = []
        self.emit("panic")

    def record(self, path: str | Path) -> Path:
        """Record everything played from now on to a MIDI file."""
        from livernn.outputs import file_recorder

        if self._recorder is not None:
            raise LivernnError(f"already recording to {self._recorder.path}; stop_record() first")
        recorder = file_recorder(path, self.clock.bpm)
        recorder.attach(self.clock)
        self._recorder = recorder
        self.taps = (*self.taps, recorder)
        return recorder.path

    def stop_record(self) -> Path:
        """Stop recording and write the file; returns its path."""
        recorder = self._recorder
        if recorder is None:
            raise LivernnError("not recording")
        self._recorder = None
        self.taps = tuple(t for t in self.taps if t is not recorder)
        recorder.close()
        if recorder.failed:
            self._error(recorder.failed)
        return recorder.path

    # -- events ------------------------------------------------------------------------
    def on(self, event: str, callback: Callable) -> Callable[[], None]:
        """Call ``callback(*args)`` on an event; returns a function that unsubscribes.

        note: (voice, pitch, velocity, t_on, t_off); swap: (voice, model name, beat);
        error: (message,); tempo: (bpm,); panic: (). Callbacks run on engine threads:
        keep them short."""
        if event not in self._listeners:
            raise LivernnError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self._listeners[event] = [*self._listeners[event], callback]

        def off() -> None:
            self._listeners[event] = [c for c in self._listeners[event] if c is not callback]

        return off

    def emit(self, event: str, *args: Any) -> None:
        for callback in self._listeners[event]:
            try:
                callback(*args)
            except Exception as exc:  # a listener's bug must not stop the music
                if event != "error":
                    self._error(f"{event} listener {callback!r}: {exc}")

    def _error(self, message: str) -> None:
        self.errors.append(message)
        del self.errors[:-100]
        if self._listeners["error"]:
            self.emit("error", message)
        else:
            print(f"livernn: {message}", file=sys.stderr)

    # -- threads -----------------------------------------------------------------------
    def _generate(self) -> None:
        if self.scheduler.want_realtime:
            make_realtime(REALTIME_PRIORITY - 1)
        held = False
        while self._running:
            now = time.monotonic()
            if self.held or held:
                if self.held:  # the source's transport is stopped: nothing plays
                    held = True
                    self._stopped.wait(GENERATION_PERIOD)
                    continue
                held = False
                for voice in list(self.voices.values()):
                    voice._cursor = None  # resume on the next beat, not where the stop left off
            for voice in list(self.voices.values()):
                try:
                    voice.fill(now)
                except Exception as exc:  # this voice falls back or goes silent; the rest play on
                    self._error(voice.fail(exc))
            self._stopped.wait(GENERATION_PERIOD)

    def _housekeep(self) -> None:
        # Realtime too (lowest): a normal thread preempted by the OS while it holds the GIL
        # would hold up the sender for as long as the OS keeps it off the CPU.
        if self.scheduler.want_realtime:
            make_realtime(1)
        while not self._stopped.wait(HOUSEKEEPING_PERIOD):
            for out in (*self.outputs.values(), *self.taps):
                try:
                    out.maintain()
                except Exception as exc:
                    self._error(f"{out.describe()}: {exc}")
            self._check_delivery()
            recorder = self._recorder
            if recorder is not None and recorder.failed:
                self._error(recorder.failed)
                self._recorder = None
                self.taps = tuple(t for t in self.taps if t is not recorder)

    def _check_delivery(self) -> None:
        """Turn an output's new ``problem`` (messages not reaching its port: a dead or stuck
        MIDI sender process, a JACK client that stopped running) into one "error" event; it
        stays in ``status()["not_delivering"]`` until the output recovers."""
        for name, out in list(self.outputs.items()):
            problem = getattr(out, "problem", None)
            if problem is None:
                self._problems.pop(name, None)
            elif name not in self._problems:
                self._problems[name] = problem
                self._error(f"output {name} is not delivering: {problem}")
            else:
                self._problems[name] = problem

    def not_delivering(self) -> dict[str, str]:
        """Outputs whose messages are not reaching their port now, with the reason."""
        return dict(self._problems)

    def status(self) -> dict[str, Any]:
        late = sorted(self.scheduler.lateness)

        def pct(q: float) -> float:
            return round(1000 * late[min(len(late) - 1, int(q * len(late)))], 3) if late else math.nan

        return {
            "playing": self._running,
            "bpm": self.clock.bpm,
            "clock": self.band.status(),
            "offsets_ms": self.band.offsets_ms(),
            "beat": round(self.clock.beat(), 3),
            "lookahead": self.lookahead,
            "voices": {name: v.status() for name, v in self.voices.items()},
            "outputs": {name: o.describe() for name, o in self.outputs.items()},
            "not_delivering": self.not_delivering(),
            "recording": str(self._recorder.path) if self._recorder is not None else None,
            "open_notes": len(self.scheduler.open_notes()),
            "send_late_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            # Where a sender process keeps the deadline (MIDI), the figure that matters is
            # its own: the scheduler above only hands messages to it, LEAD seconds early.
            "output_late_ms": {name: dict(ms) for name, o in self.outputs.items()
                               if (ms := getattr(o, "late_ms", None))},
            "switch_interval": sys.getswitchinterval(),
            "realtime": self.scheduler.realtime,
            "errors": self.errors[-5:],
            "learning": [job.status() for job in self.learning],
        }

"""Learning from the stage: fine-tune a voice's model on what was just played, in another
process, and swap the result in at a bar line while the show plays on.

``Session.learn(voice, bars=32, seconds=60)`` (the prompt's ``learn(v)``, a patch's
``learn`` action) takes the voice's history (``Voice.played``: its own notes and, when it
listens, the player's, in model space, in the order the model heard them), writes it to a
temporary folder and starts ``python -m livernn.train.learn`` on it (livernn.train.learn:
its own interpreter and GIL, nice 19, one torch thread, CUDA where there is one). A
``livernn-learn`` thread here only waits on that process's output; when it ends well,
the new model (``<model>-learn-<n>`` in the user's models folder, with a card saying what it
was tuned on) goes through the ordinary hot swap (``Session.swap(..., at="bar")``): loaded,
warmed and primed off the clock, taking over at the next bar.

A ``LearnJob`` is the handle: ``job.cancel()``, ``job.state``, ``job.status()`` (also in
``Session.status()["learning"]``), ``job.wait()``. Whatever happens it says one line:
the new model playing, or why not (the old model plays on). Nothing it does can stop the
music: the process is killed at its time budget plus ``GRACE`` (starting Python, loading
torch and the model, saving), and when the session stops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livernn.errors import LivernnError, shown

if TYPE_CHECKING:
    from livernn.engine.voice import Voice

MIN_NOTES = 16  # fewer than this is too little to learn anything from
GRACE = 120.0  # seconds beyond the budget for starting, loading and saving (a loaded machine, nice 19)
STATES = ("starting", "training", "swapping", "done", "failed", "cancelled")
_SUFFIX = re.compile(r"-learn-\d+$")
_names_lock = threading.Lock()
_reserved: set[Path] = set()


def models_folder() -> Path:
    """Where tuned models go: the user's first models folder ($LIVERNN_MODELS, else the
    user data folder's ``models/``), where names are looked up (livernn.library)."""
    from livernn.library import user_folders

    return user_folders("models")[0]


def next_name(base: str, folder: Path) -> Path:
    """``<base>-learn-<n>`` with the next free ``n`` (a tuned model's own suffix dropped:
    tuning ``bach-learn-2`` makes ``bach-learn-3``); reserved until the job ends."""
    from livernn.library import NAME

    stem = _SUFFIX.sub("", base)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem)[:48].strip("-.")  # a name (meta's) may be anything
    if not NAME.match(stem + "-learn-1"):
        stem = "model"
    pattern = re.compile(re.escape(stem) + r"-learn-(\d+)$")
    with _names_lock:
        taken = [int(m.group(1)) for p in [*folder.glob(f"{stem}-learn-*"), *_reserved]
                 if p.parent == folder and (m := pattern.match(p.name))]
        path = folder / f"{stem}-learn-{max(taken, default=0) + 1}"
        _reserved.add(path)
    return path


class LearnJob:
    """One fine-tune on its way; see the module docstring."""

    def __init__(self, session: Any, voice: Voice, bars: float = 32, seconds: float = 60.0,
                 steps: int | None = None, report: Callable[[str], None] | None = None,
                 device: str = "auto") -> None:
        for what, value, lo, hi in (("bars", bars, 1, 1024), ("seconds", seconds, 1, 3600)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise LivernnError(f"learn {what} must be a number in {lo}..{hi}, got {shown(value)}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise LivernnError(f"learn steps must be a whole number >= 1, got {shown(steps)}")
        model_dir = getattr(voice.model, "path", None)
        if model_dir is None:
            raise LivernnError(f"voice {voice.name!r} plays a model with no files to tune")
        notes = voice.played(bars)
        if len(notes) == 0:
            raise LivernnError(f"nothing played yet on voice {voice.name!r}")
        if len(notes) < MIN_NOTES:
            raise LivernnError(f"only {len(notes)} notes played on voice {voice.name!r} in the last {bars:g} bars; "
                               f"learn needs {MIN_NOTES}")
        self.session, self.voice = session, voice
        self.tuned = voice.model  # what it learns from: swapped in only if the voice still plays it
        self.bars, self.seconds, self.steps, self.device = float(bars), float(seconds), steps, device
        self.report = report or print
        self.material = notes
        self.base = str(getattr(voice.model, "name", Path(model_dir).name))
        self.model_dir = Path(model_dir)
        listening = voice.listening
        heard = listening is not None and listening.heard > 0 and listening.options.hear
        player = " and the player" if heard else ""
        self.tuned_on = (f"{len(notes)} notes from voice {voice.name!r}{player}, the last {bars:g} bars "
                         f"at {session.clock.bpm:g} BPM")
        self.folder = models_folder()
        self.path = next_name(self.base, self.folder)
        self.name = self.path.name
        self.state = "starting"
        self.message: str | None = None
        self.progress: dict[str, Any] = {}
        self.result: dict[str, Any] = {}
        self.started = time.monotonic()
        self.ended: float | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._overtime_reason: str | None = None
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._tmp = Path(tempfile.mkdtemp(prefix="livernn-learn-"))
        self._thread = threading.Thread(target=self._run, name="livernn-learn", daemon=True)
        self._thread.start()

    # -- the handle ------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Stop the fine-tune: the process is ended, nothing is written, the old model plays
        on. False (with a line saying so) once the new model is already swapping in."""
        with self._lock:
            if self.state in ("done", "failed", "cancelled"):
                return False
            if self.state == "swapping":
                if self.session.playing:  # (a show stopping says how the swap ended instead)
                    self.report(f"learn {self.voice.name}: too late to cancel, {self.name} is already swapping in")
                return False
            self.state = "cancelled"
            proc = self._proc
        if proc is not None:
            _stop(proc)
        self._finish(f"learn {self.voice.name} cancelled, {self.base} plays on")
        return True

    def wait(self, timeout: float | None = None) -> str:
        """Block until it has ended (done, failed or cancelled); returns the state."""
        self._finished.wait(timeout)
        return self.state

    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def status(self) -> dict[str, Any]:
        end = self.ended if self.ended is not None else time.monotonic()
        return {"voice": self.voice.name, "model": self.name, "from": self.base, "state": self.state,
                "notes": len(self.material), "seconds": round(end - self.started, 1), "budget": self.seconds,
                "step": self.progress.get("step", self.result.get("steps", 0)), "message": self.message}

    def __repr__(self) -> str:
        s = self.status()
        return f"<learn {s['voice']} -> {s['model']}: {s['state']}, {s['seconds']:g} s, step {s['step']}>"

    # -- the learn thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._train()
        except Exception as exc:  # noqa: BLE001 - anything here is one line, never the show's problem
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._fail(reason)

    def _train(self) -> None:
        import numpy as np

        # A thread inherits its creator's scheduling: a trigger fired from a realtime input
        # thread must not hand SCHED_FIFO to a training process (it resets it too).
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except (AttributeError, OSError):
            pass
        notes = self._tmp / "material.npy"
        np.save(notes, self.material, allow_pickle=False)
        request = {"model": str(self.model_dir), "notes": str(notes), "out": str(self.path), "name": self.name,
                   "seconds": self.seconds, "steps": self.steps, "tuned_on": self.tuned_on, "device": self.device}
        (self._tmp / "request.json").write_text(json.dumps(request), encoding="utf-8")
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        with self._lock:
            if self.state != "starting":
                return  # cancelled before the process started
            log = open(self._tmp / "stderr.txt", "w", encoding="utf-8")  # noqa: SIM115 - closed below
            self._proc = proc = subprocess.Popen(
                [sys.executable, "-m", "livernn.train.learn", str(self._tmp / "request.json")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
            self.state = "training"
        timer = threading.Timer(self.seconds + GRACE, self._overtime, (proc,))
        timer.daemon = True
        timer.start()
        final: dict[str, Any] = {}
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "done" in message or "error" in message:
                    final = message  # the model is in place (or never will be): no need to wait
                    break  # for torch's slow exit, which can take seconds on a busy machine
                if "step" in message:
                    self.progress = message
        finally:
            timer.cancel()
            if proc.stdin is not None:
                proc.stdin.close()  # the process leaves at once (its stdin watcher)
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()
            log.close()
        if self.state == "cancelled":
            return
        if not final.get("done"):
            reason = final.get("error") or self._overtime_reason or self._stderr_tail() \
                or f"the training process ended with code {proc.returncode}"
            self._fail(reason)
            return
        self.result = final
        with self._lock:
            if self.state == "cancelled":
                return
            self.state = "swapping"
        voice = self.voice
        if self.session.voices.get(voice.name) is not voice:
            self._fail_swap(f"voice {voice.name} is gone")
            return
        if voice.model is not self.tuned:  # swapped by hand meanwhile: the performer's choice stands
            self._fail_swap(f"voice {voice.name} plays {getattr(voice.model, 'name', voice.model)} now")
            return
        # Waited for here, not in a done-callback: the swap's Future is resolved on the
        # generation thread, which must not be the one to print.
        future = self.session.swap(self.voice, self.path, at="bar")
        while True:
            try:
                exc = future.exception(timeout=0.25)
                break
            except TimeoutError:
                if not self.session.playing:
                    self._fail_swap("the show stopped before it took over")
                    return
        if exc is not None:
            self._fail_swap(str(exc))  # the swap's own line: "... failed, old model plays on: ..."
            return
        r = self.result
        self.state = "done"
        self._finish(f"learn {self.voice.name}: {self.name} playing (NLL on the last {self.bars:g} bars "
                     f"{r['before']:.2f} -> {r['after']:.2f}, {r['steps']} steps in {r['seconds']:.0f} s)")

    def _fail_swap(self, reason: str) -> None:
        self.state = "failed"
        self._finish(f"learn {self.voice.name}: {self.name} is saved but not playing: {reason}")

    def _overtime(self, proc: subprocess.Popen[str]) -> None:
        self._overtime_reason = f"it ran past its time budget ({self.seconds:g} s + {GRACE:g} s to start and save)"
        _stop(proc)

    def _stderr_tail(self) -> str:
        try:
            lines = [x for x in (self._tmp / "stderr.txt").read_text(encoding="utf-8").splitlines() if x.strip()]
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.state in ("done", "cancelled", "failed"):
                return
            self.state = "failed"
        self._finish(f"learn {self.voice.name} failed, {self.base} plays on: {reason}")

    def _finish(self, message: str) -> None:
        if self._finished.is_set():
            return
        self.message = message
        self.ended = time.monotonic()
        with _names_lock:
            _reserved.discard(self.path)
        shutil.rmtree(self._tmp, ignore_errors=True)
        for leftover in self.folder.glob(f".{self.name}.part-*"):  # a run ended half-way
            shutil.rmtree(leftover, ignore_errors=True)
        self._finished.set()
        try:
            self.report(message)
        except Exception:  # noqa: BLE001 - a broken report must not leave the job unfinished
            pass


def _stop(proc: subprocess.Popen[str], timeout: float = 3.0) -> None:
    """SIGTERM, then SIGKILL if it does not go."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)

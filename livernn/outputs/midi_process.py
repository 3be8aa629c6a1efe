"""MIDI out through a sender process (``midi_sender``): deadlines kept whatever Python does here.

Why a process: measured with bench/bench_timing.py, an in-process sender thread meets the
onset targets while this interpreter is idle, but with pure-Python work running beside it
(a REPL user's code) on a loaded machine its p99 grows to tens of milliseconds: the busy
thread holds the GIL, and when the OS preempts it, the sender waits for the GIL for as long
as the OS keeps the busy thread off the CPU. The sender process has its own interpreter,
so nothing here can delay it.

The scheduler hands each message over ``latency`` (LEAD) seconds early, as it does for
timestamped OSC; the process sends it at its logical time. The open-note registry stays in
the scheduler: a note cancelled after its note-on was handed over still gets a note-off
just after that note-on.

Silence must not pass unnoticed: ``problem`` says why this output is not delivering (the
sender process died, stopped answering, or reports that its messages do not come back
through JACK), and the session turns a new problem into an "error" event and shows it in
``status()`` and on the REPL's status line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import IO

from livernn.errors import LivernnError
from livernn.outputs.base import MidiBytesOutput

LEAD = 0.05  # seconds ahead of its time a message goes to the sender process
SILENT_AFTER = 0.5  # seconds without an "alive" line from the sender: it is stopped or stuck


class MidiProcessOutput(MidiBytesOutput):
    """Like ``MidiOutput`` (same names, same creation rules), sent from a sender process."""

    kind = "midi"
    latency = LEAD

    def __init__(self, name: str, create: bool = True, api: int | None = None) -> None:
        super().__init__()
        if not name or not isinstance(name, str) or any(c in name for c in "\n\0"):
            raise LivernnError(f"a MIDI port name is needed, got {name!r}")
        self.name = name
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "livernn.outputs.midi_sender", name, "1" if create else "0",
             "-" if api is None else str(api)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False, env=dict(os.environ),
            # Its own session: a terminal's Ctrl-C (sent to the whole foreground group) must
            # not kill it before it has sent the note-offs the parent hands it while stopping.
            # It ends on "quit", or when the parent dies and its stdin closes.
            start_new_session=True,
        )
        # Both pipes exist: Popen was asked for stdin=PIPE and stdout=PIPE.
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._stdout: IO[bytes] = self._proc.stdout
        first = self._stdout.readline().decode(errors="replace").strip()
        if not first.startswith("ok "):
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:  # it said something else and lingers: end it
                self._proc.kill()
                self._proc.wait()
            raise LivernnError(first[6:] if first.startswith("error ") else
                               f"the MIDI sender process for {name!r} did not start")
        self.description = first[3:]
        self._alive_at = time.monotonic()
        self._stalled: str | None = None
        self._gone: str | None = None
        self._closing = False
        self.reopens = 0  # JACK clients the sender replaced because the server did not run them
        self.late_ms: dict[str, float] = {}  # the sender process's own send lateness figures
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"livernn-midi-{name}")
        self._reader.start()

    def _read(self) -> None:
        for raw in self._stdout:
            line = raw.decode(errors="replace").strip()
            if line == "alive":
                self._alive_at = time.monotonic()
            elif line.startswith("stalled "):
                self._stalled = line[8:]
                self.errors += 1
                self.last_error = self._stalled
            elif line == "flowing":
                self._stalled = None
            elif line.startswith("reopened "):
                self.reopens = int(line[9:])
            elif line.startswith("late "):
                p50, p99, worst, n = line.split()[1:]
                self.late_ms = {"p50": float(p50), "p99": float(p99), "max": float(worst), "n": int(n)}
            elif line.startswith("error "):
                self.errors += 1
                self.last_error = line[6:]
        if not self._closing:
            code = self._proc.wait()
            self._gone = f"the MIDI sender process exited (code {code})"

    @property
    def problem(self) -> str | None:
        """Why messages are not reaching the port now, or None while they are."""
        if self._gone is not None:
            return self._gone
        if self._proc.poll() is not None and not self._closing:
            return f"the MIDI sender process exited (code {self._proc.returncode})"
        silent = time.monotonic() - self._alive_at
        if silent > SILENT_AFTER and not self._closing:
            return f"the MIDI sender process has not answered for {silent:.1f} s (stopped or stuck)"
        return self._stalled

    def _write(self, line: str) -> None:
        with self._lock:
            try:
                self._stdin.write(line.encode() + b"\n")
                self._stdin.flush()
                self.sent += 1
            except (BrokenPipeError, ValueError, OSError) as exc:
                self.errors += 1
                self.last_error = f"sender process gone ({exc})"
                if not self._closing:
                    self._gone = f"the MIDI sender process is gone ({exc})"

    def _send(self, data: list[int], t: float) -> None:
        self._write(f"at {t!r} {bytes(data).hex()}")

    # -- MIDI clock out: the sender process times the ticks (midi_clock_out.py) -------
    def clock_anchor(self, t: float, beat: float, bpm: float) -> None:
        """The session clock's tempo map from ``t`` on (beat at ``t``, rate in BPM)."""
        self._write(f"clock {t!r} {beat!r} {bpm!r}")

    def clock_start(self, t: float, beat: float) -> None:
        """Song Position Pointer and Start/Continue, then 24 ticks a beat from ``beat`` at ``t``."""
        self._write(f"cstart {t!r} {beat!r}")

    def clock_stop(self, t: float) -> None:
        self._write(f"cstop {t!r}")

    def describe(self) -> str:
        problem = self.problem
        reopened = f", its JACK client reopened {self.reopens}x" if self.reopens else ""
        return (f"{self.description} (sender process{reopened})"
                + (f": NOT DELIVERING, {problem}" if problem else ""))

    def close(self) -> None:
        self._closing = True
        if self._proc.poll() is None:
            self._write("quit")
            try:
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass

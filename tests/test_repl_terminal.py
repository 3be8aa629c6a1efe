"""``livernn repl`` in a real terminal (tmux), playing into a JACK probe in another process.

What a performer sees (prompt, status line, one-line errors, short tracebacks, the status
table, Tab completion) and what the synth hears (notes; none moved by a busy loop typed
at the prompt; none left sounding after Ctrl-D, SIGTERM, SIGHUP or a closed terminal).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from peers import wait_for
from test_repl_engine import (
    BUSY_S,
    ONSET_P99_BOUND_MS,
    QueueProbe,
    arrived_onsets,
    note_ons,
    pair_onsets,
    recorded_onsets,
    window_figures,
)

pytestmark = pytest.mark.integration
LIVERNN = Path(sys.executable).parent / "livernn"


def settle(probe, quiet: float = 0.5, timeout: float = 5.0) -> None:
    """Wait until the probe has heard nothing new for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline and count != len(probe.messages()):
        count = len(probe.messages())
        time.sleep(quiet)


@pytest.fixture
def probe(jack):
    probe = QueueProbe(f"tprobe{os.getpid() % 10000}{time.monotonic_ns() % 1000}")
    yield probe
    probe.close()


class Terminal:
    """A tmux session running one command: type keys, read the screen."""

    def __init__(self, command: list[str], env: dict[str, str], before: str = "", after: str = "") -> None:
        """``before``/``after``: shell commands run in the pane around ``command``."""
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: run ./run-tests.sh, which installs the test peers")
        self.name = f"lvr{os.getpid()}-{time.monotonic_ns() % 1000000}"
        shell = " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command)
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "50",
                        f"{before}env {shell}; {after}echo livernn exited $?; sleep 30"],
                       check=True)  # the pane stays to be read
        self.pid = int(subprocess.run(["tmux", "list-panes", "-t", self.name, "-F", "#{pane_pid}"],
                                      capture_output=True, text=True, check=True).stdout.split()[0])

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, line: str, wait_for_text: str | None = None, timeout: float = 15) -> None:
        self.keys("-l", line)
        self.keys("Enter")
        if wait_for_text is not None:
            self.wait(wait_for_text, timeout)

    def wait(self, text: str, timeout: float = 15) -> str:
        return wait_for(lambda: text in self.screen() and self.screen(), timeout, f"{text!r} on the screen")

    def livernn_pid(self) -> int | None:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def terminal(jack, tmp_path, request):
    env = {"JACK_DEFAULT_SERVER": jack.name, "JACK_NO_START_SERVER": "1", "LIVERNN_MIDI_API": "jack",
           "LIVERNN_HISTORY": str(tmp_path / "history")}
    term = Terminal([str(LIVERNN), "repl"], env, **getattr(request, "param", {}))
    yield term
    term.close()


def test_a_performer_session_in_a_real_terminal(terminal, probe, tmp_path, capsys):
    t = terminal
    t.wait("livernn>", timeout=60)
    t.wait("tempo 120 | bar")  # the live status line

    tap_file = tmp_path / "tap.mid"
    t.type("s = session(); from livernn.outputs import file_recorder; "
           f"tap = s.add_tap(file_recorder({str(tap_file)!r}))")
    t.type(f"lead = voice('lead', out=midi({probe.client!r}), density=3)")
    wait_for(lambda: len(note_ons(probe)) >= 6, 20, "notes at the probe")
    t.wait("notes/s")

    t.keys("-l", "lead.tempe")
    t.keys("Tab")
    t.wait("lead.temperature")
    t.keys("-l", " = 1.3")
    t.keys("Enter")
    t.type("lead.temperature = 9", "error: temperature must be in 0.05..5, got 9")
    t.type("lead.temperature", "1.3")
    t.type("1/0", "ZeroDivisionError: division by zero")  # the line itself raised: no traceback
    t.type("(lambda: 1/0)()", "Traceback (your code)")  # raised inside: the user's frames only
    assert 'File "<repl-' in t.screen() and "site-packages" not in t.screen()
    t.type("status()", "params (not default)")
    assert "temperature=1.3" in t.screen()

    idle_from = time.monotonic()
    time.sleep(BUSY_S)
    idle_to = time.monotonic()
    t.type("import time, json; t0 = time.monotonic()")
    t.type(f"while time.monotonic() - t0 < {BUSY_S}: pass")
    t.keys("Enter")  # the blank line that closes the block
    # Typed while the loop runs, so the REPL runs these back to back when it ends: the wait
    # after mute is the REPL's own. Every note handed over (one lookahead, 0.15 s) plays out
    # before the recording is read; read at once, a last chord was heard but not in the
    # dump (325 arrived for 321 recorded, the chord 83 ms after the last recorded note-on).
    t.type("mute(lead); muted = time.monotonic(); time.sleep(1.0)")
    result = tmp_path / "heard.json"
    t.type(f"json.dump({{'events': [[e[0], list(e[1])] for e in tap.events], 'busy': [t0, muted], "
           f"'read': time.monotonic()}}, open({str(result)!r}, 'w'))")
    wait_for(result.exists, 15, "the REPL to write what it played")
    settle(probe, quiet=0.3)
    data = json.loads(result.read_text())
    busy_from, busy_to = data["busy"][0], data["busy"][0] + BUSY_S
    assert data["busy"][1] - busy_from >= BUSY_S and data["read"] - data["busy"][1] >= 1.0

    pairs = pair_onsets(recorded_onsets(data["events"]), arrived_onsets(probe))  # none missing, none extra
    windows = {"idle": (idle_from, idle_to), "busy": (busy_from, busy_to)}
    figures = window_figures(pairs, windows, "terminal", capsys)
    assert figures["idle"]["p99"] <= ONSET_P99_BOUND_MS, figures
    assert figures["busy"]["p99"] <= ONSET_P99_BOUND_MS, figures

    t.keys("C-d")
    wait_for(lambda: t.livernn_pid() is None, 15, "livernn to exit on Ctrl-D")
    settle(probe)
    assert probe.note_balance() == {}


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


EXIT_FILE = Path("/tmp") / f"livernn-exit-{os.getpid()}"
NO_SIGHUP = {"before": "trap '' HUP; ", "after": f"echo $? > {EXIT_FILE}; "}


@pytest.mark.parametrize(("how", "terminal"), [("SIGTERM", {}), ("SIGHUP", {}), ("closed-terminal", {}),
                                               ("closed-terminal-no-SIGHUP", NO_SIGHUP)],
                         ids=["SIGTERM", "SIGHUP", "closed-terminal", "closed-terminal-no-SIGHUP"],
                         indirect=["terminal"])
def test_a_stop_signal_or_a_closed_terminal_ends_every_note_and_writes_the_recording(terminal, probe, tmp_path,
                                                                                     how):
    """SIGTERM, SIGHUP, and the terminal itself going away (tmux kills the pane: the kernel
    hangs up the tty and livernn gets SIGHUP with nowhere left to print; or, under a shell
    that ignores SIGHUP and so lives on, no signal at all, only a terminal that is gone):
    every note-on that reached the synth gets its note-off, and the recording typed at the
    prompt is written."""
    t = terminal
    EXIT_FILE.unlink(missing_ok=True)
    record = tmp_path / "set.mid"
    t.wait("livernn>", timeout=60)
    t.type(f"record({str(record)!r}); lead = voice('lead', out=midi({probe.client!r}), density=2, max_length=16)")
    wait_for(lambda: len(note_ons(probe)) >= 6, 20, "notes at the probe")
    pid = t.livernn_pid()
    assert pid is not None
    if how.startswith("closed-terminal"):
        t.close()
    else:
        os.kill(pid, getattr(signal, how))
    wait_for(lambda: _gone(pid), 15, f"livernn to exit on {how}")
    settle(probe)
    assert probe.note_balance() == {}
    midi = mido.MidiFile(record)
    ons = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    offs = [m for m in midi.tracks[0] if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]
    assert len(ons) >= 6 and len(ons) == len(offs)
    # The recording has what the synth heard, the last notes too: a note the MIDI sender
    # already had (50 ms ahead) when the show stopped sounds, and was left out of the file
    # (caught here once in some 60 runs: a chord's two notes of one pitch, 11 recorded for 12
    # heard); test_engine_midi's ..._when_the_show_panics_or_stops_... makes it on purpose.
    seconds, recorded = 0.0, []
    for m in midi:
        seconds += m.time
        if m.type == "note_on" and m.velocity > 0:
            recorded.append((seconds, m.channel, m.note))
    arrived = arrived_onsets(probe)
    zero = min(t for t, _, _ in arrived) - recorded[0][0]  # file time on the probe's clock, roughly
    pair_onsets([(t + zero, ch, pitch) for t, ch, pitch in recorded], arrived)  # none missing, none extra
    if how == "closed-terminal-no-SIGHUP":
        wait_for(EXIT_FILE.exists, 15, "the pane's shell to write livernn's exit code")
        assert EXIT_FILE.read_text().strip() == "129"  # a closed terminal, as if by SIGHUP
        EXIT_FILE.unlink()
    elif how != "closed-terminal":
        code = 128 + getattr(signal, how)  # the shell's convention: 143, 129
        t.wait(f"livernn exited {code}")
        assert "terminated, all notes ended" in t.screen()


def test_ten_repl_sessions_in_a_row_all_reach_jack(jack, probe, tmp_path):
    """Issue 12: in 1 of 3-4 REPL sessions not one message reached JACK (a probe client
    closed beside the sender's own lost it a notification). Ten sessions in a row against one
    server, each must be heard, and none may say it is not delivering."""
    env = {"JACK_DEFAULT_SERVER": jack.name, "JACK_NO_START_SERVER": "1", "LIVERNN_MIDI_API": "jack",
           "LIVERNN_HISTORY": str(tmp_path / "history")}
    heard = []
    for run in range(10):
        before = len(note_ons(probe))
        term = Terminal([str(LIVERNN), "repl"], env)
        try:
            term.wait("livernn>", timeout=60)
            term.type(f"v = voice('lead', out=midi({probe.client!r}), density=3)")
            wait_for(lambda: len(note_ons(probe)) >= before + 4, 20, f"notes from REPL session {run + 1}")
            assert "NOT DELIVERING" not in term.screen()
            term.keys("C-d")
            wait_for(lambda: term.livernn_pid() is None, 15, "livernn to exit on Ctrl-D")
            heard.append(len(note_ons(probe)) - before)
        finally:
            term.close()
    assert len(heard) == 10 and min(heard) >= 4, heard


"""``livernn repl`` in a real terminal (tmux), playing into a JACK probe in another process.

What a performer sees (prompt, status line, one-line errors, short tracebacks, the status
table, Tab completion) and what the synth hears (notes; none moved by a busy loop typed
at the prompt; none left sounding after Ctrl-D or SIGTERM).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_repl_engine import QueueProbe, busy_bound_ms, note_ons, window_figures

from peers import wait_for

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

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: run ./run-tests.sh, which installs the test peers")
        self.name = f"lvr{os.getpid()}-{time.monotonic_ns() % 1000000}"
        shell = " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command)
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "50",
                        f"env {shell}; sleep 30"], check=True)  # the pane stays to be read after exit
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
def terminal(jack, tmp_path):
    env = {"JACK_DEFAULT_SERVER": jack.name, "JACK_NO_START_SERVER": "1", "LIVERNN_MIDI_API": "jack",
           "LIVERNN_HISTORY": str(tmp_path / "history")}
    term = Terminal([str(LIVERNN), "repl"], env)
    yield term
    term.close()


def test_a_performer_session_in_a_real_terminal(terminal, probe, tmp_path, capsys):
    t = terminal
    t.wait("livernn>", timeout=60)
    t.wait("tempo 120 | bar")  # the live status line

    t.type("s = session(); heard = []; off = s.on('note', lambda *e: heard.append((e[3], e[1])))")
    t.type(f"lead = voice('lead', out=midi({probe.client!r}), density=2)")
    wait_for(lambda: len(note_ons(probe)) >= 6, 20, "notes at the probe")
    t.wait("notes/s")

    t.keys("-l", "lead.tempe")
    t.keys("Tab")
    t.wait("lead.temperature")
    t.keys("-l", " = 1.3")
    t.keys("Enter")
    t.type("lead.temperature = 9", "error: temperature must be in 0.05..5, got 9")
    t.type("lead.temperature", "1.3")
    t.type("1/0", "ZeroDivisionError: division by zero")
    assert 'File "<repl-' in t.screen() and "site-packages" not in t.screen()
    t.type("status()", "params (not default)")
    assert "temperature=1.3" in t.screen()

    idle_from = time.monotonic()
    time.sleep(2.0)
    idle_to = time.monotonic()
    t.type("import time, json; t0 = time.monotonic()")
    t.type("while time.monotonic() - t0 < 2.0: pass")
    t.keys("Enter")  # the blank line that closes the block
    result = tmp_path / "heard.json"
    t.type(f"json.dump({{'heard': heard, 'busy': [t0, time.monotonic()]}}, open({str(result)!r}, 'w'))")
    wait_for(result.exists, 15, "the REPL to write what it played")
    time.sleep(0.2)
    data = json.loads(result.read_text())
    logical = [(t_on, pitch) for t_on, pitch in data["heard"]]
    busy_from, busy_to = data["busy"][0], data["busy"][0] + 2.0
    assert data["busy"][1] - busy_from >= 2.0

    windows = {"idle": (idle_from, idle_to), "busy": (busy_from, busy_to)}
    figures = window_figures(probe, logical, windows, "terminal", capsys)
    assert figures["busy"]["p99"] < busy_bound_ms(figures["idle"])

    t.keys("C-d")
    wait_for(lambda: t.livernn_pid() is None, 15, "livernn to exit on Ctrl-D")
    settle(probe)
    assert probe.note_balance() == {}


def test_sigterm_ends_every_note(terminal, probe):
    t = terminal
    t.wait("livernn>", timeout=60)
    t.type(f"lead = voice('lead', out=midi({probe.client!r}), density=2, max_length=16)")
    wait_for(lambda: len(note_ons(probe)) >= 6, 20, "notes at the probe")
    pid = t.livernn_pid()
    assert pid is not None
    os.kill(pid, 15)
    wait_for(lambda: t.livernn_pid() is None, 15, "livernn to exit on SIGTERM")
    settle(probe)
    assert probe.note_balance() == {}
    assert "terminated, all notes ended" in t.screen()

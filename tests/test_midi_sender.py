"""The MIDI sender process never outlives the show that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from peers import wait_for

pytestmark = pytest.mark.integration

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-m", "livernn.outputs.midi_sender", "orphancheck", "1", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
# Another process holds the sender's input open, as a stuck sibling would: the sender sees
# no end of input when this parent dies, so only the kernel's parent-death signal ends it.
holder = subprocess.Popen(["sleep", "30"], pass_fds=(child.stdin.fileno(),))
print(child.pid, holder.pid, child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_the_sender_dies_when_its_parent_is_killed(jack):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    child_text, holder_text, status = parent.stdout.readline().split(" ", 2)
    child, holder = int(child_text), int(holder_text)
    try:
        assert status.startswith("ok"), status
        assert alive(child)
        parent.send_signal(signal.SIGKILL)  # the show crashes: no quit, no end of input
        parent.wait(10)
        wait_for(lambda: not alive(child), 10, "the orphaned sender to die")
    finally:
        for pid in (child, holder):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

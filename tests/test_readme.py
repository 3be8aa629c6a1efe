"""The README's REPL example works as written: a real terminal types it, a real synth hears it.

The block is read from README.md (so an edit there is what gets tested), typed line by
line into ``livernn repl`` in tmux, against a real JACK server and a MIDI probe whose port
is named like a synth (``midi("synth")`` finds an existing port whose name contains
"synth"). Every line must come back to the prompt with no error and no traceback, notes
must arrive, and the swap to "folk" must take.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from peers import wait_for
from test_repl_engine import QueueProbe, note_ons
from test_repl_terminal import LIVERNN, Terminal

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[1] / "README.md"
PROMPT = "livernn>"


def readme_repl_lines() -> list[str]:
    """The ``>>>`` lines of the README's "Live coding at the REPL" example."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Live coding at the REPL", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return [line[4:] for line in block.splitlines() if line.startswith(">>> ")]


def history(t: Terminal) -> list[str]:
    """Every line the pane has shown, scrollback included."""
    out = subprocess.run(["tmux", "capture-pane", "-p", "-S", "-", "-t", t.name],
                         capture_output=True, text=True).stdout
    return out.splitlines()


def prompts(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.startswith(PROMPT)]


def test_the_readme_block_is_what_this_test_types():
    lines = readme_repl_lines()
    assert len(lines) >= 6
    assert any(line.startswith("v = voice(") for line in lines)
    assert any(line.startswith("swap(") for line in lines)


def test_the_readme_repl_example_plays_and_every_line_is_accepted(jack, tmp_path):
    probe = QueueProbe(f"synth{os.getpid() % 10000}{time.monotonic_ns() % 1000}")
    env = {"JACK_DEFAULT_SERVER": jack.name, "JACK_NO_START_SERVER": "1", "LIVERNN_MIDI_API": "jack",
           "LIVERNN_HISTORY": str(tmp_path / "history")}
    t = Terminal([str(LIVERNN), "repl"], env)
    try:
        t.wait(PROMPT, timeout=60)
        for n, line in enumerate(readme_repl_lines(), start=1):
            t.keys("-l", line)
            t.keys("Enter")
            shown = wait_for(lambda: len(prompts(history(t))) > n and history(t), 30,
                             f"the prompt back after {line!r}")
            at = prompts(shown)
            echo, answer = shown[at[n - 1]], "\n".join(shown[at[n - 1] + 1:at[n]])  # what the line printed
            assert line.split("#")[0].strip() in echo, echo
            assert "error" not in answer.lower() and "Traceback" not in answer, f"{line}\n{answer}"
            if n == 1:
                wait_for(lambda: len(note_ons(probe)) >= 3, 30, "the first notes at the synth port")
        heard = len(note_ons(probe))

        def swapped() -> bool:  # asked again until the bar boundary has passed (2.5 s at 96 BPM)
            t.type("print('model now:', v.model.name)")
            time.sleep(0.5)
            return "model now: folk" in "\n".join(history(t))

        wait_for(swapped, 20, "the swap to folk at the bar", interval=0.5)
        wait_for(lambda: len(note_ons(probe)) > heard, 15, "notes after the whole block")
        t.keys("C-d")
        wait_for(lambda: t.livernn_pid() is None, 15, "livernn to exit on Ctrl-D")
    finally:
        t.close()
        probe.close()

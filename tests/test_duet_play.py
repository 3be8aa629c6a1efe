"""``livernn play --listen midi:NAME --mode M`` in every mode: a player process through real
JACK plays into the command line's voice, a probe process hears it, and SIGTERM mid-phrase
(livernn's notes sounding, the player's held) leaves no note stuck: every note-on at the
probe has its note-off, and play exits 143 as RELIABILITY.md says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from peers import ProcessMidiProbe, stop_process, wait_for
from test_duet_jack import Player, note_ons, phrase

HELD_CHORD = [(0.0, 0x90, 48, 80), (0.0, 0x90, 52, 80), (0.0, 0x90, 55, 80)]

# mode -> (extra arguments, what the player plays, livernn's notes to hear before the signal)
MODES = {
    # two player notes held: their companions sound at the signal
    "follow": ([], [(0.0, 0x90, 60, 90), (0.3, 0x80, 60, 0), (0.5, 0x90, 64, 90), (0.6, 0x90, 67, 90)], 3),
    # a call, then the signal while the answer (twice as long as the call) plays
    "answer": (["--set", "ratio=2", "--set", "gap=0.5"], phrase(0.0, [60, 62, 64, 65, 67, 65, 64, 62]), 2),
    # the chord held, a melody above it; passing tones on, through --set
    "accompany": (["--set", "passing=scale", "--set", "quantize=0.25", "--set", "scale=major",
                   "--set", "density=2"], HELD_CHORD + phrase(0.1, [72, 74, 76, 77, 79]), 6),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_play_listen_sigterm_mid_phrase_leaves_no_stuck_note(jack, tmp_path, mode):
    extra, score, wanted = MODES[mode]
    tag = f"{os.getpid() % 100000}{mode[:2]}"
    player = Player(f"pplayer{tag}")
    probe = ProcessMidiProbe(f"pprobe{tag}")
    cmd = [sys.executable, "-m", "livernn.cli", "play", "bach", "--listen", f"midi:pplayer{tag}", "--mode", mode,
           "--out", f"midi:{probe.client}", "--duration", "0", "--seed", "3", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "listening to" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "livernn play ended early"
        time.sleep(1.0)
        player.play(sorted(score))
        assert player.done.wait(10)
        first_played = player.sent[0][0]
        wait_for(lambda: len([t for t, _ in note_ons(probe.received, 1) if t > first_played]) >= wanted
                 and probe.note_balance(), 10, f"livernn's {mode} notes sounding")
        open_at_signal = sum(probe.note_balance().values())
        proc.send_signal(signal.SIGTERM)  # mid-phrase: livernn's notes sound
        assert proc.wait(20) == 128 + signal.SIGTERM
        time.sleep(0.3)
        print(f"{mode}: {open_at_signal} notes open at the probe when SIGTERM was sent, "
              f"{len(note_ons(probe.received, 1))} note-ons in all")
        assert probe.note_balance() == {}
    finally:
        stop_process(proc)
        player.close()
        probe.close()

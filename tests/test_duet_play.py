"""``livernn play --listen midi:NAME --mode follow``: a player process through real JACK gets
companions from the command line's voice, and SIGTERM with notes held leaves none stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from peers import ProcessMidiProbe, stop_process, wait_for
from test_duet_jack import Player, note_ons


def test_play_listen_follow_then_sigterm_leaves_no_stuck_note(jack, tmp_path):
    tag = f"{os.getpid() % 100000}"
    player = Player(f"pplayer{tag}")
    probe = ProcessMidiProbe(f"pprobe{tag}")
    cmd = [sys.executable, "-m", "livernn.cli", "play", "bach", "--listen", f"midi:pplayer{tag}", "--mode", "follow",
           "--out", f"midi:{probe.client}", "--duration", "0", "--seed", "3"]
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
        player.play([(0.0, 0x90, 60, 90), (0.3, 0x80, 60, 0), (0.5, 0x90, 64, 90), (0.6, 0x90, 67, 90)])
        assert player.done.wait(10)
        wait_for(lambda: len(note_ons(probe.received, 1)) >= 3, 5, "companions from livernn play")
        proc.send_signal(signal.SIGTERM)  # two player notes are held: their companions sound
        assert proc.wait(20) == 128 + signal.SIGTERM
        time.sleep(0.3)
        assert probe.note_balance() == {}
    finally:
        stop_process(proc)
        player.close()
        probe.close()

"""Ableton Link as the clock source, against a real aalink peer in another process.

Link multicasts on every interface it finds, so nothing here runs Link in the test process:
the test runs this file as a program inside a private network namespace with only loopback
(``unshare --net``), where the session and a peer process find each other; the program
prints its measurements as one JSON line and the test judges them. bench/bench_sync.py runs
the same program for its Link figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"

PEER = r"""
import asyncio, sys, threading, time, aalink
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
async def make():
    link = aalink.Link(120.0, loop)
    link.quantum = 4
    link.start_stop_sync_enabled = True
    link.enabled = True
    link.playing = True
    return link
link = asyncio.run_coroutine_threadsafe(make(), loop).result(10)
def read():
    best = None
    for _ in range(5):
        a = time.monotonic(); b = link.beat; c = time.monotonic()
        if best is None or c - a < best[0]:
            best = (c - a, (a + c) / 2, b)
    return best
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "read":
        width, t, beat = read()
        print("%.7f %.7f %.4f %d %.7f" % (t, beat, link.tempo, link.num_peers, width), flush=True)
    elif cmd[0] == "tempo":
        link.tempo = float(cmd[1]); print("%.7f" % time.monotonic(), flush=True)
    elif cmd[0] == "play":
        link.playing = cmd[1] == "1"; print("ok", flush=True)
    elif cmd[0] == "quit":
        break
link.enabled = False
"""


def in_namespace() -> list[str] | None:
    """The command prefix that runs a shell in a private network namespace, or None."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        return None
    for prefix in ([unshare, "--net"], [unshare, "--net", "--map-root-user"]):
        try:
            if subprocess.run([*prefix, "sh", "-c", SETUP], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def run_link_program(timeout: float = 90.0) -> dict:
    """Run ``main()`` below inside a private network namespace; its JSON figures."""
    prefix = in_namespace()
    if prefix is None:
        pytest.fail("no private network namespace here (unshare --net needs root or user namespaces); "
                    "Link must not run outside one, and a missing peer fails rather than skips")
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
    proc = subprocess.run([*prefix, "sh", "-c", f'{SETUP} && exec "$0" "$1" inner', sys.executable, str(HERE)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(lines[-1])


def test_link_follows_a_peer_sends_ours_and_lines_up_bars():
    r = run_link_program()
    print(json.dumps(r))
    assert r["peers"] == 1
    # Switching from internal to Link while playing: no jump in the beat position.
    assert r["switch_max_step_ratio"] <= 1.6 and r["switch_backward"] == 0, r
    # A peer's tempo change is followed within 0.5 s; ours reaches the peer.
    assert r["follow_s"] is not None and r["follow_s"] <= 0.5, r
    assert r["sent_s"] is not None and r["sent_s"] <= 0.5, r
    assert 133 in r["tempo_events"] and 90 in r["tempo_events"], r
    # Bars line up with the peer's timeline (quantum 4) within a millisecond.
    assert r["phase_p99_ms"] <= 1.0 and r["phase_after_change_p99_ms"] <= 1.0, r
    # Start/stop sync: the peer's Stop holds the session, its Start releases it.
    assert r["held_on_stop"] and not r["held_on_start"], r
    assert r["transport"] == [False, True], r


# -- the program run inside the namespace ----------------------------------------------------


def _phase(session, peer, reads: int = 60, tempo: float = 120.0) -> list[float]:
    errors = []
    for _ in range(reads):
        peer.stdin.write("read\n")
        peer.stdin.flush()
        t, beat, _tempo, _peers, width = map(float, peer.stdout.readline().split())
        if width > 0.0002:  # the peer was preempted midway through its reading
            continue
        diff = (session.clock.beat(t) - beat) % 4.0
        diff = diff - 4.0 if diff > 2.0 else diff
        errors.append(abs(diff) * 60.0 / tempo * 1000.0)
        time.sleep(0.015)
    return errors


def main() -> None:
    from livernn.engine import Session

    peer = subprocess.Popen([sys.executable, "-c", PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert peer.stdout.readline().strip() == "ready"

    def ask(cmd: str) -> str:
        peer.stdin.write(cmd + "\n")
        peer.stdin.flush()
        return peer.stdout.readline()

    result: dict = {}
    session = Session(bpm=100)
    tempos: list[float] = []
    transport: list[bool] = []
    session.on("tempo", lambda bpm: tempos.append(round(bpm, 2)))
    session.on("transport", lambda playing: transport.append(playing))
    with session:
        time.sleep(0.3)
        # Switch while playing: sample the beat every ~1 ms across the switch.
        samples = []
        end = time.monotonic() + 1.5
        switched = False
        while time.monotonic() < end:
            now = time.monotonic()
            samples.append((now, session.clock.beat(now)))
            if not switched and now > end - 1.2:
                session.sync("link", start_stop=True)
                switched = True
            time.sleep(0.001)
        t, b = np.array(samples).T
        rates = np.diff(b) / np.maximum(np.diff(t), 1e-6) * 60.0  # beats per minute, sample to sample
        result["switch_max_step_ratio"] = float(np.max(rates / 120.0)) if len(rates) else 0.0
        result["switch_backward"] = int(np.sum(np.diff(b) < -1e-9))
        deadline = time.monotonic() + 5
        while session.status()["clock"]["peers"] != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        result["peers"] = session.status()["clock"]["peers"]
        time.sleep(2.0)  # the slew closes the phase
        phase = _phase(session, peer)
        result["phase_p99_ms"] = float(np.percentile(phase, 99))
        # A peer's tempo change.
        t_cmd = float(ask("tempo 133"))
        follow = None
        while time.monotonic() < t_cmd + 2:
            if abs(session.clock.bpm - 133) < 0.05:
                follow = time.monotonic() - t_cmd
                break
            time.sleep(0.001)
        result["follow_s"] = follow
        # Ours, sent to the peer.
        t_set = time.monotonic()
        session.set_tempo(90)
        sent = None
        while time.monotonic() < t_set + 2:
            if abs(float(ask("read").split()[2]) - 90) < 0.01:
                sent = time.monotonic() - t_set
                break
        result["sent_s"] = sent
        time.sleep(2.0)
        phase = _phase(session, peer, tempo=90.0)
        result["phase_after_change_p99_ms"] = float(np.percentile(phase, 99))
        # Start/stop sync.
        ask("play 0")
        deadline = time.monotonic() + 2
        while not session.held and time.monotonic() < deadline:
            time.sleep(0.005)
        result["held_on_stop"] = session.held
        ask("play 1")
        deadline = time.monotonic() + 2
        while session.held and time.monotonic() < deadline:
            time.sleep(0.005)
        result["held_on_start"] = session.held
        result["status"] = session.status()["clock"]
    ask("quit")
    peer.wait(5)
    result["tempo_events"] = [x for x in tempos if x in (133.0, 90.0)]
    result["transport"] = transport
    print(json.dumps(result), flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["inner"]:
    main()

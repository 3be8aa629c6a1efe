"""The test harness talks to each real peer: JACK MIDI, scsynth over OSC, FluidSynth audio."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import rtmidi
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.midi_system import free_client
from peers import raw_rms, wait_for

pytestmark = pytest.mark.integration


def test_midi_message_crosses_jack(jack, midi_probe):
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="sender")
    out.open_virtual_port("out")
    try:
        jack.connect("sender:out", midi_probe.port)
        time.sleep(0.05)
        out.send_message([0x90, 60, 100])
        out.send_message([0x80, 60, 0])
        wait_for(lambda: len(midi_probe.messages()) >= 2, 5, "MIDI to arrive")
        assert midi_probe.messages() == [[0x90, 60, 100], [0x80, 60, 0]]
        assert midi_probe.note_balance() == {}
    finally:
        free_client(out)


def test_scsynth_answers_status(scsynth):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(OscMessageBuilder("/status").build().dgram, scsynth.address)
        reply = OscMessage(sock.recv(4096))
    assert reply.address == "/status.reply"
    assert reply.params[7] == pytest.approx(48000, rel=0.01)  # nominal sample rate from JACK


def test_fluidsynth_renders_midi_as_sound(jack, fluidsynth):
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="fsender")
    out.open_virtual_port("out")
    try:
        jack.connect("fsender:out", fluidsynth.midi_port)
        time.sleep(0.2)
        out.send_message([0x90, 64, 110])
        time.sleep(0.5)
        out.send_message([0x80, 64, 0])
        time.sleep(0.1)
    finally:
        free_client(out)
    raw = fluidsynth.stop()
    assert raw_rms(raw) > 0.001


_HOLDER = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from peers import start_fluidsynth, start_jack, start_scsynth
tmp = Path(sys.argv[1])
jack = start_jack(tmp, name=sys.argv[3], period=256)
peers = [jack.proc.pid, start_scsynth(tmp, jack).proc.pid, start_fluidsynth(tmp, jack).proc.pid]
print(" ".join(map(str, peers)), flush=True)
sys.stdin.read()
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_peers_die_with_a_killed_test_process(tmp_path):
    """A pytest run killed outright (SIGKILL: no fixture teardown runs) takes its jackd,
    scsynth and FluidSynth with it within 5 s: the kernel sends them SIGTERM when the
    process that started them dies (``peers.start_peer``)."""
    import os
    import signal
    import subprocess
    import sys

    tests = str(Path(__file__).parent)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), tests, f"lvorph{os.getpid() % 100000}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    pids: list[int] = []
    try:
        line = holder.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 3 and all(_running(p) for p in pids), (line, holder.poll())
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        wait_for(lambda: not any(_running(p) for p in pids), 5, "the peers to end with their test process")
    finally:
        holder.kill()
        holder.wait()
        for pid in pids:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)

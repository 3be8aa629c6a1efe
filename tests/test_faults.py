"""Things that break during a show: the show plays on, nothing is lost, nothing sticks.

Each test breaks a real part (scsynth killed and started again, a disk that fills up, a
signal to a running ``livernn``) and fails if the protection it covers is taken away.
A voice whose model raises and a MIDI port that disappears are tested beside the code
they protect (test_engine_midi.py, test_outputs_midi.py; see RELIABILITY.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pretty_midi
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.engine import Session
from livernn.outputs import scsynth as scsynth_output
from peers import ProcessMidiProbe, start_jack, start_scsynth, stop_process, wait_for
from test_soak import jack_env

pytestmark = pytest.mark.integration


class NodeWatcher:
    """A client registered with scsynth (``/notify 1``): keeps the ``/n_go`` of every node."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.started: list[tuple[float, list]] = []
        self._run = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def notify(self) -> None:
        builder = OscMessageBuilder("/notify")
        builder.add_arg(1)
        self.sock.sendto(builder.build().dgram, self.address)

    def _loop(self) -> None:
        while self._run:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ConnectionRefusedError):
                continue
            except OSError:
                return
            try:
                message = OscMessage(data)
            except Exception:
                continue
            if message.address == "/n_go":
                self.started.append((time.monotonic(), list(message.params)))

    def synths_in(self, group: int, since: float) -> int:
        """Synth nodes (not groups) started in ``group`` after ``since``."""
        return sum(1 for t, p in list(self.started) if t >= since and p[1] == group and p[4] == 0)

    def close(self) -> None:
        self._run = False
        self._thread.join(2)
        self.sock.close()


def test_scsynth_restarted_mid_show_gets_its_synthdef_again_and_plays_on(jack, tmp_path):
    server = start_scsynth(tmp_path, jack)
    watcher = NodeWatcher(server.address)
    session = Session(bpm=300)
    errors: list[str] = []
    session.on("error", errors.append)
    try:
        watcher.notify()
        out = session.add_output("sc", scsynth_output("127.0.0.1", server.port, latency=0.2))
        session.add_voice("lead", seed=4)
        session.start()
        wait_for(lambda: watcher.synths_in(out.group, 0) >= 5, 15, "notes on the first scsynth")
        stop_process(server.proc)  # the server crashes; the show goes on without it
        time.sleep(1.0)
        assert session.playing
        server = start_scsynth(tmp_path, jack, port=server.port)  # the same port, a bare server
        restarted = time.monotonic()
        watcher.notify()
        wait_for(lambda: watcher.synths_in(out.group, restarted) >= 5, 15,
                 "notes on the restarted scsynth (SynthDef and group sent again)")
        assert out.restarts >= 1
    finally:
        session.stop()
        watcher.close()
        stop_process(server.proc)


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 256 KiB tmpfs (root), or one the test can make read-only (anyone else)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0:
        yield folder, lambda: folder.chmod(0o555)
        folder.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)

    def fill() -> None:
        with open(folder / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:  # ENOSPC: full
                pass

    try:
        yield folder, fill
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_stops_the_recording_with_a_message_and_the_show_plays_on(small_disk):
    folder, fill = small_disk
    session = Session(bpm=300)
    errors: list[str] = []
    session.on("error", errors.append)
    lead = session.add_voice("lead", seed=2)
    path = session.record(folder / "set.mid")
    session.start()
    try:
        empty = path.stat().st_size
        wait_for(lambda: path.stat().st_size > empty, 15, "a periodic save with notes in it")
        fill()  # the disk is full now: the next periodic save fails
        wait_for(lambda: session.status()["recording"] is None, 15, "the recording to stop")
        played = lead.notes_played
        wait_for(lambda: lead.notes_played >= played + 5, 10, "the show to play on")
        assert session.playing
    finally:
        session.stop()
    assert [e for e in errors if "recording to" in e and "stopped" in e], errors
    assert all("\n" not in e for e in errors)
    saved = pretty_midi.PrettyMIDI(str(path))  # the last good save is still a valid file
    assert saved.instruments and len(saved.instruments[0].notes) >= 1


PATCH = """\
version = 1

[clock]
bpm = 240

[outputs.synth]
type = "midi"
port = "{port}"
create = false

[voices.lead]
outputs = ["synth"]
params = {{ density = 2.0, max_length = 4.0 }}

[voices.bass]
outputs = ["synth"]
channel = 2
params = {{ density = 1.0, pitch_max = 60 }}
"""


def _note_ons(probe) -> int:
    return sum(1 for m in probe.messages() if m[0] & 0xF0 == 0x90 and m[2] > 0)


def _run_until_signal(args: list[str], probe, sig: signal.Signals) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-m", "livernn.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        wait_for(lambda: _note_ons(probe) >= 8 or proc.poll() is not None, 60, "notes from livernn")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _assert_closed_and_valid(record: Path, probe) -> None:
    time.sleep(0.3)  # the last note-offs cross JACK
    assert probe.note_balance() == {}
    midi = pretty_midi.PrettyMIDI(str(record))
    notes = [n for instrument in midi.instruments for n in instrument.notes]
    assert len(notes) >= 8 and all(n.end > n.start for n in notes)
    assert not record.with_name(record.name + ".part").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_perform_ends_every_note_and_closes_the_recording(jack, tmp_path, sig):
    probe = ProcessMidiProbe(f"perf{sig.value}")
    patch, record = tmp_path / "show.toml", tmp_path / "set.mid"
    patch.write_text(PATCH.format(port=probe.client))
    try:
        result = _run_until_signal(["perform", str(patch), "--no-reload", "--record", str(record)], probe, sig)
        assert result.returncode == 0, result.stderr
        _assert_closed_and_valid(record, probe)
    finally:
        probe.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_play_ends_every_note_and_closes_the_recording(jack, tmp_path, sig):
    """SIGTERM is in test_play.py."""
    probe = ProcessMidiProbe(f"play{sig.value}")
    record = tmp_path / "set.mid"
    try:
        result = _run_until_signal(["play", "--out", f"midi:{probe.client}", "--bpm", "240", "--seed", "2",
                                    "--record", str(record)], probe, sig)
        assert result.returncode in (0, 128 + sig.value), result.stderr
        _assert_closed_and_valid(record, probe)
    finally:
        probe.close()


@pytest.mark.parametrize("port", ["named", "virtual"])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "quit"])
def test_the_jack_server_dying_and_returning_mid_show_costs_only_the_gap(tmp_path, how, port):
    """jackd goes away under a playing ``livernn perform`` and a server of the same name comes
    back: the show goes on, the MIDI output reopens (the synth's port, or livernn's own virtual
    port, which the patchbay connects again) and the notes resume.

    The restart keeps JACK's shared-memory registry, as a real one does: ``start_jack``
    leaves it alone while any process maps it (``peers._registry_mapped``), since a process
    that still maps a removed one (libjack attaches it once per process) can never join the
    new server ("Cannot open shm segment" in every jack_client_open)."""
    with jack_env():
        name = f"lvjr{os.getpid() % 100000}{how.value}{port[0]}"  # a fresh server name per case
        jack = start_jack(tmp_path, name=name, period=256)  # this process's default server from here on
        probe = ProcessMidiProbe("jrprobe")
        patch, record = tmp_path / "show.toml", tmp_path / "set.mid"
        text = PATCH.format(port=probe.client)
        if port == "virtual":
            text = text.replace('port = "jrprobe"\ncreate = false', 'port = "jrout"\ncreate = true')
        patch.write_text(text)
        proc = subprocess.Popen([sys.executable, "-m", "livernn.cli", "perform", str(patch), "--no-reload",
                                 "--record", str(record)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ))

        def patchbay() -> None:
            if port == "virtual":
                jack.connect(jack.wait_port(":jrout", timeout=30), probe.port)

        try:
            patchbay()
            wait_for(lambda: _note_ons(probe) >= 8 or proc.poll() is not None, 60, "notes before the crash")
            jack.proc.send_signal(how)  # the server crashes, or someone quits it
            jack.proc.wait(10)
            probe.close()
            time.sleep(2.0)
            assert proc.poll() is None, proc.communicate()  # the show survived it
            jack = start_jack(tmp_path, name=name, period=256)
            probe = ProcessMidiProbe("jrprobe")  # the synth comes back with it
            patchbay()
            try:
                wait_for(lambda: _note_ons(probe) >= 8 or proc.poll() is not None, 30, "notes after the restart")
            except pytest.fail.Exception:
                proc.send_signal(signal.SIGINT)
                pytest.fail(f"no notes after the restart; livernn said: {proc.communicate(timeout=30)[1][-1500:]}")
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            _assert_closed_and_valid(record, probe)
        finally:
            stop_process(proc)
            probe.close()
            stop_process(jack.proc)


_CONTROLLER = r"""
import sys, time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=sys.argv[1])
out.open_virtual_port("out")
print("ready", flush=True)
while True:
    out.send_message([0xB0, 74, int(sys.argv[2])])
    time.sleep(0.05)
"""


def _controller(name: str, value: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _CONTROLLER, name, str(value)], stdout=subprocess.PIPE,
                            text=True, start_new_session=True, env=dict(os.environ))
    assert proc.stdout.readline().strip() == "ready"
    return proc


_LISTENER = r"""
import sys, time
from livernn.controls.bus import ControlBus
from livernn.controls.midi_in import MidiIn
bus = ControlBus()
midi_in = MidiIn(bus, sys.argv[1])
print("ready", flush=True)
last = None
while True:
    value = (bus.get("midi.cc.1.74"), midi_in.reopened)
    if value != last:
        print(f"cc {value[0]} reopened {value[1]}", flush=True)
        last = value
    time.sleep(0.02)
"""


def test_midi_input_follows_a_jack_restart(tmp_path):
    """A controller's port keeps reaching the bus after jackd goes away and comes back, as the
    MIDI outputs do: the input leaves its dead client alone and opens its port again.

    The input runs in a process of its own, as in a show: libjack keeps one state per
    process, and this test process also holds clients of the suite's JACK server, so a
    second server quitting under an in-process client crashed the suite (SIGSEGV)."""
    with jack_env():
        name = f"lvin{os.getpid() % 100000}"
        jack = start_jack(tmp_path, name=name, period=256)
        listener = subprocess.Popen([sys.executable, "-c", _LISTENER, "lvknobs"], stdout=subprocess.PIPE,
                                    text=True, env=dict(os.environ))
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(listener.stdout), daemon=True)
        controller = None
        try:
            reader.start()
            wait_for(lambda: "ready\n" in lines, 20, "the MIDI input process")
            controller = _controller("knobs", 127)
            jack.connect("knobs:out", jack.wait_port(":lvknobs"))
            wait_for(lambda: "cc 1.0 reopened 0\n" in lines, 10, "the controller before the restart")
            stop_process(controller)
            jack.proc.send_signal(signal.SIGTERM)  # (a SIGKILL leaves a slot of JACK's 8-server registry taken)
            jack.proc.wait(10)
            time.sleep(1.0)
            jack = start_jack(tmp_path, name=name, period=256)
            controller = _controller("knobs", 0)
            jack.connect("knobs:out", jack.wait_port(":lvknobs", timeout=10))
            wait_for(lambda: "cc 0.0 reopened 1\n" in lines, 10, "the controller after the restart")
            assert listener.poll() is None, lines
        finally:
            if controller is not None:
                stop_process(controller)
            stop_process(listener)
            stop_process(jack.proc)


def test_ten_play_runs_in_a_row_all_reach_jack(jack, tmp_path):
    """Issue 12: ``livernn play --out midi:X`` was silent in 2 of 8 runs. Ten in a row
    against one JACK server: every one is heard at the probe."""
    probe = ProcessMidiProbe("playten")
    heard = []
    try:
        for run in range(10):
            before = _note_ons(probe)
            proc = subprocess.Popen([sys.executable, "-m", "livernn.cli", "play", "--out", f"midi:{probe.client}",
                                     "--bpm", "240", "--seed", str(run)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=dict(os.environ))
            try:
                wait_for(lambda: _note_ons(probe) >= before + 4 or proc.poll() is not None, 60,
                         f"notes from play run {run + 1}")
                assert proc.poll() is None, proc.communicate()
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=30)
                assert "not delivering" not in err, err
            finally:
                stop_process(proc)
            heard.append(_note_ons(probe) - before)
    finally:
        probe.close()
    assert len(heard) == 10 and min(heard) >= 4, heard


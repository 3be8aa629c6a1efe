"""``livernn play`` end to end, as a subprocess: notes out, SIGTERM, nothing left open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import mido
import pytest

from peers import ProcessMidiProbe, wait_for

pytestmark = pytest.mark.integration


def livernn(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "livernn.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ), **kw)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                       (signal.SIGHUP, 128 + signal.SIGHUP),
                                       (signal.SIGINT, 130)],  # Ctrl-C
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])  # as RELIABILITY.md cites them
def test_a_stop_signal_ends_every_note_and_writes_the_recording(jack, tmp_path, sig, code):
    probe = ProcessMidiProbe(f"play{sig.name.lower()}")
    record = tmp_path / "set.mid"
    try:
        proc = livernn("play", "--out", f"midi:{probe.client}", "--duration", "60", "--bpm", "240",
                       "--record", str(record), "--seed", "3")
        wait_for(lambda: sum(1 for m in probe.messages() if m[0] & 0xF0 == 0x90) >= 6, 30,
                 "notes from livernn play")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == code, err
        wait_for(lambda: probe.note_balance() == {}, 3, "a note-off for every note-on")
        assert "JACK" in out  # it says which MIDI API it chose
    finally:
        probe.close()
    notes = [m for m in mido.MidiFile(record).tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert len(notes) >= 6


def test_without_outputs_it_still_records(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "livernn.cli", "play", "--duration", "1", "--bpm", "300",
                           "--seed", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    midi = mido.MidiFile(tmp_path / "livernn-play.mid")
    ons = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    offs = [m for m in midi.tracks[0] if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]
    assert ons and len(ons) == len(offs)


@pytest.mark.parametrize("args, message", [
    (["--out", "carrier-pigeon:x"], "unknown output"),
    (["--temperature", "nan"], "temperature must be a finite number"),
    (["--bpm", "0"], "tempo must be"),
    (["--duration", "-1"], "--duration"),
    (["/no/such/model"], "/no/such/model"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "livernn.cli", "play", "--duration", "0.2", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("livernn: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr

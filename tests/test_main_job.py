"""The README's main job: the demo patch played headless, recorded, rendered, and heard
on a JACK MIDI port when one is given with --out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livernn.notes import chord_rate, notes_from_midi
from peers import ProcessMidiProbe

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def livernn(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "livernn.cli", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_demo_records_renders_and_plays_on_a_jack_port(jack, tmp_path):
    probe = ProcessMidiProbe("demoprobe")
    try:
        recording = tmp_path / "demo.mid"
        proc = livernn("perform", "patches/demo.toml", "--duration", "9", "--no-reload",
                       "--record", str(recording), "--render", "--out", "midi:livernn-demo",
                       env=dict(os.environ))
        port = jack.wait_port("livernn-demo", timeout=30)
        jack.connect(port, probe.port)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        time.sleep(0.2)
    finally:
        probe.close()

    # What was played is in the recording, at scheduled times, with chords.
    notes = notes_from_midi(recording)
    assert len(notes) >= 20
    assert chord_rate(notes) > 0.05
    assert ((notes["pitch"] >= 38) & (notes["pitch"] <= 86)).all()  # the demo's two ranges

    # The same notes reached the JACK port, and none was left hanging.
    ons = [m for m in probe.messages() if m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert len(ons) >= 0.8 * len(notes)
    assert probe.note_balance() == {}

    # Rendered: a piano roll and a WAV that sox measures as sound, not silence.
    png, wav = recording.with_suffix(".png"), recording.with_suffix(".wav")
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    stat = subprocess.run(["sox", str(wav), "-n", "stat"], capture_output=True, text=True).stderr
    rms = float(next(line for line in stat.splitlines() if line.startswith("RMS     amplitude")).split(":")[1])
    assert rms > 0.005, stat
    assert "tempo 100" in err  # the status line


def test_render_without_record_is_one_line_error():
    proc = livernn("perform", "patches/demo.toml", "--render")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0 and "--render needs --record" in err

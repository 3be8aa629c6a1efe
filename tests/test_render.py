"""Rendering a recording: FluidSynth's WAV must be sound (measured by sox), the PNG a picture."""

from __future__ import annotations

import pytest

from livernn.errors import LivernnError
from livernn.notes import make_notes, notes_to_midi
from livernn.render import render, render_wav
from peers import require

pytestmark = pytest.mark.integration


def wav_rms(path) -> float:
    import subprocess

    out = subprocess.run([require("sox"), str(path), "-n", "stat"], capture_output=True, text=True, timeout=60)
    line = next(x for x in out.stderr.splitlines() if x.startswith("RMS     amplitude"))
    return float(line.split(":")[1])


@pytest.fixture
def recording(tmp_path):
    notes = make_notes([60, 64, 67, 72, 67, 64], [0.0, 0.25, 0.25, 0.25, 0.25, 0.25], [0.4] * 6, [100] * 6)
    path = tmp_path / "set.mid"
    notes_to_midi(notes, path)
    return path


def test_a_recording_renders_to_sound_and_a_piano_roll(recording):
    require("fluidsynth")
    wav, png = render(recording)
    assert wav == recording.with_suffix(".wav") and png == recording.with_suffix(".png")
    assert wav_rms(wav) > 0.005
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_silence_renders_as_silence(tmp_path, recording):
    """The measurement can fail: a quiet note is far quieter than the chord above."""
    quiet = tmp_path / "quiet.mid"
    notes_to_midi(make_notes([60], [0.0], [0.3], [1]), quiet)
    assert wav_rms(render_wav(quiet)) < wav_rms(render_wav(recording)) / 10


def test_bad_inputs_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(LivernnError, match="no MIDI file"):
        render_wav(tmp_path / "missing.mid")
    monkeypatch.setenv("LIVERNN_SOUNDFONT", str(tmp_path / "nope.sf2"))
    (tmp_path / "x.mid").write_bytes(b"MThd")
    with pytest.raises(LivernnError, match="LIVERNN_SOUNDFONT"):
        render_wav(tmp_path / "x.mid")

"""Notes <-> MIDI files: round trips (pretty_midi, mido, music21's corpus) and bad input."""

from __future__ import annotations

import re

import mido
import numpy as np
import pretty_midi
import pytest

from livernn.notes import MidiFileError, chord_rate, make_notes, notes_from_midi, notes_to_midi


def test_pretty_midi_file_round_trips_with_chords_and_two_instruments(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    piano, strings = pretty_midi.Instrument(0), pretty_midi.Instrument(48)
    for p in (64, 60, 67):  # a chord written top-down: must come back bottom-up
        piano.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=0.5, end=1.0))
    strings.notes.append(pretty_midi.Note(velocity=50, pitch=48, start=1.25, end=2.0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0.0, end=0.1))
    pm.instruments += [piano, strings, drums]
    pm.write(str(tmp_path / "in.mid"))

    notes = notes_from_midi(tmp_path / "in.mid")
    assert list(notes["pitch"]) == [60, 64, 67, 48]  # drums left out, chord bottom-up
    assert np.allclose(notes["step"], [0.0, 0.0, 0.0, 0.75], atol=1e-3)
    assert np.allclose(notes["start"], [0.5, 0.5, 0.5, 1.25], atol=1e-3)
    assert list(notes["velocity"]) == [90, 90, 90, 50]
    assert chord_rate(notes) == pytest.approx(2 / 3)

    notes_to_midi(notes, tmp_path / "out.mid")
    again = notes_from_midi(tmp_path / "out.mid")
    for field in ("pitch", "velocity"):
        assert np.array_equal(again[field], notes[field])
    for field in ("step", "duration", "start"):
        assert np.allclose(again[field], notes[field], atol=2e-3)


def test_mido_written_file_with_tempo_change_reads_in_seconds(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=0))
    track.append(mido.Message("note_on", note=62, velocity=70, time=0))
    track.append(mido.Message("note_off", note=62, velocity=0, time=480))  # 1 s at 60 bpm
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    track.append(mido.Message("note_on", note=65, velocity=80, time=0))
    track.append(mido.Message("note_off", note=65, velocity=0, time=480))  # 0.5 s at 120 bpm
    mid.save(tmp_path / "m.mid")
    notes = notes_from_midi(tmp_path / "m.mid")
    assert list(notes["pitch"]) == [62, 65]
    assert np.allclose(notes["duration"], [1.0, 0.5], atol=1e-3)
    assert np.allclose(notes["step"], [0.0, 1.0], atol=1e-3)


def test_a_music21_bach_chorale_reads_as_four_part_chords(tmp_path):
    from livernn.data.corpus import export_corpus

    count, errors = export_corpus("bach", tmp_path, limit=1, workers=1)
    assert count == 1 and not errors
    notes = notes_from_midi(next(tmp_path.glob("*.mid")))
    assert len(notes) > 100
    assert 0.4 < chord_rate(notes) < 0.8  # four voices: most onsets are chords
    assert notes["pitch"].min() >= 30 and notes["pitch"].max() <= 90
    assert (notes["step"] >= 0).all() and (notes["duration"] > 0).all()


def test_make_notes_derives_start_from_steps():
    notes = make_notes([60, 64, 67], [0.0, 0.5, 0.0], [1, 1, 1], start=2.0)
    assert list(notes["start"]) == [2.0, 2.5, 2.5]


@pytest.mark.parametrize("content", [None, b"", b"not midi at all", b"MThd\x00\x00\x00\x06\x00\x01"])
def test_missing_or_non_midi_file_is_a_one_line_error_naming_it(tmp_path, content):
    path = tmp_path / "song.mid"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MidiFileError) as info:
        notes_from_midi(path)
    message = str(info.value)
    assert "song.mid" in message and "\n" not in message


def test_file_without_notes_is_an_error(tmp_path):
    pretty_midi.PrettyMIDI().write(str(tmp_path / "empty.mid"))
    with pytest.raises(MidiFileError, match=re.escape("empty.mid: no notes")):
        notes_from_midi(tmp_path / "empty.mid")

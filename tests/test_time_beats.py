"""Time in beats (issue 14): a file's own tempo map puts its notes on the 120 bpm grid.

``notes_from_midi(time="beats")`` reads each note's tick over the file's resolution as
beats at ``ref_bpm`` (0.5 s a beat at 120); a file at one tempo of 120 bpm, or with no
tempo event, reads the same as in seconds; the note cache keys on the unit; a recipe's
``[data] time`` takes only "beats" or "seconds".
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from livernn.data import load_notes, split_files
from livernn.errors import LivernnError
from livernn.notes import notes_from_midi, notes_to_midi
from livernn.train.bins import training_recipe
from livernn.train.config import load_recipe, model_time_unit

TPB = 480


def write_tempo_file(path, tempi: list[tuple[int, float]], notes: list[tuple[int, int, int]]) -> None:
    """A type-0 file: ``tempi`` (tick, bpm), ``notes`` (tick, length in ticks, pitch)."""
    events = [(tick, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)) for tick, bpm in tempi]
    for tick, length, pitch in notes:
        events.append((tick, 2, mido.Message("note_on", note=pitch, velocity=80, time=0)))
        events.append((tick + length, 1, mido.Message("note_off", note=pitch, velocity=0, time=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = mido.MidiTrack(), 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    mid = mido.MidiFile(ticks_per_beat=TPB)
    mid.tracks.append(track)
    mid.save(str(path))


# Four quarter notes at 90 bpm, then the tempo drops to 60 bpm and four eighths follow,
# the last two a chord-free dotted rhythm: beats 0, 1, 2, 3, 4, 4.5, 5, 5.75.
QUARTERS = [(i * TPB, TPB, 60 + i) for i in range(4)]
EIGHTHS = [(4 * TPB, TPB // 2, 70), (4 * TPB + TPB // 2, TPB // 2, 71), (5 * TPB, 3 * TPB // 4, 72),
           (5 * TPB + 3 * TPB // 4, TPB // 4, 73)]
BEATS = np.array([0, 1, 2, 3, 4, 4.5, 5, 5.75])
LENGTH_BEATS = np.array([1, 1, 1, 1, 0.5, 0.5, 0.75, 0.25])


@pytest.fixture
def tempo_map_file(tmp_path):
    path = tmp_path / "ninety_then_sixty.mid"
    write_tempo_file(path, [(0, 90.0), (4 * TPB, 60.0)], QUARTERS + EIGHTHS)
    return path


def test_a_90_bpm_file_with_a_tempo_change_reads_back_in_beats_on_the_120_bpm_grid(tempo_map_file):
    seconds = notes_from_midi(tempo_map_file)
    # as the file plays: 2/3 s a quarter at 90 bpm, then 1 s a beat at 60
    want_s = np.where(BEATS < 4, BEATS * 60 / 90, 4 * 60 / 90 + (BEATS - 4))
    assert np.allclose(seconds["start"], want_s, atol=1e-6)

    beats = notes_from_midi(tempo_map_file, time="beats")
    assert list(beats["pitch"]) == [60, 61, 62, 63, 70, 71, 72, 73]
    assert np.allclose(beats["start"], BEATS * 0.5, atol=1e-9)  # one beat = 0.5 s at 120 bpm
    assert np.allclose(beats["step"], np.diff(BEATS * 0.5, prepend=0.0), atol=1e-6)
    assert np.allclose(beats["duration"], LENGTH_BEATS * 0.5, atol=1e-6)
    sixteenths = beats["start"] / 0.125  # every onset on the 1/16 grid at 120 bpm
    assert np.allclose(sixteenths, np.round(sixteenths), atol=1e-6)
    # another reference tempo: one beat = 60 / ref_bpm seconds
    assert np.allclose(notes_from_midi(tempo_map_file, time="beats", ref_bpm=60.0)["start"], BEATS, atol=1e-9)


def test_a_120_bpm_file_and_a_file_without_tempo_read_the_same_in_beats(tmp_path):
    from livernn.notes import make_notes

    performed = make_notes([60, 64, 67, 62], [0.0, 0.0, 0.0, 0.613], [0.41, 0.39, 0.4, 0.277], [70, 66, 81, 90],
                           start=0.137)  # off any grid, as played
    notes_to_midi(performed, tmp_path / "at120.mid")  # pretty_midi writes one 120 bpm tempo
    write_tempo_file(tmp_path / "no_tempo.mid", [], QUARTERS)  # no set_tempo: 120 bpm by the standard
    for name in ("at120.mid", "no_tempo.mid"):
        seconds = notes_from_midi(tmp_path / name)
        beats = notes_from_midi(tmp_path / name, time="beats")
        assert beats.tobytes() == seconds.tobytes(), name  # the very same notes, not merely close


def test_the_cache_keys_on_the_time_unit(tempo_map_file, tmp_path):
    cache = tmp_path / "cache"
    (_, seconds), = load_notes([tempo_map_file], cache_dir=cache, workers=1)[0]
    [(_, beats)], report = load_notes([tempo_map_file], cache_dir=cache, workers=1, settings={"time": "beats"})
    assert report.parsed == 1 and report.cached == 0  # not the seconds entry
    assert len(list(cache.glob("*.npz"))) == 2
    assert not np.allclose(seconds["start"], beats["start"])
    again, report = load_notes([tempo_map_file], cache_dir=cache, workers=1, settings={"time": "seconds"})
    assert report.cached == 1 and again[0][1].tobytes() == seconds.tobytes()  # no settings = seconds
    again, report = load_notes([tempo_map_file], cache_dir=cache, workers=1, settings={"time": "beats"})
    assert report.cached == 1 and again[0][1].tobytes() == beats.tobytes()


def test_split_files_reads_in_the_unit_asked_and_splits_the_same(tempo_map_file, tmp_path):
    folder = tempo_map_file.parent
    write_tempo_file(folder / "other.mid", [(0, 76.0)], EIGHTHS)
    by_unit = {u: split_files(folder, cache_dir=tmp_path / "c", workers=1, time=u) for u in ("seconds", "beats")}
    assert by_unit["seconds"].files == by_unit["beats"].files
    assert np.allclose(by_unit["beats"].notes[tempo_map_file]["start"], BEATS * 0.5)


def test_recipes_take_beats_or_seconds_and_nothing_else(tmp_path):
    assert load_recipe(None).data.time == "beats"  # the default (training/README.md)
    assert load_recipe(None, {"data.time": "seconds"}).to_dict()["data"] == {"time": "seconds"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ntime = "bars"\n')
    with pytest.raises(LivernnError) as err:
        load_recipe(bad)
    assert "\n" not in str(err.value) and "'bars'" in str(err.value) and "beats" in str(err.value)
    bad.write_text('[data]\ntimes = "beats"\n')
    with pytest.raises(LivernnError, match="unknown key 'times'"):
        load_recipe(bad)
    with pytest.raises(LivernnError, match="beats"):
        notes_from_midi(tmp_path / "x.mid", time="ticks")
    with pytest.raises(LivernnError, match="beats"):
        load_notes([], cache_dir=tmp_path / "c", settings={"time": "Beats"})


def test_a_model_s_unit_comes_from_its_meta_and_is_seconds_when_it_predates_the_option():
    assert model_time_unit({}) == "seconds"
    assert model_time_unit({"recipe": {"train": {}}}) == "seconds"
    assert model_time_unit({"recipe": {"data": {"time": "beats"}}}) == "beats"
    with pytest.raises(LivernnError):
        model_time_unit({"recipe": {"data": {"time": "bars"}}})
    assert training_recipe({"recipe": {"data": {"time": "beats"}, "train": {}}}).data.time == "beats"
    assert training_recipe({"recipe": {"train": {}}}).data.time == "seconds"

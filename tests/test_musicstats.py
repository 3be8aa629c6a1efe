"""Statistics of generated music (livernn.train.musicstats) on notes with known answers, and eval --generate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from livernn.cli import main
from livernn.notes import chord_rate, make_notes
from livernn.train import musicstats as ms
from livernn.train.evaluate import generated_lengths
from test_data import tiny_corpus

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def line(pitches, step: float = 0.5, duration: float = 0.5) -> np.ndarray:
    """One note after another, ``step`` seconds apart (first onset at ``step``; 120 bpm: 0.5 s a beat)."""
    n = len(pitches)
    return make_notes(pitches, [step] * n, [duration] * n)


def test_c_major_scale_is_in_one_key_and_its_entropy_counts_seven_classes():
    notes = line(C_MAJOR)
    assert ms.scale_consistency(notes) == 1.0
    p = np.array([2, 1, 1, 1, 1, 1, 1]) / 8  # C twice (60 and 72), the other six once
    assert ms.pitch_class_entropy(notes) == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert ms.pitch_range(notes) == 12


def test_a_natural_minor_is_consistent_and_the_harmonic_minor_leaves_its_raised_seventh_out():
    assert ms.scale_consistency(line([57, 59, 60, 62, 64, 65, 67])) == 1.0
    harmonic = line([57, 59, 60, 62, 64, 65, 68])
    assert ms.scale_consistency(harmonic) == pytest.approx(6 / 7)  # C major/A minor: all but G#
    assert ms.pitch_in_scale_rate(harmonic, 9, "minor") == pytest.approx(6 / 7)
    assert ms.pitch_in_scale_rate(line(C_MAJOR), 2, "major") == pytest.approx(5 / 8)  # D major: no F, no C (twice)


def test_one_pitch_class_has_zero_entropy_and_twelve_equal_classes_log2_12():
    octaves = line([36, 48, 60, 72, 84])
    assert ms.pitch_class_entropy(octaves) == 0.0
    assert ms.pitch_range(octaves) == 48
    chromatic = line(list(range(60, 72)) * 2)
    assert ms.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    assert ms.scale_consistency(chromatic) == pytest.approx(7 / 12)


def test_no_notes_no_figures():
    empty = make_notes([], [], [])
    assert math.isnan(ms.pitch_class_entropy(empty)) and math.isnan(ms.scale_consistency(empty))
    assert ms.pitch_range(empty) == 0  # MusPy's zero
    share, onsets = ms.grid_share(empty)
    assert math.isnan(share) and onsets == 0
    assert math.isnan(ms.groove_consistency(empty))


def test_chord_rate_of_chords_only_and_chord_notes_start_no_onset():
    # four three-note chords, a beat apart: 8 of the 11 notes after the first have step 0
    chords = make_notes([60, 64, 67] * 4, [0.5, 0, 0] * 4, [0.5] * 12)
    assert chord_rate(chords) == pytest.approx(8 / 11)
    assert ms.piece_stats(chords)["chord_rate"] == pytest.approx(8 / 11)
    assert ms.onset_beats(chords).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert ms.grid_share(chords) == (1.0, 4)
    assert chord_rate(line(C_MAJOR)) == 0.0


def test_grid_share_on_and_off_the_sixteenth_grid():
    # sixteenths, eighths, dotted eighths and quarters at 120 bpm: every onset on the grid
    on = make_notes(C_MAJOR, [0.125, 0.25, 0.375, 0.5, 0.125, 0.125, 0.25, 1.0], [0.1] * 8)
    assert ms.grid_share(on) == (1.0, 8)
    # 0.3 s = 0.6 beat: onsets 0.6, 1.2, 1.8, 2.4, 3.0, ... beats; one in five on a sixteenth
    off = line([60] * 10, step=0.3)
    assert ms.grid_share(off) == (pytest.approx(0.2), 10)
    # within 0.01 beat (5 ms at 120 bpm) of a grid point is on it, 0.02 beat is not
    assert ms.grid_share(line([60] * 4, step=0.502))[0] == pytest.approx(0.5)  # 0.004, 0.008 beat off: on
    assert ms.grid_share(line([60], step=0.51))[0] == 0.0  # 0.02 beat off
    # at another tempo the same seconds are other beats: 0.3 s at 100 bpm is 0.5 beat
    assert ms.grid_share(off, bpm=100.0)[0] == 1.0


def test_step_grid_share_counts_each_step_once_where_one_odd_step_moves_every_later_onset():
    steps = [0.0, 0.25, 0.25, 0.3, 0.25, 0.25, 0, 0.5, 0.25]  # one 0.6-beat step; a chord note (0)
    odd = make_notes([60] * 9, steps, [0.2] * 9)
    assert ms.step_grid_share(odd) == (pytest.approx(6 / 7), 7)  # the first note's step and the chord's left out
    assert ms.grid_share(odd)[0] == pytest.approx(3 / 8)  # every onset after the odd step is off
    assert ms.step_grid_share(odd, bpm=100.0)[0] == pytest.approx(1 / 7)  # 0.3 s is 0.5 beat at 100 bpm
    assert ms.step_grid_share(line([60] * 4, step=0.502)) == (1.0, 3)  # 0.004 beat off: on
    share, steps_seen = ms.step_grid_share(make_notes([60], [0.0], [0.5]))
    assert math.isnan(share) and steps_seen == 0


def test_groove_consistency_is_one_minus_the_mean_hamming_distance_of_neighbouring_bars():
    # two bars of quarter notes, the last note-off inside bar 2: the bars agree
    repeat = make_notes([60] * 8, [0.0] + [0.5] * 7, [0.5] * 7 + [0.25])
    assert ms.groove_consistency(repeat) == 1.0
    # quarters in bar 1, eighths in bar 2: 4 of 16 positions differ
    mixed = make_notes([60] * 12, [0.0] + [0.5] * 4 + [0.25] * 7, [0.1] * 12)
    assert ms.groove_consistency(mixed) == pytest.approx(1 - 4 / 16)
    # MusPy counts bars as end // 16 + 1: a note-off on the bar line opens an empty third bar
    ends_on_bar_line = make_notes([60] * 8, [0.0] + [0.5] * 7, [0.5] * 8)
    assert ms.groove_consistency(ends_on_bar_line) == pytest.approx(1 - 4 / 32)
    # 3/4 bars: quarters repeat every bar
    waltz = make_notes([60] * 6, [0.0] + [0.5] * 5, [0.5] * 5 + [0.25])
    assert ms.groove_consistency(waltz, beats_per_bar=3) == 1.0
    assert math.isnan(ms.groove_consistency(line([60, 62])))  # under two bars


def test_corpus_stats_average_pieces_and_pool_the_shares():
    a = line(C_MAJOR)                                     # entropy of 7 classes, range 12, on grid
    b = make_notes([60, 64, 67, 60], [0.3, 0, 0, 0.3], [0.2] * 4)  # chord rate 2/3, onsets 0.6 and 1.2 beats
    stats = ms.corpus_stats([a, b])
    assert stats["pitch_range"] == pytest.approx((12 + 7) / 2)
    assert stats["scale_consistency"] == pytest.approx(1.0)
    assert stats["pitch_class_entropy"] == pytest.approx((ms.pitch_class_entropy(a) + ms.pitch_class_entropy(b)) / 2)
    assert stats["chord_rate"] == pytest.approx(2 / (7 + 3))      # notes after each piece's first
    assert stats["grid_share"] == pytest.approx(8 / 10)           # 8 of a's 8 onsets, none of b's 2
    assert stats["step_grid_share"] == pytest.approx(7 / 8)      # a's 7 steps, b's one 0.6-beat step
    assert stats["pieces"] == 2 and stats["notes"] == 12 and stats["onsets"] == 10 and stats["steps"] == 8
    assert stats["pieces_undefined"]["groove_consistency"] == 1  # b is under two bars
    assert stats["groove_consistency"] == pytest.approx(ms.groove_consistency(a))
    assert set(ms.STATS) <= set(stats)


def test_generated_pieces_take_the_held_out_lengths_in_turn():
    pieces = [line([60] * 3), line([60] * 5)]
    assert generated_lengths(pieces, 12) == [3, 5, 3, 1]
    assert generated_lengths(pieces, 2) == [2]
    assert sum(generated_lengths(pieces, 1000)) == 1000


def test_cli_eval_generate_on_a_shipped_model(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path / "corpus", n_files=6, n_notes=40)
    args = ["eval", "folk", "--data", str(corpus), "--split", "all", "--cache-dir", str(tmp_path / "c"),
            "--generate", "90", "--temperatures", "0.8,1.5"]
    assert main([*args, "--json"]) == 0
    gen = json.loads(capsys.readouterr().out)["generated"]
    assert gen["notes"] == 90 and gen["piece_notes"] == [40, 40, 10] and gen["pieces"] == 3
    assert list(gen["temperatures"]) == ["0.8", "1.5"]
    assert gen["bpm"] == 120.0 and gen["beats_per_bar"] == 4 and gen["grid_beats"] == 0.25
    held = gen["held_out"]
    assert held["notes"] == 240 and held["pieces"] == 6
    assert held["grid_share"] == 1.0  # the tiny corpus's steps are 0, 1/2 and 1 beat
    for stats in (held, *gen["temperatures"].values()):
        assert set(ms.STATS) <= set(stats)
        assert 0 <= stats["chord_rate"] <= 1 and 0 <= stats["grid_share"] <= 1
        assert 0 <= stats["pitch_class_entropy"] <= math.log2(12) + 1e-9
        assert 7 / 12 - 1e-9 <= stats["scale_consistency"] <= 1
    assert sum(s["notes"] for s in gen["temperatures"].values()) == 180
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "generated: 90 notes in 3 pieces" in table
    for label in ms.STATS.values():
        assert label in table
    assert main([*args[:-1], "hot"]) == 2
    assert "--temperatures takes" in capsys.readouterr().err

"""Versions of one piece (music21's chorale variants, a transposed copy) land in one split."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from livernn.data import split_files, split_of
from livernn.data.split import melody_intervals
from livernn.notes import notes_from_midi, notes_to_midi

# Three variant pairs the issue names or music21 ships, and three unrelated chorales.
PAIRS = [("bwv248.35-3", "bwv248.35-3c"), ("bwv18.5-lz", "bwv18.5-w"), ("bwv112.5", "bwv112.5-sc")]
OTHERS = ["bwv10.7", "bwv101.7", "bwv102.7"]


@pytest.fixture(scope="module")
def chorales(tmp_path_factory) -> Path:
    from music21 import corpus

    from livernn.data.corpus import _export_one

    out = tmp_path_factory.mktemp("chorales")
    want = {n for pair in PAIRS for n in pair} | set(OTHERS)
    sources = {Path(p).stem: Path(p) for p in corpus.getComposer("bach")
               if Path(p).suffix in (".mxl", ".xml") and Path(p).stem in want}
    assert set(sources) == want, want - set(sources)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for src in sources.values():
            count, errors = _export_one((str(src), str(out)))
            assert count == 1 and not errors
    return out


def test_chorale_variants_land_in_one_split(chorales, tmp_path):
    # The path hash alone splits two of the pairs (the leak the issue found).
    assert split_of("bwv248.35-3.mid") == "test" and split_of("bwv248.35-3c.mid") == "train"
    assert split_of("bwv18.5-lz.mid") == "val" and split_of("bwv18.5-w.mid") == "train"
    found = split_files(chorales, cache_dir=tmp_path / "c", workers=1)
    where = {p.stem: s for s, paths in found.files.items() for p in paths}
    assert len(where) == 9
    for a, b in PAIRS:
        assert where[a] == where[b], (a, where[a], b, where[b])
    # A group goes to its most train-ward member's split: the test split only loses files.
    assert where["bwv248.35-3"] == "train" and where["bwv18.5-lz"] == "train"
    assert sorted(found.groups) == sorted(sorted(f"{n}.mid" for n in pair) for pair in PAIRS)
    assert found.grouped == 6 and found.moved >= 2
    for name in OTHERS:  # unrelated chorales keep their own hash split
        assert where[name] == split_of(f"{name}.mid")


def test_key_is_transposition_invariant_and_a_transposed_copy_is_grouped(chorales, tmp_path):
    notes = notes_from_midi(chorales / "bwv10.7.mid")
    up = notes.copy()
    up["pitch"] += 2  # the bwv18.5-lz/-w case: the same tune two semitones apart
    folder = tmp_path / "d"
    notes_to_midi(notes, folder / "a" / "tune.mid")
    notes_to_midi(up, folder / "zz_tune_in_d.mid")
    notes_to_midi(notes_from_midi(chorales / "bwv101.7.mid"), folder / "other.mid")
    assert np.array_equal(melody_intervals(notes), melody_intervals(up))
    found = split_files(folder, cache_dir=tmp_path / "c", workers=1)
    assert found.groups == [["a/tune.mid", "zz_tune_in_d.mid"]]
    where = {p.name: s for s, paths in found.files.items() for p in paths}
    assert where["tune.mid"] == where["zz_tune_in_d.mid"]
    plain = split_files(folder, cache_dir=tmp_path / "c", workers=1, group=False)
    assert plain.groups == [] and plain.grouped == 0

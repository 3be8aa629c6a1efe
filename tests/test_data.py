"""Data pipeline: splits, cache, corrupt files, augmentation, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livernn.data import Augment, DataWarning, WindowSet, find_midi_files, load_notes, split_of
from livernn.errors import LivernnError
from livernn.notes import make_notes, notes_to_midi


def tiny_corpus(folder: Path, n_files: int = 12, n_notes: int = 80, seed: int = 0) -> Path:
    """MIDI files of random walks with chords (real files, written by pretty_midi)."""
    rng = np.random.default_rng(seed)
    for i in range(n_files):
        pitch = np.clip(60 + np.cumsum(rng.integers(-3, 4, n_notes)), 30, 100)
        step = rng.choice([0.0, 0.25, 0.5], n_notes, p=[0.4, 0.4, 0.2])
        notes = make_notes(pitch, step, rng.choice([0.25, 0.5], n_notes), rng.integers(40, 110, n_notes))
        sub = folder / ("a" if i % 2 else "b") / f"piece{i:02d}.mid"
        notes_to_midi(notes, sub)
    return folder


def test_split_is_deterministic_and_files_never_share_a_split(tmp_path):
    tiny_corpus(tmp_path, n_files=30, n_notes=10)
    first, second = find_midi_files(tmp_path), find_midi_files(tmp_path)
    assert first == second
    seen = [p for paths in first.values() for p in paths]
    assert len(seen) == len(set(seen)) == 30  # recursive, each file once
    assert split_of("x/y.mid") == split_of("x/y.mid")
    shares = [split_of(f"f{i}.mid") for i in range(2000)]
    assert 0.05 < shares.count("test") / 2000 < 0.15 and 0.05 < shares.count("val") / 2000 < 0.15


def test_max_files_takes_a_prefix_that_keeps_its_splits(tmp_path):
    tiny_corpus(tmp_path, n_files=20, n_notes=10)
    full, small = find_midi_files(tmp_path), find_midi_files(tmp_path, max_files=7)
    assert sum(len(v) for v in small.values()) == 7
    for split, paths in small.items():
        assert set(paths) <= set(full[split])


def test_maestro_csv_split_wins(tmp_path):
    tiny_corpus(tmp_path, n_files=4, n_notes=10)
    rows = ["canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration"]
    for i, split in enumerate(["test", "validation", "train", "test"]):
        sub = "a" if i % 2 else "b"
        rows.append(f"X,T,{split},2018,{sub}/piece{i:02d}.mid,x.wav,1.0")
    (tmp_path / "maestro-v3.0.0.csv").write_text("\n".join(rows) + "\n")
    files = find_midi_files(tmp_path)
    assert sorted(p.name for p in files["test"]) == ["piece00.mid", "piece03.mid"]
    assert [p.name for p in files["val"]] == ["piece01.mid"]


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LivernnError, match="no MIDI files"):
        find_midi_files(tmp_path)


def test_second_load_hits_the_cache_and_parses_nothing(tmp_path):
    tiny_corpus(tmp_path / "d", n_files=6, n_notes=20)
    files = sorted((tmp_path / "d").rglob("*.mid"))
    first, r1 = load_notes(files, cache_dir=tmp_path / "c", workers=2)
    second, r2 = load_notes(files, cache_dir=tmp_path / "c", workers=2)
    assert (r1.parsed, r1.cached) == (6, 0) and (r2.parsed, r2.cached) == (0, 6)
    for (_, a), (_, b) in zip(first, second):
        assert np.array_equal(a, b)
    notes_to_midi(make_notes([70, 72], [0.0, 0.5], [0.5, 0.5]), files[0])  # edited: key changes
    third, r3 = load_notes(files, cache_dir=tmp_path / "c", workers=1)
    assert (r3.parsed, r3.cached) == (1, 5) and list(third[0][1]["pitch"]) == [70, 72]


def test_corrupt_midi_is_skipped_with_a_warning_naming_it(tmp_path):
    tiny_corpus(tmp_path / "d", n_files=3, n_notes=20)
    bad = tmp_path / "d" / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    files = sorted((tmp_path / "d").rglob("*.mid"))
    with pytest.warns(DataWarning, match="broken.mid"):
        loaded, report = load_notes(files, cache_dir=tmp_path / "c", workers=2)
    assert len(loaded) == 3 and len(report.skipped) == 1


def test_augmentation_keeps_every_pitch_in_range_and_off_means_identity():
    ws = WindowSet([make_notes([0, 1, 127, 126, 5] * 20, [0.25] * 100, [0.5] * 100),
                    make_notes([60, 64, 67] * 20, [0.0, 0.0, 0.5] * 20, [0.5] * 60)], seq_len=16)
    batch = ws.batch(torch.arange(len(ws)))
    aug = Augment(transpose=12, stretch=0.2, velocity_jitter=10)
    g = torch.Generator().manual_seed(0)
    shifts = set()
    for _ in range(50):
        out = aug(batch, g)
        assert int(out["pitch"].min()) >= 0 and int(out["pitch"].max()) <= 127
        assert int(out["velocity"].min()) >= 1 and int(out["velocity"].max()) <= 127
        ratio = out["step"][batch["step"] > 0] / batch["step"][batch["step"] > 0]
        assert float(ratio.min()) >= 1 / 1.2 - 1e-5 and float(ratio.max()) <= 1.2 + 1e-5
        assert torch.equal(out["step"] == 0, batch["step"] == 0)  # chords stay chords
        shifts |= set((out["pitch"] - batch["pitch"])[:, 0].tolist())
    assert len(shifts) > 5  # chord windows really are transposed
    off = Augment(transpose=0, stretch=0.0, velocity_jitter=0)(batch)
    assert all(torch.equal(off[k], batch[k]) for k in batch)


def test_windows_cover_pieces_and_mask_short_ones():
    long, short = make_notes(np.arange(40, 90), [0.5] * 50, [0.5] * 50), make_notes([60, 62, 64], [0.5] * 3, [0.5] * 3)
    ws = WindowSet([long, short], seq_len=16, stride=8)
    batch = ws.batch(torch.arange(len(ws)))
    assert batch["pitch"].shape == (len(ws), 17)
    full = batch["mask"].all(dim=1)
    covered = set(batch["pitch"][full].flatten().tolist())
    assert covered == set(range(40, 90))  # the last window reaches the piece's end
    assert batch["mask"][~full].sum() == 3


def test_cli_data_prepare_reports_splits_and_fills_the_cache(tmp_path, capsys):
    from livernn.cli import main

    tiny_corpus(tmp_path / "d", n_files=10, n_notes=20)
    args = ["data", "prepare", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"), "--workers", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "train" in first and "parsed" in first
    assert "parsed 0" in second and "skipped 0" in second
    assert main(["data", "prepare", str(tmp_path / "nothing")]) == 2

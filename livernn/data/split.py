"""Which MIDI files a folder holds, and which split each belongs to.

Splits are per *file* (never per window: windows of one piece in both train and test
would leak), decided by a hash of the file's path relative to the folder, so the split
is the same on every machine, for every run, whatever files are added beside it. A
MAESTRO folder carries its official split in ``maestro-v*.csv``; that wins when present.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from livernn.errors import LivernnError

SPLITS = ("train", "val", "test")
MIDI_SUFFIXES = {".mid", ".midi", ".kar"}


def split_of(relpath: str, val_frac: float = 0.1, test_frac: float = 0.1) -> str:
    """Deterministic split for a relative path (forward slashes), from its SHA-1."""
    digest = hashlib.sha1(relpath.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_frac:
        return "test"
    if u < test_frac + val_frac:
        return "val"
    return "train"


def _maestro_splits(root: Path) -> dict[str, str] | None:
    """relpath -> split from a MAESTRO metadata CSV, if the folder has one."""
    csvs = sorted(root.glob("maestro-v*.csv"))
    if not csvs:
        return None
    names = {"train": "train", "validation": "val", "test": "test"}
    with open(csvs[-1], newline="", encoding="utf-8") as f:
        return {row["midi_filename"]: names.get(row["split"], "train") for row in csv.DictReader(f)}


def find_midi_files(
    root: str | Path, *, max_files: int | None = None, val_frac: float = 0.1, test_frac: float = 0.1
) -> dict[str, list[Path]]:
    """All MIDI files under ``root`` (recursive), grouped by split, each list sorted.

    ``max_files`` keeps the first N files in path order *before* splitting, so a small
    run's files are a subset of a bigger run's and keep their splits.
    """
    root = Path(root)
    if not root.is_dir():
        raise LivernnError(f"{root}: not a directory of MIDI files")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if max_files is not None:
        if max_files < 1:
            raise LivernnError(f"--max-files must be at least 1, got {max_files}")
        files = files[:max_files]
    if not files:
        raise LivernnError(f"{root}: no MIDI files (.mid, .midi) found")
    official = _maestro_splits(root)
    out: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for p in files:
        rel = p.relative_to(root).as_posix()
        split = official.get(rel) if official else None
        out[split or split_of(rel, val_frac, test_frac)].append(p)
    return out

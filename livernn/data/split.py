"""Which MIDI files a folder holds, and which split each belongs to.

Splits are per *file* (never per window: windows of one piece in both train and test
would leak), decided by a hash of the file's path relative to the folder, so the split
is the same on every machine, for every run, whatever files are added beside it. A
MAESTRO folder carries its official split in ``maestro-v*.csv``; that wins when present.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


# -- versions of one piece: grouped by a transposition-invariant content key -----------

SHINGLE = 8  # intervals per shingle
MIN_SHARED = 0.5  # share of the shorter melody's shingles two versions have in common
MAX_PIECES_PER_SHINGLE = 40  # a shingle this common (a scale run) says nothing about identity


def melody_intervals(notes) -> np.ndarray:
    """The top line's intervals: the highest sounding pitch at each onset, repeats merged.

    Transposition-invariant (intervals, not pitches) and tempo-invariant (no times), and
    robust to re-voicing: the skyline follows the top voice, whatever the inner voices do.
    Rhythm is left out on purpose: music21's chorale variants differ in meter and tempo
    (bwv248.35-3 in 4/4, -3c in 3/4) while their tune is the same.
    """
    if len(notes) == 0:
        return np.zeros(0, np.int16)
    import heapq

    onset = notes["start"].astype(np.float64)
    start = np.round(onset, 3)
    # The end rounded as the start is: a note ending where the next starts (the same MIDI
    # tick) must end there, whatever the tempo (unrounded, 0.78947 s ended after the next
    # onset rounded to 0.789, and the skyline kept the ended note: the groups then hung on
    # the time unit, seconds or beats).
    end = np.maximum(np.round(onset + notes["duration"].astype(np.float64), 3), start + 1e-3)
    order = np.argsort(start, kind="stable")
    start, end, pitch = start[order].tolist(), end[order].tolist(), notes["pitch"][order].tolist()
    tops: list[int] = []
    live: list[tuple[int, float]] = []  # heap of (-pitch, end) of sounding notes
    i, n = 0, len(start)
    while i < n:
        t = start[i]
        while i < n and start[i] == t:
            heapq.heappush(live, (-pitch[i], end[i]))
            i += 1
        while live and live[0][1] <= t + 1e-6:  # the highest has ended: drop it (lazily)
            heapq.heappop(live)
        tops.append(-live[0][0])  # a note just pushed at t always outlasts t
    top = np.array(tops, np.int16)
    keep = np.concatenate([[True], top[1:] != top[:-1]])
    return np.diff(top[keep])


def _shingles(intervals) -> set:
    n = len(intervals)
    if n < SHINGLE:
        return {tuple(int(x) for x in intervals)} if n else set()
    return {tuple(int(x) for x in intervals[i:i + SHINGLE]) for i in range(n - SHINGLE + 1)}


def group_versions(melodies: list) -> list[list[int]]:
    """Groups (indices, each group sorted, size >= 2) of pieces that are versions of one tune.

    Two pieces are versions when at least ``MIN_SHARED`` of the shorter one's interval
    8-grams occur in the other (a transposed, re-harmonised, ornamented or re-barred
    version keeps most of its tune). Candidates come from an inverted index, so this is
    near-linear in the number of pieces; groups are closed transitively (union-find).
    """
    sets = [_shingles(m) for m in melodies]
    index: dict[tuple, list[int]] = {}
    for i, s in enumerate(sets):
        for sh in s:
            index.setdefault(sh, []).append(i)
    parent = list(range(len(sets)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shared: dict[tuple[int, int], int] = {}
    for members in index.values():
        if 1 < len(members) <= MAX_PIECES_PER_SHINGLE:
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    key = (members[a], members[b])
                    shared[key] = shared.get(key, 0) + 1
    for (a, b), n in shared.items():
        if n >= MIN_SHARED * min(len(sets[a]), len(sets[b])):
            parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(sets)):
        groups.setdefault(find(i), []).append(i)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


@dataclass
class SplitFiles:
    """Files per split after grouping versions, their notes, and what was grouped."""

    files: dict[str, list[Path]]
    notes: dict[Path, np.ndarray]
    groups: list[list[str]] = field(default_factory=list)  # relpaths of each group of versions
    moved: int = 0  # files whose split changed because a version of them is elsewhere
    skipped: int = 0
    parsed: int = 0
    cached: int = 0

    @property
    def grouped(self) -> int:
        """Files that share a group with another file."""
        return sum(len(g) for g in self.groups)


_TRAINWARD = {"train": 0, "val": 1, "test": 2}


def split_files(root: str | Path, *, max_files: int | None = None, cache_dir=None, workers: int | None = None,
                progress: bool = False, group: bool = True, val_frac: float = 0.1,
                test_frac: float = 0.1, time: str = "seconds",
                ref_bpm: float = 120.0) -> SplitFiles:
    """``find_midi_files`` plus its notes, with versions of one piece kept in one split.

    Each file's own split is the hash of its path (or MAESTRO's CSV); a group of versions
    (``group_versions``) then goes, whole, to the most train-ward split among its members.
    So a test file is one whose every version hashed to test, the test split only ever
    loses files to grouping, and a model trained on the ungrouped split is still scored
    on files it never saw. Unreadable files are left out (with a warning, as in
    ``load_notes``). ``time``: the notes' time unit, ``"seconds"`` or ``"beats"`` at
    ``ref_bpm`` (``notes_from_midi``); the split and the grouping do not depend on it.
    """
    from livernn.data.cache import load_notes

    root = Path(root)
    by_split = find_midi_files(root, max_files=max_files, val_frac=val_frac, test_frac=test_frac)
    paths = [p for s in SPLITS for p in by_split[s]]
    own = {p: s for s in SPLITS for p in by_split[s]}
    loaded, report = load_notes(paths, cache_dir=cache_dir, workers=workers, progress=progress,
                                settings={"time": time, **({"ref_bpm": float(ref_bpm)} if time == "beats" else {})})
    notes = dict(loaded)
    present = [p for p in paths if p in notes]
    split = {p: own[p] for p in present}
    groups: list[list[str]] = []
    moved = 0
    if group and len(present) > 1:
        for g in group_versions([melody_intervals(notes[p]) for p in present]):
            members = [present[i] for i in g]
            target = min((split[p] for p in members), key=_TRAINWARD.__getitem__)
            moved += sum(split[p] != target for p in members)
            for p in members:
                split[p] = target
            groups.append(sorted(p.relative_to(root).as_posix() for p in members))
    files = {s: sorted(p for p in present if split[p] == s) for s in SPLITS}
    return SplitFiles(files, notes, groups, moved, len(report.skipped), report.parsed, report.cached)

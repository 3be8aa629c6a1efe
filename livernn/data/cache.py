"""MIDI files -> note arrays, parsed in parallel once and cached as ``.npz``.

The cache key is the file's content hash plus the parse settings (among them the time
unit, ``time``: seconds or beats, which is always in the key, so the two never mix), so a
renamed or copied file hits the cache, an edited file misses it, and a second run parses
nothing.
Files that can't be read are skipped with a warning that names them; one bad file in a
thousand must not stop a training run.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livernn.errors import LivernnError
from livernn.notes import NOTE_DTYPE, check_time_unit, notes_from_midi

CACHE_VERSION = 1


class DataWarning(UserWarning):
    """A data file was skipped (unreadable, no notes)."""


@dataclass
class LoadReport:
    parsed: int = 0
    cached: int = 0
    skipped: list[str] = field(default_factory=list)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "livernn" / "notes"


def _key(path: Path, settings: dict) -> str:
    h = hashlib.sha1(path.read_bytes())
    h.update(json.dumps({**settings, "v": CACHE_VERSION}, sort_keys=True).encode())
    return h.hexdigest()


def _parse(job: tuple[str, str, dict]) -> tuple[str, str | None]:
    """Worker: parse one file into the cache; return (path, error or None)."""
    src, target, settings = job
    try:
        notes = notes_from_midi(src, **settings)
    except LivernnError as exc:
        return src, str(exc)
    except Exception as exc:  # noqa: BLE001 - a broken file may raise anything in pretty_midi
        return src, f"{src}: unreadable ({type(exc).__name__})"
    tmp = Path(target).with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, notes=notes)
    os.replace(tmp, target)
    return src, None


def load_notes(
    files: list[Path],
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    settings: dict | None = None,
    progress: bool = False,
) -> tuple[list[tuple[Path, np.ndarray]], LoadReport]:
    """Note arrays for ``files`` (in order, unreadable ones left out) and what it took.

    ``settings`` are ``notes_from_midi``'s keywords; ``time`` defaults to ``"seconds"``,
    as there, and is written into every key."""
    settings = {"time": "seconds", **(settings or {})}
    check_time_unit(settings["time"])
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    report = LoadReport()
    readable, targets, jobs = [], {}, []
    for p in files:
        try:
            targets[p] = cache / f"{_key(p, settings)}.npz"
        except OSError as exc:
            report.skipped.append(f"{p}: {exc.strerror or exc}")
            continue
        readable.append(p)
        if targets[p].exists():
            report.cached += 1
        else:
            jobs.append((str(p), str(targets[p]), settings))
    errors = {}
    if jobs:
        n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        results: Iterable[tuple[str, str | None]]
        if n == 1:
            results = map(_parse, jobs)
        else:
            pool = ProcessPoolExecutor(max_workers=n)
            results = pool.map(_parse, jobs, chunksize=max(1, len(jobs) // (8 * n)))
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc="parse MIDI", unit="file")
        for src, err in results:
            if err:
                errors[src] = err
            else:
                report.parsed += 1
        if n > 1:
            pool.shutdown()
    out = []
    for p in readable:
        if str(p) in errors:
            report.skipped.append(errors[str(p)])
            continue
        with np.load(targets[p]) as z:
            notes = z["notes"]
        if notes.dtype != NOTE_DTYPE or len(notes) == 0:
            report.skipped.append(f"{p}: cached notes unusable")
            continue
        out.append((p, notes))
    for message in report.skipped:
        warnings.warn(f"skipping {message}", DataWarning, stacklevel=2)
    return out, report

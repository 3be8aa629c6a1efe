"""music21's bundled corpora written out as MIDI files: real training data with no network.

music21 ships ~410 Bach chorales (MusicXML) and several folk collections (ABC). Parsing
MusicXML is slow (about 0.3 s a chorale), so the export runs in a process pool and skips
files that already exist; the result is an ordinary MIDI folder that ``livernn train``
reads like any other.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from livernn.errors import LivernnError

# Corpus name -> (how music21 finds its files, suffixes we take). .rntxt files are
# harmonic analyses, not music, so they are left out.
CORPORA: dict[str, tuple[str, tuple[str, ...]]] = {
    "bach": ("composer", (".mxl", ".xml", ".krn")),
    "essenFolksong": ("work", (".abc",)),
    "ryansMammoth": ("work", (".abc",)),
    "oneills1850": ("work", (".abc",)),
}


def corpus_sources(name: str) -> list[Path]:
    """The corpus files music21 has for ``name`` (sorted, so exports are reproducible)."""
    if name not in CORPORA:
        raise LivernnError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    from music21 import corpus

    kind, suffixes = CORPORA[name]
    paths = corpus.getComposer(name) if kind == "composer" else corpus.getWork(name)
    if not isinstance(paths, list):
        paths = [paths]
    return sorted(Path(p) for p in paths if Path(p).suffix in suffixes)


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") or "piece"


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}"


def _export_one(job: tuple[str, str]) -> tuple[int, list[str]]:
    """Write one corpus file (an ABC file may hold many tunes) as MIDI; return (count, errors)."""
    src, out_dir = Path(job[0]), Path(job[1])
    from music21 import converter, stream

    warnings.simplefilter("ignore")
    try:
        parsed = converter.parse(str(src))
    except Exception as exc:  # music21 raises many types on odd scores; skip, report
        return 0, [f"{src.name}: {_reason(exc)}"]
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    count, errors = 0, []
    for i, score in enumerate(scores):
        suffix = f"_{i:03d}" if len(scores) > 1 else ""
        target = out_dir / f"{_safe(src.stem)}{suffix}.mid"
        try:
            if not target.exists():
                tmp = target.with_suffix(".tmp")
                score.write("midi", fp=str(tmp))
                tmp.replace(target)
            count += 1
        except Exception as exc:  # one odd tune must not lose the rest of its file
            errors.append(f"{src.name} tune {i}: {_reason(exc)}")
    return count, errors


def export_corpus(
    name: str, out_dir: str | Path, *, limit: int | None = None, workers: int = 2
) -> tuple[int, list[str]]:
    """Write corpus ``name`` into ``out_dir`` as .mid files; return (pieces written, errors)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = corpus_sources(name)[: limit if limit else None]
    jobs = [(str(s), str(out)) for s in sources]
    from tqdm import tqdm

    total, errors = 0, []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for count, errs in tqdm(pool.map(_export_one, jobs, chunksize=4), total=len(jobs),
                                desc=f"export {name}", unit="file"):
            total += count
            errors += errs
    return total, errors

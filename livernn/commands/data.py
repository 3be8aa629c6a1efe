"""``livernn data``: get training data (music21's corpora as MIDI) and pre-parse folders."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="export music21 corpora as MIDI; parse a MIDI folder")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    m = sub.add_parser("music21", help="write a music21 corpus (offline) as MIDI files")
    m.add_argument("--corpus", default="bach", help="bach, essenFolksong, ryansMammoth, oneills1850")
    m.add_argument("--out", required=True, help="folder to write .mid files into")
    m.add_argument("--limit", type=int, help="only the first N corpus files")
    m.add_argument("--workers", type=int, default=2)
    m.set_defaults(func=run_music21)
    s = sub.add_parser("prepare", help="parse a MIDI folder into the note cache; print its splits")
    s.add_argument("folder")
    s.add_argument("--max-files", type=int)
    s.add_argument("--cache-dir")
    s.add_argument("--workers", type=int)
    s.add_argument("--time", choices=["beats", "seconds"], default="beats",
                   help="time unit to parse into (a recipe's [data] time; default beats, as training's)")
    s.set_defaults(func=run_prepare)


def run_music21(args: argparse.Namespace) -> int:
    from livernn.data.corpus import export_corpus

    count, errors = export_corpus(args.corpus, args.out, limit=args.limit, workers=args.workers)
    for e in errors:
        print(f"skipped {e}")
    print(f"wrote {count} MIDI files from music21 corpus {args.corpus!r} to {args.out}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from livernn.data import split_files
    from livernn.notes import chord_rate

    found = split_files(args.folder, max_files=args.max_files, cache_dir=args.cache_dir, workers=args.workers,
                        progress=True, time=args.time)
    for split, paths in found.files.items():
        loaded = [found.notes[p] for p in paths]
        notes = sum(len(n) for n in loaded)
        rate = sum(chord_rate(n) * len(n) for n in loaded) / max(notes, 1)
        print(f"{split:5s} {len(loaded):6d} files {notes:9d} notes  chord rate {rate:.2f}")
    print(f"parsed {found.parsed}, cached {found.cached}, skipped {found.skipped}; {found.grouped} files are "
          f"versions of {len(found.groups)} pieces, each kept in one split ({found.moved} moved)")
    return 0

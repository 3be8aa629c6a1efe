"""``livernn generate``: write N generated notes to a MIDI file (and a piano-roll PNG)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="generate notes offline into a MIDI file")
    p.add_argument("model", nargs="?", help="model directory (default: the shipped models/bach)")
    p.add_argument("--notes", type=int, default=200, help="how many notes (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="pitch temperature")
    p.add_argument("--timing-temperature", type=float, default=1.0, help="step/duration temperature")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, help="random seed (reproducible output)")
    p.add_argument("--seed-midi", help="MIDI file whose notes prime the model")
    p.add_argument("-o", "--output", required=True, help="MIDI file to write")
    p.add_argument("--png", help="also draw a piano roll here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from livernn.errors import LivernnError
    from livernn.model import SamplerParams, load_model
    from livernn.model.generator import generate_notes
    from livernn.notes import chord_rate, notes_from_midi, notes_to_midi

    if not 1 <= args.notes <= 1_000_000:
        raise LivernnError(f"--notes must be in 1..1000000, got {args.notes}")
    params = SamplerParams(temperature=args.temperature, top_p=args.top_p,
                           timing_temperature=args.timing_temperature).validated()
    model = load_model(args.model)
    history = notes_from_midi(args.seed_midi) if args.seed_midi else None
    notes = generate_notes(model, args.notes, params, seed=args.seed, history=history)
    notes_to_midi(notes, args.output, bpm=model.ref_bpm, name=model.name)
    if args.png:
        from livernn.plot import piano_roll_png

        piano_roll_png(notes, args.png, title=f"{model.name}, T={args.temperature}")
    print(f"wrote {len(notes)} notes ({notes['start'][-1] + notes['duration'][-1]:.1f} s, "
          f"chord rate {chord_rate(notes):.2f}) to {args.output}")
    return 0

"""A show in real time for minutes: does anything drift, grow, lag or stick?

The performance of tests/test_soak.py (voices swapping models, a control storm on the bus,
scene changes) played at a real tempo with the shipped model, into a MIDI probe on a JACK
server of its own. Prints the duration, notes and MIDI events, memory (peak against the
warm-up figure measured in the same run), send lateness (worst and p99, against the
lookahead) and stuck notes at the probe, which must be 0 (exit status 1 otherwise).

    .venv/bin/python bench/bench_soak.py [--minutes 5] [--bpm 120] [--voices 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from livernn.model import default_model_path  # noqa: E402
from peers import ProcessMidiProbe, start_jack, stop_process  # noqa: E402
from test_soak import LOOKAHEAD, perform  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-clock length (default 5)")
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--density", type=float, default=1.0)
    parser.add_argument("--voices", type=int, default=3)
    parser.add_argument("--storm-hz", type=float, default=200.0, help="bus writes per second")
    parser.add_argument("--period", type=int, default=256, help="JACK period in frames (default 256)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "bach-copy"  # swaps alternate between two model files on disk
        other.mkdir()
        for name in ("config.json", "model.safetensors"):
            shutil.copy(default_model_path() / name, other / name)
        jack = start_jack(Path(tmp), period=args.period)
        probe = ProcessMidiProbe("soakbench")
        started = time.monotonic()
        try:
            figures = perform(probe, [default_model_path(), other], wall_s=60 * args.minutes,
                              warmup_s=min(20.0, 10 * args.minutes), bpm=args.bpm,
                              density=args.density, n_voices=args.voices, swap_every=20.0,
                              scene_every=5.0, storm_hz=args.storm_hz)
        finally:
            probe.close()
            stop_process(jack.proc)
    print(f"livernn soak: {args.minutes:g} min at {args.bpm:g} BPM, {args.voices} voices, "
          f"JACK period {args.period} ({time.monotonic() - started:.0f} s with set-up)")
    print("\n".join(figures.lines()))
    print(f"    memory peak / warm-up: {figures.rss_peak_mb / figures.rss_warm_mb:.3f}")
    print(f"   worst late / lookahead: {figures.worst_late_ms / (1000 * LOOKAHEAD):.3f}")
    if figures.late_at:
        print(f"late notes counted at {figures.late_at} s; swaps at {figures.swap_at} s")
    print(f"note-ons handed out / heard at the probe: {figures.sent_note_ons} / {figures.note_ons}"
          + (f"; differ at (channel, pitch): {figures.unmatched}" if figures.unmatched else ""))
    for error in figures.errors[:10]:
        print(f"error: {error}")
    return 0 if figures.stuck_notes == 0 and figures.late_notes == 0 and not figures.unmatched else 1


if __name__ == "__main__":
    sys.exit(main())

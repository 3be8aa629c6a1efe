"""Playing with a human: the figures of issue 16, beside Notochord's published "under 10 ms".

    .venv/bin/python bench/bench_duet.py [--notes 200] [--calls 200] [--skip-jack]

1. Through real JACK (its own ``jackd -d dummy -r 48000 -p 32``), a scripted player process
   and a probe process on the monotonic clock (the harness of tests/test_duet_jack.py):
   - follow: player note-on -> companion note-on at the probe (two JACK hops included),
     p50/p99/max, and the share of companions inside the constraints;
   - answer: notes from the voice while the player plays (after the first 0.6 s of a call),
     and the delay from the call's last note-on to the answer's first note at 120 BPM;
   - accompany: the share of the voice's notes inside the held chord's pitch classes;
   - passing tones (accompany, passing = "scale", quantized to 16ths, C F G Am held 8 s
     each under a melody): how many notes pass, and how many break the rules of
     tests/test_duet_jack.py's ``passing_check`` (it must be none).
2. Musical sense, offline with the shipped models: calls in a random key (a walk on its
   major scale), answered by a generator that heard the call (as an answer voice hears it,
   note-on by note-on with the provisional length) and by one that did not. Reported: the
   Krumhansl-Kessler key-profile correlation of each answer's pitch-class histogram with
   the call's key, and how often the answer's best-matching key is the call's.

Prints the load average it ran under: timing figures from a loaded 2-core machine are
upper bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def bench_jack(n_notes: int) -> None:
    from peers import start_jack, stop_process
    from test_duet_jack import Duet, note_ons, passing_check, phrase

    tmp = Path(f"/tmp/bench_duet_{os.getpid()}")
    tmp.mkdir(exist_ok=True)
    jack = start_jack(tmp)
    try:
        # follow
        d = Duet(jack, "bf")
        _, policy = d.voice("harm", "follow", pitch_min=48, pitch_max=84, scale="major", root=0)
        d.session.start()
        rng = np.random.default_rng(1)
        melody = [int(60 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12])) for _ in range(n_notes)]
        d.player.play(phrase(0.2, melody, spacing=0.15, length=0.1))
        d.player.done.wait(n_notes * 0.15 + 30)
        time.sleep(0.5)
        played, heard = note_ons(d.player.sent), note_ons(d.probe.received, 2)
        lat = [h[0] - p[0] for p, h in zip(played, heard)]
        inside = sum(1 for (_, p), (_, c) in zip(played, heard)
                     if c != p and c - p in policy.options.intervals and c % 12 in MAJOR and 48 <= c <= 84)
        print(f"follow: {len(heard)}/{len(played)} player notes got a companion; inside the constraints "
              f"{100 * inside / max(len(heard), 1):.1f}%; player note-on -> companion note-on at the probe, ms: "
              f"p50 {1000 * pct(lat, .5):.2f} p99 {1000 * pct(lat, .99):.2f} max {1000 * max(lat):.2f} "
              f"(target p99 <= 5; Notochord: under 10)")
        d.close()
        # answer
        d = Duet(jack, "ba")
        _, policy = d.voice("resp", "answer")
        d.session.start()
        calls, score, at = [], [], 0.5
        for _ in range(6):
            notes = [int(60 + rng.choice([0, 2, 4, 5, 7, 9])) for _ in range(int(rng.integers(4, 10)))]
            score += phrase(at, notes)
            calls.append((at, at + 0.25 * (len(notes) - 1), len(notes)))
            at += 0.25 * len(notes) + 3.5
        d.player.play(score)
        d.player.done.wait(at + 30)
        time.sleep(1.0)
        played, voice = note_ons(d.player.sent), note_ons(d.probe.received, 2)
        during, delays, k = 0, [], 0
        for _, _, n in calls:
            start, last = played[k][0], played[k + n - 1][0]
            k += n
            during += sum(1 for t, _ in voice if start + 0.6 <= t <= last + 0.2)
            after = [t for t, _ in voice if t > last + 0.2 and (k >= len(played) or t < played[k][0])]
            delays.append(after[0] - last if after else float("inf"))
        print(f"answer: {during} voice notes during {len(calls)} calls; call's last note-on -> answer's first "
              f"note, s: max {max(delays):.3f} mean {sum(delays) / len(delays):.3f} (target <= 1.5 at 120 BPM)")
        d.close()
        # accompany
        d = Duet(jack, "bc")
        v, _ = d.voice("comp", "accompany", options={"split": 60}, pitch_min=48, pitch_max=84, density=2.0)
        d.session.start()
        chords = [(48, 52, 55), (53, 57, 41), (43, 47, 50), (45, 48, 52)] * 3
        score = []
        for i, notes in enumerate(chords):
            for p in notes:
                score += [(0.2 + 2 * i, 0x90, p, 80), (0.2 + 2 * i + 1.9, 0x80, p, 0)]
        d.player.play(sorted(score))
        d.player.done.wait(len(chords) * 2 + 30)
        played, voice = note_ons(d.player.sent), note_ons(d.probe.received, 2)
        starts = sorted({round(t, 2) for t, p in played})
        changes = [(min(t for t, p in played if p == notes[0] and t >= s - 0.01), {p % 12 for p in notes})
                   for s, notes in zip(starts, chords)]
        horizon = d.session.lookahead + max(o.latency for o in v.outputs) + 0.02
        ok = settled = total = 0
        for t, p in voice:
            current = [c for c in changes if c[0] <= t]
            if not current:
                continue
            total += 1
            if t >= current[-1][0] + horizon:
                settled += 1
                ok += p % 12 in current[-1][1]
        print(f"accompany: {ok}/{settled} notes after a chord change's horizon ({horizon:.3f} s) inside the held "
              f"chord ({100 * ok / max(settled, 1):.1f}%); {total} notes in all")
        d.close()
        # passing tones
        d = Duet(jack, "bp")
        v, policy = d.voice("comp", "accompany", options={"split": 60, "passing": "scale"}, pitch_min=48,
                            pitch_max=84, density=2.0, quantize=0.25, scale="major", root=0)
        events: list[tuple[float, int]] = []
        d.session.on("note", lambda _name, pitch, _vel, t_on, _t_off: events.append((t_on, pitch)))
        d.session.start()
        chords = [(48, 52, 55), (41, 45, 48), (43, 47, 50), (45, 48, 52)] * 2
        score = []
        for i, notes in enumerate(chords):
            for p in notes:
                score += [(0.2 + 8 * i, 0x90, p, 80), (0.2 + 8 * i + 7.9, 0x80, p, 0)]
            score += phrase(0.3 + 8 * i, [int(72 + rng.choice([0, 2, 4, 5, 7])) for _ in range(30)], spacing=0.25)
        d.player.play(sorted(score))
        d.player.done.wait(len(chords) * 8 + 30)
        cutoff = time.monotonic()
        d.session.stop()
        time.sleep(0.3)
        played = note_ons(d.player.sent)
        changes = [(min(t for t, p in played if p == notes[0] and t >= played[0][0] + 8 * i - 0.1),
                    {p % 12 for p in notes}) for i, notes in enumerate(chords)]
        horizon = d.session.lookahead + max(o.latency for o in v.outputs) + 0.02

        def chord_at(t: float):
            current = [c for c in changes if c[0] <= t]
            return current[-1][1] if current and t >= current[-1][0] + horizon and t <= cutoff else None

        flags, problems = passing_check(events, d.session.clock, chord_at, "scale")
        known = [f for f in flags if f is not None]
        print(f"passing tones (scale): {sum(known)} of {len(known)} notes under a held chord "
              f"({100 * sum(known) / max(len(known), 1):.1f}%, passing_max 25% of any 16); "
              f"{len(problems)} broke the rules; late notes {v.late}; stuck {len(d.probe.note_balance())}")
        for problem in problems[:5]:
            print(f"  {problem}")
        d.close()
    finally:
        stop_process(jack.proc)


def key_correlation(pitches: list[int], key: int) -> tuple[float, int]:
    hist = np.bincount(np.asarray(pitches) % 12, minlength=12).astype(float)
    scores = [np.corrcoef(hist, np.roll(MAJOR_PROFILE, k))[0, 1] if hist.std() > 0 else 0.0 for k in range(12)]
    return float(scores[key]), int(np.argmax(scores))


def bench_sense(n_calls: int) -> None:
    from livernn.model import SamplerParams, load_model

    params = SamplerParams()
    for name in ("bach", "folk"):
        model = load_model(name)
        rng = np.random.default_rng(2)
        heard, base, heard_hit, base_hit = [], [], 0, 0
        for i in range(n_calls):
            key = int(rng.integers(12))
            ladder = [p for p in range(55, 80) if (p - key) % 12 in MAJOR]
            idx = int(rng.integers(len(ladder)))
            call = []
            for _ in range(int(rng.integers(6, 13))):
                idx = min(max(idx + int(rng.choice([-2, -1, 1, 2])), 0), len(ladder) - 1)
                call.append(ladder[idx])
            g = model.generator(seed=i)
            g.reset()
            for p in call:  # as an answer voice hears it: at note-on, a provisional length
                g.observe(p, 0.25, 0.25, 90)
            answer = [g.next(params)[0] for _ in range(16)]
            b = model.generator(seed=i)
            b.reset()
            baseline = [b.next(params)[0] for _ in range(16)]
            c, best = key_correlation(answer, key)
            heard.append(c)
            heard_hit += best == key
            c, best = key_correlation(baseline, key)
            base.append(c)
            base_hit += best == key
        print(f"musical sense ({name}, {n_calls} calls in random major keys, 16-note answers): key-profile "
              f"correlation with the call's key: heard the call {np.mean(heard):.3f}, did not {np.mean(base):.3f}; "
              f"answer's best key = call's key: {100 * heard_hit / n_calls:.0f}% vs {100 * base_hit / n_calls:.0f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--skip-jack", action="store_true")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.skip_jack:
        bench_jack(args.notes)
    bench_sense(args.calls)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

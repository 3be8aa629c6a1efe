"""Make the samples of examples/duet.md: each mode with the shipped models, a scripted
player (the same kind of phrases as tests/test_duet_jack.py), in real time.

    .venv/bin/python examples/duet/make_samples.py      # writes examples/duet/*.mid, *.png

Each MIDI file has two tracks, "player" (what was played) and "livernn" (the voice); the
piano roll draws the player's notes dark (velocity 40) and the voice's light.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pretty_midi

from livernn.engine import Session
from livernn.engine.listen import attach, listen_options
from livernn.notes import NOTE_DTYPE
from livernn.plot import piano_roll_png

HERE = Path(__file__).resolve().parent


def run(mode: str, model: str, score: list[tuple[float, int, float]], options: dict, length: float,
        **params) -> None:
    s = Session(bpm=120)
    voice = s.add_voice("v", model, outputs=[], seed=5, **params)
    policy = attach(voice, listen_options(mode, **options))
    heard: list[tuple[int, int, float, float]] = []
    s.on("note", lambda _v, pitch, vel, t_on, t_off: heard.append((pitch, vel, t_on, t_off)))
    s.start()
    t0 = time.monotonic() + 0.2
    events = sorted([(at, 1, p, dur) for at, p, dur in score] + [(at + dur, 0, p, dur) for at, p, dur in score])
    for at, on, pitch, _ in events:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        policy.note_on(pitch, 90) if on else policy.note_off(pitch)
    time.sleep(max(0.0, t0 + length - time.monotonic()))
    s.stop()
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    player, band = pretty_midi.Instrument(0, name="player"), pretty_midi.Instrument(0, name="livernn")
    for at, p, dur in score:
        player.notes.append(pretty_midi.Note(40, p, at, at + dur))
    for pitch, _vel, t_on, t_off in heard:
        if t_on - t0 < length:
            band.notes.append(pretty_midi.Note(110, pitch, t_on - t0, min(t_off, t0 + length) - t0))
    pm.instruments += [player, band]
    pm.write(str(HERE / f"{mode}.mid"))
    notes = sorted(player.notes + band.notes, key=lambda n: n.start)
    arr = np.zeros(len(notes), NOTE_DTYPE)
    for i, n in enumerate(notes):
        arr[i]["pitch"], arr[i]["velocity"], arr[i]["start"] = n.pitch, n.velocity, n.start
        arr[i]["duration"] = n.end - n.start
    piano_roll_png(arr, HERE / f"{mode}.png",
                   title=f"{mode} ({model}): player dark, livernn light — {policy.status()}")
    print(f"{mode}: {len(score)} player notes, {len(band.notes)} voice notes")


def phrase(start: float, pitches: list[int], spacing: float = 0.25, dur: float = 0.2):
    return [(start + i * spacing, p, dur) for i, p in enumerate(pitches)]


def main() -> None:
    call1 = [60, 62, 64, 65, 67, 65, 64, 62]  # C major
    call2 = [67, 69, 71, 72, 74, 72, 71, 67]
    run("answer", "folk", phrase(0.0, call1) + phrase(5.0, call2), {"ratio": 1.0, "finish_bar": True}, 10.0,
        pitch_min=55, pitch_max=84)
    melody = [64, 65, 67, 72, 71, 69, 67, 65, 64, 62, 60, 64, 67, 69, 71, 72]
    run("follow", "bach", phrase(0.0, melody, spacing=0.5, dur=0.45), {"intervals": [-9, -8, -5, -4, -3]},
        8.5, pitch_min=48, pitch_max=84, scale="major", root=0)
    chords = [(0.0, (48, 52, 55)), (2.0, (53, 57, 41)), (4.0, (43, 47, 50)), (6.0, (45, 48, 52))]
    score = [(at, p, 1.9) for at, notes in chords for p in notes]
    score += phrase(0.0, [72, 76, 79, 77, 76, 74, 72, 71, 72, 74, 76, 72, 69, 71, 72, 76], spacing=0.5, dur=0.4)
    run("accompany", "bach", score, {"split": 60}, 8.0, pitch_min=55, pitch_max=79, density=2.0, quantize=0.25)


if __name__ == "__main__":
    main()

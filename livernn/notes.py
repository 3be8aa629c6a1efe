"""Notes as the model sees them, and MIDI files <-> notes.

A performance is one time-ordered stream of notes. Each note carries ``step`` (seconds
since the previous note's onset: 0 for the other notes of a chord), ``duration`` and
``velocity``; ``start`` is the running sum of steps, kept so that files round-trip.
All non-drum instruments are merged into that one stream, which is how the model
learns polyphony: a chord is a run of notes with step 0, lowest pitch first.

Times are seconds as the file plays them (``time="seconds"``), or the file's beats at a
reference tempo (``time="beats"``: a beat, the MIDI quarter note, is ``60 / ref_bpm``
seconds, 0.5 s at 120 bpm), read through the file's own tempo map. The engine plays a
model's seconds as beats at its ``ref_bpm``, so in beats a chorale exported at 76 bpm and
one at 120 bpm carry the same eighth notes. A file with one tempo equal to ``ref_bpm`` (a
file with no tempo event is 120 bpm, as performed recordings usually are) reads the same
either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livernn.errors import LivernnError

NOTE_DTYPE = np.dtype(
    [
        ("pitch", np.int16),
        ("step", np.float32),
        ("duration", np.float32),
        ("velocity", np.int16),
        ("start", np.float64),
    ]
)


TIME_UNITS = ("beats", "seconds")


class MidiFileError(LivernnError):
    """A MIDI file that is missing, unreadable or holds no notes."""


def check_time_unit(time: str) -> str:
    """``time`` if it is one of ``TIME_UNITS``, else a one-line LivernnError."""
    if time not in TIME_UNITS:
        raise LivernnError(f"time must be \"beats\" or \"seconds\", got {time!r}")
    return time


def _beat_clock(pm, ref_bpm: float):
    """A function mapping the file's seconds to its beats at ``ref_bpm``, as seconds, through
    its tempo map (each time back to its tick, over the resolution: exact for tick-based
    MIDI); None when the map is one tempo of ``ref_bpm`` (the times are beats already)."""
    _, tempi = pm.get_tempo_changes()
    if len(tempi) <= 1 and abs(float(tempi[0] if len(tempi) else 120.0) - ref_bpm) < 1e-6:
        return None
    seconds_per_beat = 60.0 / ref_bpm
    resolution = float(pm.resolution)
    return lambda t: pm.time_to_tick(t) / resolution * seconds_per_beat


def make_notes(pitch, step, duration, velocity=None, start: float = 0.0) -> np.ndarray:
    """Build a note array from columns; ``start`` is derived from the steps."""
    pitch = np.asarray(pitch, dtype=np.int64)
    n = len(pitch)
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    notes["pitch"] = pitch
    notes["step"] = np.asarray(step, dtype=np.float64)
    notes["duration"] = np.asarray(duration, dtype=np.float64)
    notes["velocity"] = 80 if velocity is None else np.asarray(velocity)
    notes["start"] = start + np.cumsum(notes["step"].astype(np.float64))
    return notes


def _load_pretty_midi(path: Path):
    import pretty_midi

    if not path.is_file():
        raise MidiFileError(f"{path}: no such MIDI file")
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # pretty_midi/mido raise many types for bad bytes
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MidiFileError(f"{path}: not a readable MIDI file ({reason})") from None


def notes_from_midi(
    path: str | Path, *, instrument: int | None = None, include_drums: bool = False,
    time: str = "seconds", ref_bpm: float = 120.0,
) -> np.ndarray:
    """Read a MIDI file into one note stream.

    ``instrument`` picks one instrument by index (single-instrument mode); by default all
    non-drum instruments are merged. Ties on onset are ordered by pitch, so chords are
    always spelled bottom-up. ``time``: ``"seconds"`` as the file plays, or ``"beats"``
    through its tempo map at ``ref_bpm`` (the module's docstring).
    """
    check_time_unit(time)
    if not ref_bpm > 0:
        raise LivernnError(f"ref_bpm must be positive, got {ref_bpm!r}")
    path = Path(path)
    pm = _load_pretty_midi(path)
    instruments = [i for i in pm.instruments if include_drums or not i.is_drum]
    if instrument is not None:
        if not 0 <= instrument < len(instruments):
            raise MidiFileError(
                f"{path}: instrument {instrument} out of range (file has {len(instruments)})"
            )
        instruments = [instruments[instrument]]
    clock = _beat_clock(pm, float(ref_bpm)) if time == "beats" else None
    if clock is None:
        raw = [(n.start, n.pitch, n.end - n.start, n.velocity) for i in instruments for n in i.notes]
    else:
        raw = [(clock(n.start), n.pitch, clock(n.end) - clock(n.start), n.velocity)
               for i in instruments for n in i.notes]
    if not raw:
        raise MidiFileError(f"{path}: no notes")
    arr = np.array(raw, dtype=np.float64)
    order = np.lexsort((arr[:, 1], arr[:, 0]))
    arr = arr[order]
    notes = np.zeros(len(arr), dtype=NOTE_DTYPE)
    notes["start"] = arr[:, 0]
    notes["pitch"] = arr[:, 1]
    notes["duration"] = np.maximum(arr[:, 2], 0.0)
    notes["velocity"] = arr[:, 3]
    step = np.diff(arr[:, 0], prepend=arr[0, 0])
    notes["step"] = np.maximum(step, 0.0)
    return notes


def notes_to_midi(
    notes: np.ndarray,
    path: str | Path | None = None,
    *,
    program: int = 0,
    bpm: float = 120.0,
    name: str = "livernn",
):
    """Write notes to a MIDI file (if ``path``) and return the ``PrettyMIDI`` object."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(bpm))
    inst = pretty_midi.Instrument(program=int(program), name=name)
    for n in notes:
        start = float(n["start"])
        dur = max(float(n["duration"]), 1e-3)
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(np.clip(n["velocity"], 1, 127)),
                pitch=int(np.clip(n["pitch"], 0, 127)),
                start=start,
                end=start + dur,
            )
        )
    pm.instruments.append(inst)
    if path is not None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            pm.write(str(path))
        except OSError as exc:  # a folder, a read-only place: `generate -o` after the notes are made
            raise LivernnError(f"{path}: cannot write the MIDI file ({exc.strerror or exc})") from None
    return pm


def chord_rate(notes: np.ndarray) -> float:
    """Fraction of notes that sound together with the previous one (step 0)."""
    if len(notes) < 2:
        return 0.0
    return float(np.mean(notes["step"][1:] <= 1e-6))

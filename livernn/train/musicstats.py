"""Statistics of music as notes: generated pieces measured against held-out ones.

The pitch and rhythm statistics are MusPy's (Dong et al., "MusPy: A Toolkit for Symbolic
Music Generation", ISMIR 2020; ``muspy.metrics``, version 0.5.0), computed here on note
arrays (``livernn.notes.NOTE_DTYPE``) rather than through MusPy, which would add five
packages (muspy, pypianoroll, miditoolkit, bidict, PyYAML) and a conversion of every piece
into its tick-based ``Music`` objects for six short formulas. Each function's docstring
gives the definition it follows; tests/test_musicstats.py pins each on notes with known
answers, and the figures were checked against ``muspy.metrics`` 0.5.0 on the same pieces.

Three statistics are livernn's own, for the question a performer asks of a note model:
``chord_rate`` (``livernn.notes.chord_rate``: the share of notes with step 0),
``grid_share``, the share of onsets on the sixteenth grid in beats, and
``step_grid_share``, the share of non-zero steps that are a whole number of sixteenths: one
step off the grid moves every later onset off it, so ``grid_share`` tells whether a piece
stays on the grid and ``step_grid_share`` how often a single step leaves it (a corpus that
mixes tempos, like music21's chorale exports with their own tempos, has pieces off the
120 bpm grid whose steps a model trained on all of them will sometimes play).

Times: a model's seconds are seconds at its reference tempo ``bpm`` (``ref_bpm``, 120), and
so are the data's (training reads a file's seconds as they are), so beats are
``start * bpm / 60`` for both. The grid is a sixteenth (``GRID_BEATS``), and an onset is on
it within ``GRID_TOLERANCE`` (1%) of a beat, the tolerance ``data.augment.grid_share`` gives
a piece whose commonest step is a beat. Bars for ``groove_consistency`` are
``beats_per_bar`` beats (4 unless told: notes carry no meter) from time 0.

A corpus's figure (``corpus_stats``) is the mean over its pieces of each per-piece
statistic (MusPy's are defined per piece: the scale consistency of pieces pooled across
keys would mean nothing), except the three shares, which are pooled over the notes (or
onsets, or steps) of every piece. Pieces whose statistic is undefined (NaN: no notes, fewer than two
bars) are left out of that mean and counted in ``pieces_undefined``.
"""

from __future__ import annotations

import math

import numpy as np

from livernn.notes import chord_rate

GRID_BEATS = 0.25  # a sixteenth note, in beats
GRID_TOLERANCE = 0.01  # beats either side of a grid point (data.augment.GRID_TOLERANCE of a one-beat unit)
CHORD_STEP = 1e-6  # a step at most this long starts no new onset (livernn.notes.chord_rate's test)

# JSON key -> table label, in the order eval prints them
STATS = {
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "scale_consistency": "scale consistency",
    "pitch_range": "pitch range (semitones)",
    "chord_rate": "chord rate (step 0)",
    "grid_share": "onsets on the 1/16 grid",
    "step_grid_share": "steps on the 1/16 grid",
    "groove_consistency": "groove consistency",
}
POOLED = ("chord_rate", "grid_share", "step_grid_share")  # shares pooled over notes; the rest are means over pieces

_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)  # muspy.metrics._get_scale
_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)


def _pitches(notes: np.ndarray) -> np.ndarray:
    return np.asarray(notes["pitch"], dtype=np.int64)


def pitch_class_entropy(notes: np.ndarray) -> float:
    """Shannon entropy, in bits, of the normalised pitch-class histogram (``muspy.pitch_class_entropy``).

    -sum_i P(pitch class = i) log2 P(pitch class = i) over the 12 classes, every note
    counted (chord notes each); 0 for one pitch class, log2(12) = 3.585 for all twelve
    equally often; NaN without notes. MusPy cites Wu and Yang, "The Jazz Transformer on the
    Front Line", ISMIR 2020.
    """
    pitches = _pitches(notes)
    if len(pitches) == 0:
        return math.nan
    prob = np.bincount(pitches % 12, minlength=12) / len(pitches)
    prob = prob[prob > 0]
    return float(-(prob * np.log2(prob)).sum()) + 0.0  # + 0.0: no -0.0 for one class


def pitch_in_scale_rate(notes: np.ndarray, root: int, mode: str) -> float:
    """Share of notes whose pitch class is in the ``mode`` ("major"/"minor") scale on ``root``
    (``muspy.pitch_in_scale_rate``: natural minor); NaN without notes."""
    pitches = _pitches(notes)
    if len(pitches) == 0:
        return math.nan
    scale = np.roll(_MAJOR if mode == "major" else _MINOR, root)
    return float(scale[pitches % 12].mean())


def scale_consistency(notes: np.ndarray) -> float:
    """The largest pitch-in-scale rate over the 24 major and natural minor scales
    (``muspy.scale_consistency``, after Mogren's C-RNN-GAN, 2016): 1.0 for a piece in one
    key without accidentals; NaN without notes."""
    pitches = _pitches(notes)
    if len(pitches) == 0:
        return math.nan
    classes = np.bincount(pitches % 12, minlength=12)
    best = max(int(classes[np.roll(scale, root)].sum()) for scale in (_MAJOR, _MINOR) for root in range(12))
    return best / len(pitches)


def pitch_range(notes: np.ndarray) -> int:
    """Highest minus lowest pitch, in semitones (``muspy.pitch_range``); 0 without notes."""
    pitches = _pitches(notes)
    return int(pitches.max() - pitches.min()) if len(pitches) else 0


def onset_beats(notes: np.ndarray, bpm: float = 120.0) -> np.ndarray:
    """The distinct onsets of a piece in beats: the first note's and every note's with a step
    (a chord's later notes, step 0, share their onset)."""
    if len(notes) == 0:
        return np.zeros(0)
    new = np.asarray(notes["step"], dtype=np.float64) > CHORD_STEP
    new[0] = True
    return np.asarray(notes["start"], dtype=np.float64)[new] * bpm / 60.0


def grid_share(notes: np.ndarray, bpm: float = 120.0, grid: float = GRID_BEATS,
               tolerance: float = GRID_TOLERANCE) -> tuple[float, int]:
    """Share of a piece's onsets within ``tolerance`` beats of the ``grid`` (a sixteenth), and
    how many onsets were looked at ((NaN, 0) without notes).

    livernn's own statistic, on onsets in beats at ``bpm`` rather than on the steps of
    ``data.augment.grid_share`` (which finds a piece's own unit to decide whether a corpus is
    quantised): a sampled step off the grid moves every later onset off it, which is what a
    listener hears and what the engine's ``quantize`` would have to repair.
    """
    beats = onset_beats(notes, bpm)
    if len(beats) == 0:
        return math.nan, 0
    x = beats / grid
    on = np.abs(x - np.round(x)) * grid <= tolerance + 1e-9
    return float(on.mean()), len(beats)


def step_grid_share(notes: np.ndarray, bpm: float = 120.0, grid: float = GRID_BEATS,
                    tolerance: float = GRID_TOLERANCE) -> tuple[float, int]:
    """Share of a piece's non-zero steps (longer than ``CHORD_STEP``) within ``tolerance`` beats
    of a whole number of ``grid`` beats, and how many steps were looked at ((NaN, 0) without)."""
    steps = np.asarray(notes["step"], dtype=np.float64)[1:] if len(notes) else np.zeros(0)
    beats = steps[steps > CHORD_STEP] * bpm / 60.0
    if len(beats) == 0:
        return math.nan, 0
    x = beats / grid
    on = np.abs(x - np.round(x)) * grid <= tolerance + 1e-9
    return float(on.mean()), len(beats)


def groove_consistency(notes: np.ndarray, bpm: float = 120.0, beats_per_bar: int = 4,
                       resolution: int = 4) -> float:
    """MusPy's groove consistency (``muspy.groove_consistency``, from Wu and Yang, ISMIR 2020):

    1 - 1/(T - 1) sum_{i=1}^{T-1} d(G_i, G_{i+1}) / R, where G_i is the binary onset vector of
    bar i on ``R = beats_per_bar * resolution`` positions (``measure_resolution``; here
    sixteenths), d the Hamming distance and T the number of bars, ``end // R + 1`` with
    ``end`` the last note-off (MusPy counts bars so). An onset is at position
    ``round(beats * resolution)``, as MusPy's integer times are after quantising to
    ``resolution`` steps a beat. 1.0 when every bar repeats the first's onsets; NaN under
    two bars.
    """
    if len(notes) == 0:
        return math.nan
    steps_per_bar = int(beats_per_bar * resolution)
    start = np.asarray(notes["start"], dtype=np.float64) * bpm / 60.0
    end = start + np.asarray(notes["duration"], dtype=np.float64) * bpm / 60.0
    times = np.round(start * resolution).astype(np.int64)
    length = int(np.round(end * resolution).max())
    n_bars = length // steps_per_bar + 1
    if n_bars < 2:
        return math.nan
    patterns = np.zeros((n_bars, steps_per_bar), bool)
    bar, position = np.divmod(times, steps_per_bar)
    patterns[bar, position] = True
    distance = np.count_nonzero(patterns[:-1] != patterns[1:])
    return 1.0 - distance / (steps_per_bar * (n_bars - 1))


def piece_stats(notes: np.ndarray, bpm: float = 120.0, beats_per_bar: int = 4) -> dict[str, float]:
    """Every statistic of one piece (``STATS``' keys)."""
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "pitch_range": float(pitch_range(notes)) if len(notes) else math.nan,
        "chord_rate": chord_rate(notes) if len(notes) >= 2 else math.nan,
        "grid_share": grid_share(notes, bpm)[0],
        "step_grid_share": step_grid_share(notes, bpm)[0],
        "groove_consistency": groove_consistency(notes, bpm, beats_per_bar),
    }


def corpus_stats(pieces: list[np.ndarray], bpm: float = 120.0, beats_per_bar: int = 4) -> dict:
    """The statistics of several pieces: per-piece means, the shares pooled (module docstring).

    Returns ``STATS``' keys plus ``pieces``, ``notes``, ``onsets``, ``steps`` and ``pieces_undefined``
    (key -> pieces left out of that mean for a NaN).
    """
    per_piece = [piece_stats(p, bpm, beats_per_bar) for p in pieces]
    out: dict = {}
    undefined: dict[str, int] = {}
    for key in STATS:
        if key in POOLED:
            continue
        values = np.array([s[key] for s in per_piece], dtype=np.float64)
        defined = values[~np.isnan(values)]
        out[key] = float(defined.mean()) if len(defined) else math.nan
        undefined[key] = int(len(values) - len(defined))
    chords = sum(int(np.sum(np.asarray(p["step"][1:]) <= CHORD_STEP)) for p in pieces)
    notes = sum(len(p) for p in pieces)
    out["chord_rate"] = chords / max(sum(max(len(p) - 1, 0) for p in pieces), 1)
    shares = [grid_share(p, bpm) for p in pieces]
    onsets = sum(k for _, k in shares)
    out["grid_share"] = sum(s * k for s, k in shares if k) / onsets if onsets else math.nan
    step_shares = [step_grid_share(p, bpm) for p in pieces]
    steps = sum(k for _, k in step_shares)
    out["step_grid_share"] = sum(s * k for s, k in step_shares if k) / steps if steps else math.nan
    out.update(pieces=len(pieces), notes=notes, onsets=onsets, steps=steps, pieces_undefined=undefined)
    return {k: out[k] for k in (*STATS, "pieces", "notes", "onsets", "steps", "pieces_undefined")}

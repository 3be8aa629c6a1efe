"""A finished recording, rendered to hear and to see: WAV through FluidSynth, piano-roll PNG.

After a set, ``livernn perform ... --record set.mid`` leaves a MIDI file; ``render`` turns
it into ``set.wav`` (FluidSynth's offline renderer, faster than real time, with a General
MIDI soundfont) and ``set.png`` (livernn.plot's piano roll), so a set can be checked
without a synth or a sound card.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from livernn.errors import LivernnError

SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
)


def soundfont() -> Path:
    """$LIVERNN_SOUNDFONT, else the first General MIDI soundfont installed."""
    chosen = os.environ.get("LIVERNN_SOUNDFONT")
    if chosen:
        if not Path(chosen).is_file():
            raise LivernnError(f"LIVERNN_SOUNDFONT {chosen!r} is not a file")
        return Path(chosen)
    for path in SOUNDFONTS:
        if path.is_file():
            return path
    raise LivernnError("no soundfont found: install timgm6mb-soundfont or set LIVERNN_SOUNDFONT")


def render_wav(midi: str | Path, wav: str | Path | None = None, sample_rate: int = 44100,
               gain: float = 1.0) -> Path:
    """Render ``midi`` to a 16-bit stereo WAV (default: beside it, ``.wav``)."""
    midi = Path(midi)
    if not midi.is_file():
        raise LivernnError(f"no MIDI file {str(midi)!r} to render")
    program = shutil.which("fluidsynth")
    if program is None:
        raise LivernnError("rendering needs fluidsynth: apt-get install fluidsynth")
    wav = Path(wav) if wav is not None else midi.with_suffix(".wav")
    wav.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [program, "-n", "-i", "-q", "-g", str(gain), "-r", str(sample_rate), "-F", str(wav),
         str(soundfont()), str(midi)],
        capture_output=True, text=True, timeout=600,
    )
    if run.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
        reason = (run.stderr or run.stdout).strip().splitlines()
        raise LivernnError(f"fluidsynth could not render {midi}: {reason[-1] if reason else 'no output'}")
    return wav


def render_png(midi: str | Path, png: str | Path | None = None) -> Path:
    """Draw ``midi`` as a piano roll (default: beside it, ``.png``)."""
    from livernn.notes import notes_from_midi
    from livernn.plot import piano_roll_png

    midi = Path(midi)
    png = Path(png) if png is not None else midi.with_suffix(".png")
    return piano_roll_png(notes_from_midi(midi), png, title=midi.stem)


def render(midi: str | Path, wav: str | Path | None = None, png: str | Path | None = None) -> tuple[Path, Path]:
    """Both renderings of a recording; returns (wav, png)."""
    return render_wav(midi, wav), render_png(midi, png)

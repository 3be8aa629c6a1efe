"""The recorder: everything played, as a MIDI file, at the times it was scheduled for.

It is an output like the others (latency 0), so it sees exactly the events the MIDI ports
see, but it writes their *logical* times, not when they were sent (so it is not
``punctual``: the sender never spins for its events): the file is the
reference the timing measurements compare against. The file is written with mido at one
tempo (the session's when recording started), so beats line up until the tempo changes;
times in seconds are exact either way. ``maintain`` rewrites it every few seconds, so a
crash loses little; a disk error stops the recording with a one-line message and the
show plays on. A recording already at the path is moved to ``NAME-1.mid`` first.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import mido

from livernn.errors import LivernnError
from livernn.outputs.base import MidiBytesOutput, OutputKind

TICKS_PER_BEAT = 960
SAVE_EVERY = 5.0


def keep_earlier_take(path: Path) -> Path | None:
    """A recording with notes already at ``path`` (last night's set, recorded by the same
    patch) is moved to the first free ``NAME-1.mid``, ``NAME-2.mid``, ... and said in one line,
    so running the show again never loses a take; returns where it went. A file with no notes
    is simply replaced; one that is not MIDI at all is kept too."""
    if not path.is_file():
        return None
    try:
        if not any(m.type == "note_on" and m.velocity for track in mido.MidiFile(str(path)).tracks
                   for m in track):
            return None
    except (OSError, EOFError, ValueError, KeyError, IndexError):
        pass  # not a MIDI file we can read: not ours to replace either
    n = 1
    while (kept := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    try:
        os.replace(path, kept)
    except OSError as exc:
        raise LivernnError(f"{path} holds an earlier recording that could not be moved aside "
                           f"({exc.strerror or exc}); record to another name") from None
    print(f"livernn: {path} held an earlier recording; kept it as {kept.name}", file=sys.stderr)
    return kept


class FileRecorder(MidiBytesOutput):
    kind = "recorder"
    punctual = False  # it writes logical times: the sender need not spin for its events

    def __init__(self, path: str | Path, bpm: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mid", ".midi"):
            raise LivernnError(f"{self.path}: a recording must be a .mid file")
        self.bpm = bpm
        self.start = time.monotonic()  # time zero of the file
        self.events: list[tuple[float, list[int]]] = []
        self.failed: str | None = None
        self.closed = False
        self._open: set[tuple[int, int]] = set()
        self._saved_count = -1
        self._last_save = time.monotonic()
        self.kept = keep_earlier_take(self.path)
        self.save()  # fail now, not at the end of the show, if the path is unwritable

    def _send(self, data: list[int], t: float) -> None:
        if self.failed is None and not self.closed:
            self.events.append((t, data))
            key = (data[0] & 0x0F, data[1])
            if data[0] & 0xF0 == 0x90:
                self._open.add(key)
            elif data[0] & 0xF0 == 0x80:
                self._open.discard(key)

    def all_notes_off(self) -> None:
        """Nothing: the file holds the notes and their note-offs (``close`` ends open ones), and
        32 controller messages per panic would only clutter it."""

    def midi_file(self) -> mido.MidiFile:
        bpm = self.bpm or (self.clock.bpm if self.clock else 120.0)
        ticks_per_second = TICKS_PER_BEAT * bpm / 60.0
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
        now_tick = 0
        for t, data in sorted(self.events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
            tick = max(round((t - self.start) * ticks_per_second), now_tick)
            track.append(mido.Message.from_bytes(data, time=tick - now_tick))
            now_tick = tick
        midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
        midi.tracks.append(track)
        return midi

    def save(self) -> None:
        """Write the file now (atomically); on a disk error, stop recording and say why."""
        if self.failed is not None or self._saved_count == len(self.events):
            return
        tmp = self.path.with_name(self.path.name + ".part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.midi_file().save(str(tmp))
            os.replace(tmp, self.path)
        except OSError as exc:
            self.failed = f"recording to {self.path} stopped: {exc.strerror or exc}"
            self.last_error = self.failed
            self.errors += 1
            if self._saved_count < 0:
                raise LivernnError(self.failed) from None
            return
        self._saved_count = len(self.events)
        self._last_save = time.monotonic()

    def maintain(self) -> None:
        if time.monotonic() - self._last_save >= SAVE_EVERY:
            self.save()

    def close(self) -> None:
        """End the notes still open at the time of closing, write the file, take no more."""
        if self.closed:
            return
        now = time.monotonic()
        for channel, pitch in sorted(self._open):
            self.note_off(channel + 1, pitch, now)
        self.closed = True
        self.save()

    def describe(self) -> str:
        state = f" ({self.failed})" if self.failed else ""
        return f"recorder {self.path}, {len(self.events)} events{state}"


KIND = OutputKind("file", {"path": str}, lambda name, options, bpm: FileRecorder(options["path"], bpm),
                  file_options={"path": ".mid"})

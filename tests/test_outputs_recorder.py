"""The recorder writes what was played at the logical times it was scheduled for."""

from __future__ import annotations

import time

import mido
import pytest

from livernn.engine import Session
from livernn.engine.scheduler import Note, Scheduler
from livernn.errors import LivernnError
from livernn.outputs import file_recorder


def test_logical_times_in_the_file(tmp_path):
    rec = file_recorder(tmp_path / "take.mid", bpm=120)
    sched = Scheduler(realtime=False)
    sched.start()
    t0 = rec.start
    try:
        sched.schedule_note(Note("v", 1, 60, 100, t0 + 0.10, t0 + 0.35, (rec,)))
        sched.schedule_note(Note("v", 2, 64, 90, t0 + 0.25, t0 + 0.50, (rec,)))
        sched.schedule_note(Note("v", 1, 60, 80, t0 + 0.30, t0 + 0.60, (rec,)))  # retrigger
        time.sleep(0.75)
    finally:
        sched.stop()
    rec.close()
    messages, now = [], 0.0
    for m in mido.MidiFile(tmp_path / "take.mid"):  # iteration yields seconds
        now += m.time
        if not m.is_meta:
            messages.append((round(now, 3), m.type, m.channel, m.note))
    assert messages == [
        (0.1, "note_on", 0, 60),
        (0.25, "note_on", 1, 64),
        (0.3, "note_off", 0, 60),  # the retrigger ends the first C first
        (0.3, "note_on", 0, 60),
        (0.5, "note_off", 1, 64),
        (0.6, "note_off", 0, 60),
    ]


def test_unwritable_path_is_refused_up_front(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(LivernnError, match=r"recording to .* stopped"):
        file_recorder(tmp_path / "a-file" / "take.mid")
    with pytest.raises(LivernnError, match=r"\.mid"):
        file_recorder(tmp_path / "take.wav")


def test_disk_error_mid_show_stops_the_recording_not_the_show(tmp_path):
    target = tmp_path / "take.mid"
    s = Session(bpm=300)
    errors = []
    s.on("error", errors.append)
    s.record(target)
    recorder = s.taps[0]
    v = s.add_voice("lead", seed=1)
    s.start()
    try:
        time.sleep(0.3)
        recorder.path = tmp_path / "gone" / "take.mid"  # the disk under it went away
        (tmp_path / "gone").write_text("a file where the folder should be")
        recorder.save()
        assert recorder.failed and "stopped" in recorder.failed
        played = v.notes_played
        time.sleep(0.6)
        assert v.notes_played > played  # the show plays on
        assert s.status()["recording"] is None  # detached, with one message
    finally:
        s.stop()
    assert any("recording to" in e for e in errors)

"""The engine playing the shipped model into real JACK MIDI ports: nothing stuck, ever."""

from __future__ import annotations

import os
import time

import pytest

from livernn.engine import Session
from livernn.errors import LivernnError
from livernn.model import load_model
from livernn.outputs import midi
from peers import ProcessMidiProbe, raw_rms, wait_for

pytestmark = pytest.mark.integration

CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF = 120, 123


@pytest.fixture
def midi_probe(jack, request):
    """The probe listens in its own process: an in-process python-rtmidi JACK input garbles
    bursts while the engine's threads are busy (see peers.ProcessMidiProbe)."""
    probe = ProcessMidiProbe(f"eprobe{abs(hash(request.node.nodeid)) % 100000}")
    yield probe
    probe.close()


def note_ons(probe) -> list[list[int]]:
    return [m for m in probe.messages() if m[0] & 0xF0 == 0x90 and m[2] > 0]


def playing_session(probe, bpm: float = 240.0, lookahead: float = 0.1, **voice) -> Session:
    s = Session(bpm=bpm, lookahead=lookahead)
    s.add_output("probe", midi(probe.client, create=False))
    s.add_voice("lead", seed=7, **voice)
    return s.start()


class FailingModel:
    """The shipped model, except that its generators raise on the ``after``-th note."""

    def __init__(self, after: int) -> None:
        self.inner = load_model()
        self.name, self.ref_bpm, self.after = "failing", self.inner.ref_bpm, after

    def generator(self, seed=None):
        inner, after = self.inner.generator(seed), self.after

        class Generator:
            calls = 0

            def __getattr__(self, name):
                return getattr(inner, name)

            def next(self, params):
                Generator.calls += 1
                if Generator.calls > after:
                    raise FloatingPointError("logits went non-finite")
                return inner.next(params)

        return Generator()


def test_notes_arrive_and_panic_ends_every_one(jack, midi_probe):
    s = playing_session(midi_probe)
    try:
        wait_for(lambda: len(note_ons(midi_probe)) >= 8, 10, "notes from the voice")
        s.panic()
        expected = {(ch, cc) for ch in range(16) for cc in (CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF)}
        ccs = lambda: {(m[0] & 0x0F, m[1]) for m in midi_probe.messages() if m[0] & 0xF0 == 0xB0}  # noqa: E731
        wait_for(lambda: expected <= ccs(), 5, "CC 120 and 123 on every channel")
        wait_for(lambda: midi_probe.note_balance() == {}, 3, "a note-off for every note-on")
        assert s.status()["voices"]["lead"]["late"] == 0
    finally:
        s.stop()
    wait_for(lambda: midi_probe.note_balance() == {}, 3, "a note-off for every note-on")


def test_voice_params_shape_the_notes(jack, midi_probe):
    s = playing_session(midi_probe, pitch_min=60, pitch_max=72, scale="major", velocity_scale=0.0,
                        velocity_offset=33)
    lead = s.voices["lead"]
    try:
        wait_for(lambda: len(note_ons(midi_probe)) >= 10, 10, "notes")
        ons = note_ons(midi_probe)
        assert all(60 <= m[1] <= 72 and m[1] % 12 in (0, 2, 4, 5, 7, 9, 11) for m in ons)
        assert {m[2] for m in ons} == {33}
        assert {m[0] & 0x0F for m in ons} == {0}
        lead.mute = True
        time.sleep(lead.horizon() + 0.6)  # the notes in hand play out, then nothing
        count = len(note_ons(midi_probe))
        time.sleep(0.5)
        assert len(note_ons(midi_probe)) == count
    finally:
        s.stop()
    wait_for(lambda: midi_probe.note_balance() == {}, 3, "a note-off for every note-on")


@pytest.mark.parametrize("policy", ["ring", "cut"])
def test_swap_at_each_boundary_leaves_no_stuck_note(jack, midi_probe, policy):
    # A lookahead with room for the 2-core test machine's scheduling stalls: the point is
    # that loading, warming and priming a model on the side never delays a note.
    s = playing_session(midi_probe, bpm=300.0, lookahead=0.25)
    swaps = []
    s.on("swap", lambda voice, model, beat: swaps.append(beat))
    try:
        wait_for(lambda: len(note_ons(midi_probe)) >= 4, 10, "notes")
        for at in ("now", "beat", "bar"):
            model = s.swap("lead", load_model(), at=at, policy=policy).result(timeout=10)
            assert model.name == "bach"
            before = len(note_ons(midi_probe))
            wait_for(lambda: len(note_ons(midi_probe)) >= before + 3, 10, "notes")
        assert swaps[1] == int(swaps[1]) and swaps[2] % 4 == 0  # on a beat, then on a bar line
        lead = s.voices["lead"]
        assert lead.epoch == 3 and lead.late == 0
        # The swaps held up no deadline: every message reached the MIDI sender process
        # before its time (it gets them LEAD = 50 ms early and sends at the deadline).
        assert s.status()["send_late_ms"]["max"] < 50.0
    finally:
        s.stop()
    wait_for(lambda: midi_probe.note_balance() == {}, 3, "a note-off for every note-on")


def test_failed_swap_keeps_the_old_model(jack, midi_probe, tmp_path):
    s = playing_session(midi_probe)
    try:
        (tmp_path / "config.json").write_text("{not json")
        future = s.swap("lead", tmp_path, at="beat")
        with pytest.raises(LivernnError, match="old model plays on"):
            future.result(timeout=10)
        assert "\n" not in str(future.exception())
        count = len(note_ons(midi_probe))
        wait_for(lambda: len(note_ons(midi_probe)) >= count + 4, 10, "the old model to play on")
        assert s.voices["lead"].model.name == "bach"
    finally:
        s.stop()
    wait_for(lambda: midi_probe.note_balance() == {}, 3, "a note-off for every note-on")


def test_exception_in_a_voice_ends_its_notes_and_the_others_play_on(jack, midi_probe):
    s = Session(bpm=240.0)
    errors = []
    s.on("error", errors.append)
    s.add_output("probe", midi(midi_probe.client, create=False))
    s.add_voice("good", channel=1, seed=1)
    broken = s.add_voice("broken", FailingModel(after=6), channel=2, seed=2)
    rescued = s.add_voice("rescued", channel=3, seed=3)
    s.start()
    try:
        s.swap("rescued", FailingModel(after=20), at="now").result(timeout=10)
        wait_for(lambda: len(errors) >= 2, 10, "both failing voices to fail")
        assert all("\n" not in e and "FloatingPointError" in e for e in errors)
        assert broken.failed and "silent" in next(e for e in errors if "broken" in e)
        assert rescued.failed is None and rescued.model.name == "bach"
        assert "back to model bach" in next(e for e in errors if "rescued" in e)
        time.sleep(0.3)
        before = {ch: sum(1 for m in note_ons(midi_probe) if m[0] & 0x0F == ch) for ch in range(3)}
        time.sleep(1.0)
        after = {ch: sum(1 for m in note_ons(midi_probe) if m[0] & 0x0F == ch) for ch in range(3)}
        assert after[0] > before[0] and after[2] > before[2]  # good and rescued play on
        assert after[1] == before[1]  # broken is silent
        assert not any(k[0] == 1 for k in midi_probe.note_balance())  # and left nothing open
    finally:
        s.stop()
    wait_for(lambda: midi_probe.note_balance() == {}, 3, "a note-off for every note-on")


def test_fluidsynth_sounds_then_silence_after_panic(jack, fluidsynth):
    s = Session(bpm=240.0)
    s.add_output("fs", midi("fsynth", create=False))
    v = s.add_voice("lead", seed=5, velocity_offset=30, pitch_min=48, pitch_max=84)
    s.start()
    try:
        time.sleep(1.5)
        v.mute = True
        s.panic()
        time.sleep(1.2)
    finally:
        s.stop()
    raw = fluidsynth.stop()
    seconds = raw.stat().st_size / (44100 * 4)
    assert raw_rms(raw) > 0.002
    assert raw_rms(raw, seconds - 0.7, 0.6) < 1e-4


def test_a_note_ended_after_the_sender_has_it_is_recorded_as_it_was_sent(midi_probe, tmp_path):
    """MIDI goes to the sender process 50 ms ahead; a note ended before its onset (polyphony,
    a cut swap) after that is played anyway. The recording must then have it too: the REPL's
    busy-loop check once counted 293 notes at the port for 288 recorded (issue 12)."""
    from livernn.engine.scheduler import Note, Scheduler
    from livernn.outputs import file_recorder

    out = midi(midi_probe.client, create=False)
    recorder = file_recorder(tmp_path / "rec.mid")
    scheduler = Scheduler()
    scheduler.start()
    try:
        now = time.monotonic()
        early = Note("v", 1, 61, 90, now + 0.3, now + 0.5, (out, recorder))  # handed over, then ended
        spared = Note("v", 1, 62, 90, now + 0.6, now + 0.8, (out, recorder))  # ended before handed over
        scheduler.schedule_note(early)
        scheduler.schedule_note(spared)
        time.sleep(max(0.0, early.t_on - out.latency / 2 - time.monotonic()))  # handed over, not played
        assert scheduler.end_notes(lambda n: True, early.t_on) == 2
        assert time.monotonic() < early.t_on, "too slow to end the note before its onset: run again"
        time.sleep(1.0)
    finally:
        scheduler.stop()
    recorded = [(d[0] & 0xF0, d[1]) for _, d in recorder.events]
    sent = [(m[0] & 0xF0, m[1]) for m in midi_probe.messages()]
    assert sent == [(0x90, 61), (0x80, 61)]
    assert recorded == sent
    out.close()
    recorder.close()


@pytest.mark.parametrize("how", ["panic", "stop", "panic-recorder-100ms-late", "stop-two-notes-one-pitch"])
def test_a_note_the_sender_has_when_the_show_panics_or_stops_is_recorded_as_it_was_sent(midi_probe, tmp_path,
                                                                                        how):
    """A panic or the end of the show (Ctrl-D, SIGTERM) with a note already at the MIDI sender
    process (50 ms ahead) but not yet at its onset: the synth hears it, so the recording has
    it too. Before, the recorder's half was dropped with the rest of the heap: a show stopped
    mid-phrase lost its last note from the recording (the synth heard it for 1 ms). A recorder
    with a latency offset gets the note at its own time and its note-off 1 ms after that,
    never before its note-on. Two notes of one pitch at one onset (a chord can have them) are
    both sent, so both are recorded (the second took the first's place among the open notes:
    a SIGTERM'd REPL session recorded 11 note-ons for 12 heard)."""
    from livernn.engine.scheduler import Note
    from livernn.outputs import file_recorder

    session = Session(bpm=120.0)
    out = session.add_output("probe", midi(midi_probe.client, create=False))
    recorder = session.add_output("rec", file_recorder(tmp_path / "rec.mid"))
    shift = 0.1 if how == "panic-recorder-100ms-late" else 0.0
    if shift:
        session.set_offset("rec", 1000 * shift)
    twins = how.endswith("two-notes-one-pitch")
    session.start()
    try:
        now = time.monotonic()
        early = Note("v", 1, 61, 90, now + 0.3, now + 0.5, (out, recorder))  # at the sender when it ends
        twin = Note("v", 1, 61, 80, now + 0.3, now + 0.5, (out, recorder))  # its twin: both sent
        later = Note("v", 1, 62, 90, now + 0.6, now + 0.8, (out, recorder))  # not handed over yet: dropped
        for note in (early, twin, later) if twins else (early, later):
            session.scheduler.schedule_note(note)
        time.sleep(max(0.0, early.t_on - 0.03 - time.monotonic()))  # handed over (50 ms ahead), not played
        session.stop() if how.startswith("stop") else session.panic()  # stop() returns once the sender is done
        time.sleep(1.0)
    finally:
        session.stop()
    recorded = [(d[0] & 0xF0, d[1]) for _, d in recorder.events]
    sent = [(m[0] & 0xF0, m[1]) for m in midi_probe.messages() if m[0] & 0xF0 in (0x80, 0x90)]
    assert sent == [(0x90, 61), (0x80, 61)] * (2 if twins else 1)
    assert recorded == sent
    assert recorder.events[0][0] == early.t_on + shift
    # Ended at its onset + 1 ms, so it was ended before its onset: what this test is about.
    assert recorder.events[-1][0] == pytest.approx(early.t_on + shift + 1e-3, abs=1e-6), "ended late: run again"


@pytest.mark.parametrize("output", ["osc-ahead", "recorder"])
def test_the_scheduler_does_not_spin_for_outputs_that_keep_time_themselves(output, tmp_path):
    """Messages for the MIDI sender process or a timestamped OSC bundle go out ahead of their
    time and the peer keeps the deadline; a real-time thread spinning 1.5 ms before each
    hand-over took a CPU from the sender on a 2-core machine for nothing. The recorder writes
    logical times, so it needs no deadline at all: spinning for it (every note of a recorded
    show) also held the GIL from generation and the REPL for 1.5 ms a note."""
    import socket
    from pathlib import Path

    from livernn.engine.clock import Clock
    from livernn.engine.scheduler import Note, Scheduler
    from livernn.outputs import file_recorder, osc

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    if output == "recorder":
        out = file_recorder(tmp_path / "rec.mid")
        assert out.latency == 0.0  # so only ``punctual`` keeps the sender from spinning
    else:
        out = osc("127.0.0.1", rx.getsockname()[1], latency=0.05)
    out.attach(Clock())
    scheduler = Scheduler()  # at SCHED_FIFO where allowed, as in a Session: it wakes on time
    scheduler.start()
    try:
        start = time.monotonic() + 0.1
        for i in range(200):  # 200 hand-overs a second for 2 s: spinning would be 0.6 s of CPU
            t = start + i / 100
            scheduler.schedule_note(Note("v", 1, 60, 90, t, t + 0.005, (out,)))
        stat = Path(f"/proc/self/task/{scheduler._thread.native_id}/stat")
        ticks = lambda: sum(int(x) for x in stat.read_text().rsplit(")", 1)[1].split()[11:13])  # noqa: E731
        before = ticks()
        time.sleep(2.1)
        cpu = (ticks() - before) / os.sysconf("SC_CLK_TCK")
    finally:
        scheduler.stop()
        out.close()
        rx.close()
    assert cpu < 0.25, f"the scheduler thread used {cpu:.2f} s of CPU in 2 s (spinning)"


def test_a_punctual_output_at_the_recorders_time_is_still_sent_first():
    """The recorder's events queue a microsecond after their deadline, so a punctual output's
    event at the same time comes first and is sent after the spin, on time; the recorder gets
    the same logical times."""
    from livernn.engine.clock import Clock
    from livernn.engine.scheduler import Note, Scheduler
    from livernn.outputs.base import Output

    calls: list[tuple[str, str, float, float]] = []

    class Log(Output):
        def __init__(self, name: str, punctual: bool) -> None:
            super().__init__()
            self.name, self.punctual = name, punctual

        def note_on(self, channel, pitch, velocity, t, duration=None):
            calls.append((self.name, "on", t, time.monotonic()))

        def note_off(self, channel, pitch, t):
            calls.append((self.name, "off", t, time.monotonic()))

    rec, synth = Log("rec", False), Log("synth", True)
    for out in (rec, synth):
        out.attach(Clock())
    scheduler = Scheduler()
    scheduler.start()
    try:
        start = time.monotonic() + 0.1
        for i in range(20):
            t = start + i * 0.02
            scheduler.schedule_note(Note("v", 1, 60, 90, t, t + 0.01, (rec, synth)))  # the recorder first
        time.sleep(0.6)
    finally:
        scheduler.stop()
    assert len(calls) == 80
    for i in range(0, 80, 2):
        first, second = calls[i], calls[i + 1]
        assert (first[0], second[0]) == ("synth", "rec") and first[1:3] == second[1:3], calls[i:i + 2]
    late = [at - t for name, _, t, at in calls if name == "synth"]
    assert min(late) >= 0.0, min(late)

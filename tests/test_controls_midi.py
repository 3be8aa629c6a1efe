"""MIDI input through a real JACK server: CC/bend/notes on the bus, MIDI learn, listen mode."""

from __future__ import annotations

import itertools
import time

import pytest
import rtmidi

from livernn.controls.bus import ControlBus
from livernn.controls.midi_in import MidiIn, NoteListener
from livernn.controls.runtime import ControlRuntime
from livernn.engine import Session
from livernn.errors import LivernnError
from livernn.midi_system import free_client


def wait_until(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def controller(jack, request):
    """A JACK MIDI output playing the part of a hardware controller."""
    name = f"ctl{abs(hash(request.node.nodeid)) % 100000}"
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    out.open_virtual_port("out")
    yield out, f"{name}:out"
    free_client(out)  # ``del`` never frees it




def connect(jack, source: str, dest_part: str) -> None:
    dest = jack.wait_port(dest_part)
    jack.connect(source, dest)


def test_an_input_named_as_part_of_another_gets_its_own(jack):
    """'lvkeys' beside 'lvkeys2': the exact source, not the first listed; part of both is one
    line naming them (it picked one, silently)."""
    keys = []
    for name in ("lvkeys2", "lvkeys"):
        keys.append(rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name))
        keys[-1].open_virtual_port("out")
    try:
        jack.wait_port("lvkeys:out")
        midi = MidiIn(ControlBus(), "lvkeys")
        try:
            assert midi.name == "lvkeys:out"
        finally:
            midi.close()
        with pytest.raises(LivernnError, match=r"^MIDI input 'lvkey' matches 2 ports: 'lvkeys.?:out', 'lvkeys.?:out'"):
            MidiIn(ControlBus(), "lvkey")
    finally:
        for out in keys:
            free_client(out)


def test_cc_bend_and_notes_reach_the_bus(jack, controller):
    out, source = controller
    bus = ControlBus()
    midi = MidiIn(bus, "livernn-test-in")
    try:
        assert midi.api_name == "JACK"
        connect(jack, source, "livernn-test-in")
        out.send_message([0xB0 | 2, 74, 127])  # CC 74 on channel 3
        out.send_message([0xE0, 0x00, 0x00])  # bend fully down on channel 1
        out.send_message([0x90, 60, 64])
        assert wait_until(lambda: bus.get("midi.cc.3.74") == 1.0)
        assert wait_until(lambda: bus.get("midi.bend.1") == -1.0)
        assert wait_until(lambda: bus.get("midi.note.1.60") == pytest.approx(64 / 127))
    finally:
        midi.close()


def test_midi_learn_binds_the_next_control_moved(jack, controller):
    out, source = controller
    session = Session(bpm=120)
    session.add_voice("lead")
    runtime = ControlRuntime(session)
    midi = MidiIn(session.bus, "livernn-learn-in")
    bound = []
    try:
        connect(jack, source, "livernn-learn-in")
        runtime.learn("lead", "temperature", on_bound=bound.append)
        out.send_message([0xB0, 21, 0])  # knob CC 21 on channel 1
        assert wait_until(lambda: bound)
        assert bound[0].source == "midi.cc.1.21"
        out.send_message([0xB0, 21, 127])
        assert wait_until(lambda: session.voices["lead"].temperature == 5.0)
        out.send_message([0xB0, 22, 0])  # another knob: not bound, changes nothing
        time.sleep(0.1)
        assert session.voices["lead"].temperature == 5.0 and len(runtime.bindings) == 1
    finally:
        midi.close()
        runtime.close()
        session.stop()


def test_listen_mode_feeds_played_notes_to_the_voice(jack, controller):
    out, source = controller
    session = Session(bpm=120)
    voice = session.add_voice("lead", transpose=2)
    heard = []

    def observe(pitch, step_s, dur_s, velocity):
        heard.append((pitch, step_s, dur_s, velocity))
        voice.observe(pitch, step_s, dur_s, velocity)

    midi = MidiIn(session.bus, "livernn-listen-in", NoteListener(observe))
    session.start()
    try:
        connect(jack, source, "livernn-listen-in")
        phrase = [62, 64, 66, 67]
        for pitch in phrase:
            out.send_message([0x90, pitch, 90])
            time.sleep(0.08)
            out.send_message([0x80, pitch, 0])
            time.sleep(0.02)
        assert wait_until(lambda: len(heard) == 4)
        assert [h[0] for h in heard] == phrase
        # steps ~0.1 s and lengths ~0.08 s as played (wide bounds: a loaded machine sleeps late)
        assert heard[0][1] == 0.0 and all(0.08 < h[1] < 0.6 for h in heard[1:])
        assert all(0.06 < h[2] < 0.5 for h in heard) and {h[3] for h in heard} == {90}
        assert all(h[2] < h_next[1] for h, h_next in itertools.pairwise(heard))  # each ended before the next began
        # the voice's model heard them: the same notes (model space: minus the transpose)
        # are in its history, with the durations we played, among the ones it generated
        played = [(p - 2, pytest.approx(d, abs=1e-6)) for p, _, d, _ in heard]
        assert wait_until(lambda: all(
            note in [(int(n["pitch"]), float(n["duration"])) for n in voice.recent_notes()] for note in played
        ))
    finally:
        midi.close()
        session.stop()


def test_a_held_note_does_not_hold_back_the_phrase_for_ever():
    heard = []
    listener = NoteListener(lambda *note: heard.append(note), max_hold=1.0)
    listener.note_on(60, 100, 0.0)  # held down
    listener.note_on(64, 100, 0.5)
    listener.note_off(64, 0.7)
    assert heard == []  # 60 began first and is still held
    listener.flush(1.2)
    assert [n[0] for n in heard] == [60, 64]
    assert heard[0][2] == pytest.approx(1.2) and heard[1][1] == pytest.approx(0.5)


def test_closed_midi_inputs_and_outputs_leave_no_jack_client_running(jack, controller):
    """python-rtmidi objects are never freed by ``del`` or the garbage collector, and their
    JACK clients stayed active, run by the server every period, for the rest of the process:
    every MIDI input closed (a reload that changes the patch's [midi] table, another
    ``listen_midi``) left two (the input's and its ping's), and the suite's closed probes
    and inputs left about 60 running through the soak test. Inputs and in-process outputs
    opened and closed leave the process's threads as they were (each active JACK client
    keeps two)."""
    import os

    from livernn.midi_system import list_ports
    from livernn.outputs import midi

    _, source = controller

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    list_ports(rtmidi.API_UNIX_JACK)  # this process's control client, kept by design, opens first
    before = threads()
    for i in range(3):
        midi_in = MidiIn(ControlBus(), source)
        assert threads() > before  # its client and its run check's
        midi_in.close()
        out = midi(f"lvleak{i}", process=False)  # a virtual port of its own
        out.close()
    assert wait_until(lambda: threads() == before), (before, threads())

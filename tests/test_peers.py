"""The test harness talks to each real peer: JACK MIDI, scsynth over OSC, FluidSynth audio."""

from __future__ import annotations

import socket
import time

import pytest
import rtmidi
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from peers import raw_rms, wait_for

pytestmark = pytest.mark.integration


def test_midi_message_crosses_jack(jack, midi_probe):
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="sender")
    out.open_virtual_port("out")
    try:
        jack.connect("sender:out", midi_probe.port)
        time.sleep(0.05)
        out.send_message([0x90, 60, 100])
        out.send_message([0x80, 60, 0])
        wait_for(lambda: len(midi_probe.messages()) >= 2, 5, "MIDI to arrive")
        assert midi_probe.messages() == [[0x90, 60, 100], [0x80, 60, 0]]
        assert midi_probe.note_balance() == {}
    finally:
        out.close_port()


def test_scsynth_answers_status(scsynth):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(OscMessageBuilder("/status").build().dgram, scsynth.address)
        reply = OscMessage(sock.recv(4096))
    assert reply.address == "/status.reply"
    assert reply.params[7] == pytest.approx(48000, rel=0.01)  # nominal sample rate from JACK


def test_fluidsynth_renders_midi_as_sound(jack, fluidsynth):
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="fsender")
    out.open_virtual_port("out")
    try:
        jack.connect("fsender:out", fluidsynth.midi_port)
        time.sleep(0.2)
        out.send_message([0x90, 64, 110])
        time.sleep(0.5)
        out.send_message([0x80, 64, 0])
        time.sleep(0.1)
    finally:
        out.close_port()
    raw = fluidsynth.stop()
    assert raw_rms(raw) > 0.001

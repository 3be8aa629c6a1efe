"""MIDI ports through a real JACK server: found by name, created, lost and found again."""

from __future__ import annotations

import time

import pytest

from livernn.errors import LivernnError
from livernn.outputs import midi
from livernn.outputs.midi import MidiOutput
from peers import ProcessMidiProbe, wait_for

pytestmark = pytest.mark.integration


def test_unknown_port_without_create_lists_the_ports(jack):
    probe = ProcessMidiProbe("listedprobe")
    try:
        with pytest.raises(LivernnError, match=r"no MIDI port matches 'nosuchsynth' \(JACK\); ports: .*listedprobe:in"):
            midi("nosuchsynth", create=False)
    finally:
        probe.close()


def test_a_new_virtual_port_others_can_connect_to(jack):
    out = midi("lvvirtual")  # through a sender process
    probe = ProcessMidiProbe("vprobe")
    try:
        assert out.describe() == "MIDI virtual port 'lvvirtual' via JACK (sender process)"
        jack.connect(jack.wait_port(":lvvirtual"), probe.port)
        time.sleep(0.1)
        out.note_on(3, 64, 99, time.monotonic())
        out.note_off(3, 64, time.monotonic())
        wait_for(lambda: len(probe.messages()) == 2, 5, "two messages")
        assert probe.messages() == [[0x92, 64, 99], [0x82, 64, 0]]
    finally:
        out.close()
        probe.close()


def test_a_port_that_disappears_is_reconnected_when_it_returns(jack):
    probe = ProcessMidiProbe("comeback")
    out = MidiOutput("comeback", create=False)  # the port class the sender process drives
    try:
        out.control(1, 7, 100, time.monotonic())
        wait_for(lambda: probe.messages() == [[0xB0, 7, 100]], 5, "the first message")
        probe.close()
        wait_for(lambda: not any("comeback:in" in p for p in jack.ports()), 5, "the port to go")
        out.maintain()
        assert not out.connected and "waiting" in out.describe()
        out.control(1, 7, 50, time.monotonic())  # into the void, without an error
        probe = ProcessMidiProbe("comeback")
        out.maintain()
        assert out.connected and out.reconnects == 1
        time.sleep(0.05)
        out.control(1, 7, 60, time.monotonic())
        wait_for(lambda: probe.messages() == [[0xB0, 7, 60]], 5, "messages after the reconnection")
        assert out.errors == 0
    finally:
        out.close()
        probe.close()


def test_the_sender_process_reconnects_too(jack):
    probe = ProcessMidiProbe("procback")
    out = midi("procback", create=False)
    try:
        probe.close()
        wait_for(lambda: not any("procback:in" in p for p in jack.ports()), 5, "the port to go")
        time.sleep(0.6)  # the sender process looks every 0.5 s
        probe = ProcessMidiProbe("procback")
        time.sleep(1.2)
        out.control(1, 7, 60, time.monotonic())
        wait_for(lambda: probe.messages() == [[0xB0, 7, 60]], 5, "messages after the reconnection")
    finally:
        out.close()
        probe.close()

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


def _until_reported(session, events: list, name: str, since: float, timeout: float = 3.0) -> tuple[float, str]:
    """Seconds from ``since`` until ``status()`` and an "error" event both say ``name`` is silent."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        why = session.status()["not_delivering"].get(name)
        said = [(t, m) for t, m in events if t >= since and f"output {name} is not delivering" in m]
        if why and said:
            return max(time.monotonic(), said[0][0]) - since, why
        time.sleep(0.01)
    raise AssertionError(f"{name} not reported as silent within {timeout} s: {session.status()['not_delivering']}")


def test_an_output_that_stops_delivering_is_reported_within_a_second(tmp_path):
    """Silence must not pass unnoticed: a JACK server that stops running our client, a sender
    process that stops, one that dies: each shows in status(), on the status line and as an
    "error" event within a second, and clears when delivery resumes."""
    import os
    import signal

    from livernn.engine import Session
    from livernn.repl.status import Toolbar
    from peers import start_jack, stop_process
    from test_soak import jack_env

    with jack_env():
        jack = start_jack(tmp_path, name=f"lvsil{os.getpid() % 100000}", period=256)
        probe = ProcessMidiProbe("silprobe")
        session = Session(bpm=480)
        events: list[tuple[float, str]] = []
        session.on("error", lambda message: events.append((time.monotonic(), message)))
        toolbar = Toolbar(session)
        try:
            out = session.add_output("x", midi("lvsilent"))
            jack.connect(jack.wait_port(":lvsilent"), probe.port)
            session.add_voice("lead", seed=3, density=4)
            session.start()
            wait_for(lambda: len(probe.messages()) >= 6, 20, "notes at the probe")
            time.sleep(0.5)
            assert session.status()["not_delivering"] == {} and "NOT DELIVERING" not in toolbar()

            # 1. The JACK server stops running clients (frozen): the sender lives and sends.
            jack.proc.send_signal(signal.SIGSTOP)
            took, why = _until_reported(session, events, "x", time.monotonic())
            jack.proc.send_signal(signal.SIGCONT)
            assert took < 1.0 and "did not come back through JACK" in why, (took, why)
            assert "NOT DELIVERING: x" in toolbar() or not session.status()["not_delivering"]
            wait_for(lambda: session.status()["not_delivering"] == {}, 3, "delivery to be seen again")
            assert "NOT DELIVERING" not in toolbar()

            # 2. The sender process is stopped.
            os.kill(out._proc.pid, signal.SIGSTOP)
            took, why = _until_reported(session, events, "x", time.monotonic())
            assert "NOT DELIVERING: x" in toolbar() and "NOT DELIVERING" in out.describe()
            os.kill(out._proc.pid, signal.SIGCONT)
            assert took < 1.0 and "has not answered" in why, (took, why)
            wait_for(lambda: session.status()["not_delivering"] == {}, 3, "the sender to answer again")

            # 3. The sender process dies.
            os.kill(out._proc.pid, signal.SIGKILL)
            took, why = _until_reported(session, events, "x", time.monotonic())
            assert took < 1.0 and ("exited" in why or "is gone" in why), (took, why)
            assert session.playing
        finally:
            toolbar.close()
            session.stop()
            probe.close()
            stop_process(jack.proc)

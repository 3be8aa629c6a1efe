"""MIDI ports through a real JACK server: found by name, created, lost and found again."""

from __future__ import annotations

import time

import pytest

from livernn.errors import LivernnError
from livernn.outputs import midi
from livernn.outputs.midi_port import MidiOutput
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
        wait_for(lambda: "procback:in is gone" in (out.problem or ""), 3, "the output to say it is not delivering")
        probe = ProcessMidiProbe("procback")
        wait_for(lambda: out.problem is None, 3, "the output to deliver again")
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
            assert out.reopens == 0  # a frozen server: a new client would not help
            assert "NOT DELIVERING: x" in toolbar() or not session.status()["not_delivering"]
            wait_for(lambda: session.status()["not_delivering"] == {}, 3, "delivery to be seen again")
            assert "NOT DELIVERING" not in toolbar()
            time.sleep(0.5)
            assert out.reopens == 0  # nor after the thaw: the client was run all along

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


class ClientWatch:
    """A JACK client that records every client (un)registration on the server, in order."""

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self.events: list[tuple[str, bool]] = []
        lib = ctypes.CDLL(ctypes.util.find_library("jack"))
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        callback = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p)
        lib.jack_set_client_registration_callback.argtypes = [ctypes.c_void_p, callback, ctypes.c_void_p]
        lib.jack_activate.argtypes = lib.jack_deactivate.argtypes = lib.jack_client_close.argtypes = [ctypes.c_void_p]
        self._cb = callback(lambda name, register, _arg: self.events.append((name.decode(), bool(register))))
        self._lib, self._client = lib, lib.jack_client_open(b"clientwatch", 1, None)
        assert self._client, "the watching client could not open"
        lib.jack_set_client_registration_callback(self._client, self._cb, None)
        lib.jack_activate(self._client)

    def close(self) -> None:
        self._lib.jack_deactivate(self._client)
        self._lib.jack_client_close(self._client)


def test_choosing_the_api_and_listing_ports_open_no_short_lived_jack_client(jack):
    """A JACK client opened and closed while the real one activates cost a notification to the
    real one: shows that looked fine and sent nothing (issue 12). Probing, listing ports and
    reading the period use one control client per process, opened once and never closed;
    a MIDI output through the sender process adds its own client and its delivery check."""
    import re
    import subprocess
    import sys

    def base(client: str) -> str:  # JACK names a second "livernn-ctl" "livernn-ctl-01"
        return re.sub(r"-\d\d$", "", client)

    probe = ProcessMidiProbe("listme")
    watch = ClientWatch()
    try:
        script = ("import rtmidi\nfrom livernn.midi_system import choose_api, list_ports, jack_period, working_apis\n"
                  "for _ in range(3):\n"
                  "    api = choose_api(); working_apis(); list_ports(api); list_ports(api, False); jack_period()\n"
                  "print('listme:in' in list_ports(rtmidi.API_UNIX_JACK), jack_period())\n")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["True", str(32 / 48000)]
        time.sleep(0.3)
        opened = [base(name) for name, registered in watch.events if registered]
        assert opened == ["livernn-ctl"], watch.events  # one, for the whole process
        watch.events.clear()
        out = midi("lvclients")
        try:
            time.sleep(0.5)
            assert sorted(base(n) for n, r in watch.events if r) == ["livernn", "livernn-check", "livernn-ctl"]
            assert [n for n, r in watch.events if not r] == [], watch.events  # none closed while it plays
        finally:
            out.close()
    finally:
        watch.close()
        probe.close()


def test_status_shows_the_sender_process_own_lateness(jack):
    """The deadline of a MIDI message is kept in the sender process, so that is where its
    lateness is measured and what status() reports beside the scheduler's hand-over figure."""
    from livernn.engine import Session
    from livernn.repl.status import format_status

    probe = ProcessMidiProbe("lateprobe")
    session = Session(bpm=480)
    try:
        session.add_output("x", midi(probe.client, create=False))
        session.add_voice("lead", seed=1, density=4)
        session.start()
        wait_for(lambda: session.status()["output_late_ms"].get("x", {}).get("n", 0) >= 10, 20,
                 "the sender's lateness figures")
        late = session.status()["output_late_ms"]["x"]
        assert 0 <= late["p50"] <= late["p99"] <= late["max"] < 1000
        assert "x sent late p50" in format_status(session.status())
    finally:
        session.stop()
        probe.close()


def test_a_port_name_that_is_part_of_another_gets_its_own_port(jack):
    """'lvexact' beside 'lvexact2' (a probe name the prefix of another's): the exact one, not
    whichever JACK lists first; part of both is one line naming them, and opens nothing."""
    probes = [ProcessMidiProbe("lvexact2"), ProcessMidiProbe("lvexact")]
    opened = []
    try:
        wait_for(lambda: {"lvexact:in", "lvexact2:in"} <= set(jack.ports()), 5, "both probes' ports")
        for name, port in [("lvexact", "lvexact:in"), ("lvexact2", "lvexact2:in"), ("LVEXACT", "lvexact:in")]:
            opened.append(midi(name, create=False))  # through the sender process
            assert opened[-1].describe() == f"MIDI -> {port} via JACK (sender process)"
            opened.append(MidiOutput(name, create=False))
            assert opened[-1].target == port
        opened[0].note_on(1, 60, 100, time.monotonic())
        wait_for(lambda: probes[1].messages() == [[0x90, 60, 100]], 5, "the note at lvexact")
        for make in (midi, MidiOutput):
            with pytest.raises(LivernnError, match=r"^MIDI port 'lvexac' matches 2 ports: 'lvexact.?:in', "
                                                   r"'lvexact.?:in'; give the whole name$"):
                make("lvexac")  # a virtual port 'lvexac' would not do either: the performer meant one
        assert not probes[0].messages()
    finally:
        for out in opened:
            out.close()
        for probe in probes:
            probe.close()

"""OSC outputs against real receivers: a UDP socket (generic, SuperDirt) and a real scsynth."""

from __future__ import annotations

import os
import socket
import statistics
import struct
import subprocess
import threading
import time

import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.engine import Session
from livernn.engine.clock import Clock
from livernn.errors import LivernnError
from livernn.outputs import from_spec, osc, scsynth, superdirt
from livernn.outputs.scsynth import ScsynthOutput
from livernn.outputs.synthdef import SHIPPED, note_synthdef
from peers import stop_process, wait_for

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class Receiver:
    """A UDP socket that keeps (arrival time, timetag, messages) of every bundle.

    Arrival is the kernel's receive timestamp (wall clock, converted to monotonic), so a
    busy test machine that is slow to run this thread does not make packets look late.
    """

    def __init__(self, bundles_only: bool = True) -> None:
        self.bundles_only = bundles_only
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.offset = time.time() - time.monotonic()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.bundles: list[tuple[float, int, list[OscMessage]]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, 64)
            except TimeoutError:
                continue
            arrived = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrived = seconds + nanoseconds * 1e-9 - self.offset
            if data.startswith(b"#bundle"):
                tag = struct.unpack(">Q", data[8:16])[0]
                self.bundles.append((arrived, tag, list(OscBundle(data))))
            elif not self.bundles_only:
                self.bundles.append((arrived, 1, [OscMessage(data)]))

    def messages(self, address: str) -> list[tuple[float, OscMessage]]:
        return [(arrived, m) for arrived, _, ms in list(self.bundles) for m in ms if m.address == address]

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_timetag_is_the_logical_time_mapped_once():
    clock = Clock()
    t = time.monotonic() + 1.234567
    assert clock.monotonic_of_timetag(clock.timetag(t)) == pytest.approx(t, abs=1e-6)
    seconds = (clock.timetag(t) >> 32) - 2208988800
    assert abs(seconds - (time.time() + 1.234567)) < 2


def test_generic_osc_note_template_in_timestamped_bundles(receiver, tmp_path):
    s = Session(bpm=240)
    s.add_output("max", osc("127.0.0.1", receiver.port, address="/synth/note",
                            args=("pitch", "velocity", "freq", "lead"), off_address="/synth/off",
                            off_args=("pitch",), latency=0.2))
    s.add_voice("lead", seed=3)
    s.record(tmp_path / "osc.mid")
    logical = []
    s.on("note", lambda voice, pitch, velocity, t_on, t_off: logical.append(t_on))
    s.start()
    try:
        wait_for(lambda: len(receiver.bundles) >= 10, 10, "bundles")
    finally:
        s.stop()
    ons = [(arr, tag, m) for arr, tag, ms in receiver.bundles for m in ms if m.address == "/synth/note"]
    assert ons and all(m.address in ("/synth/note", "/synth/off") for _, _, ms in receiver.bundles for m in ms)
    early = []
    for arrived, tag, m in ons:
        pitch, velocity, freq, literal = m.params
        assert 0 <= pitch <= 127 and 1 <= velocity <= 127 and literal == "lead"
        assert freq == pytest.approx(440 * 2 ** ((pitch - 69) / 12), rel=1e-5)
        t = s.clock.monotonic_of_timetag(tag)
        assert min(abs(t - x) for x in logical) < 1e-6  # the timetag is the note's logical time
        early.append(t - arrived)
    # Sent ahead by about the latency (0.2 s), so the peer can play each note on time
    # (a stall of the whole test machine can make a few late; none is ever sent too early).
    assert max(early) < 0.35 and statistics.median(early) > 0.05


def test_superdirt_events_carry_tidal_keys(receiver):
    s = Session(bpm=150)
    s.add_output("dirt", superdirt("127.0.0.1", receiver.port, sound="superpiano", orbit=2))
    s.add_voice("lead", seed=4)
    s.start()
    try:
        wait_for(lambda: len(receiver.bundles) >= 4, 10, "/dirt/play bundles")
    finally:
        s.stop()
    _, tag, messages = receiver.bundles[0]
    m = messages[0]
    assert m.address == "/dirt/play"
    event = dict(zip(m.params[::2], m.params[1::2]))
    assert event["s"] == "superpiano" and event["orbit"] == 2
    assert event["cps"] == pytest.approx(150 / 60 / 4)
    assert event["delta"] > 0 and event["legato"] == 1.0 and 0 < event["gain"] <= 1.2
    assert -60 <= event["n"] <= 67
    assert event["cycle"] == pytest.approx(s.clock.bar(s.clock.monotonic_of_timetag(tag)), abs=1e-3)


def test_output_specs_and_bad_values():
    with pytest.raises(LivernnError, match="OSC port"):
        from_spec("osc:127.0.0.1:99999")
    with pytest.raises(LivernnError, match="osc needs HOST:PORT"):
        from_spec("osc:127.0.0.1")
    with pytest.raises(LivernnError, match="unknown output"):
        from_spec("carrier-pigeon:home")
    with pytest.raises(LivernnError, match="orbit"):
        superdirt(orbit=99)
    with pytest.raises(LivernnError, match="latency"):
        osc("127.0.0.1", 9001, latency=-1)
    out = from_spec("superdirt:57121")
    assert out.address == ("127.0.0.1", 57121)
    out.close()


def test_shipped_synthdef_is_what_the_writer_makes():
    data = SHIPPED.read_bytes()
    assert data == note_synthdef()
    assert data[:4] == b"SCgf" and struct.unpack(">ih", data[4:10]) == (2, 1)


def query(scsynth_server, address: str, *args, reply: str, timeout: float = 3.0) -> OscMessage:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(_message(address, *args), scsynth_server.address)
        while True:
            message = OscMessage(sock.recv(65536))
            if message.address == reply:
                return message


@pytest.fixture
def sc_server(scsynth):
    """The session's scsynth (named apart from the ``scsynth`` output factory)."""
    return scsynth


@pytest.mark.integration
def test_scsynth_nodes_start_on_time_and_panic_frees_them(sc_server):
    watcher = Receiver(bundles_only=False)
    watcher.sock.sendto(_message("/notify", 1), sc_server.address)
    s = Session(bpm=300)
    out = s.add_output("sc", scsynth("127.0.0.1", sc_server.port, latency=0.2))
    v = s.add_voice("lead", seed=6)
    logical = []
    s.on("note", lambda voice, pitch, velocity, t_on, t_off: logical.append(t_on))
    s.start()
    try:
        defs = query(sc_server, "/status", reply="/status.reply").params[4]
        assert defs >= 1  # our SynthDef arrived with /d_recv
        wait_for(lambda: len(watcher.messages("/n_go")) >= 8, 10, "synth nodes to start")
        v.mute = True
        s.panic()
        # Each node releases (0.25 s) and frees itself: our group ends up empty.
        children = lambda: query(sc_server, "/g_queryTree", out.group, 0,  # noqa: E731
                                 reply="/g_queryTree.reply").params[2]
        wait_for(lambda: children() == 0, 5, "every node of our group to be freed")
        started = [(a, m) for a, m in watcher.messages("/n_go") if m.params[0] != out.group]
        ended = lambda: {m.params[0] for _, m in watcher.messages("/n_end")}  # noqa: E731
        wait_for(lambda: {m.params[0] for _, m in started} <= ended(), 5, "an /n_end for every /n_go")
    finally:
        s.stop()
        watcher.sock.sendto(_message("/notify", 0), sc_server.address)
        watcher.close()
    # Each node started at its note's logical time (scsynth plays a bundle at its timetag;
    # it rounds to its 64-sample control block, 1.3 ms at 48 kHz).
    errors = [min(abs(arrived - t) for t in logical) for arrived, _ in started]
    assert statistics.median(errors) < 0.004


def test_scsynth_that_does_not_answer_is_a_one_line_error():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(LivernnError, match=r"did not answer.*scsynth -u"):
            ScsynthOutput("127.0.0.1", silent.getsockname()[1], timeout=0.3)
    finally:
        silent.close()


def _message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address)
    for a in args:
        builder.add_arg(a)
    return builder.build().dgram


def test_scsynth_replies_are_taken_from_the_server_only(jack, tmp_path):
    """A server that is not 127.0.0.1 (here 127.0.0.2, a loopback address every Linux has):
    the reply socket is bound to the interface that reaches it, not 0.0.0.0, and a forged
    ``/fail`` for our group from another sender does not make it "restore" the server."""
    host = "127.0.0.2"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    log = tmp_path / "scsynth.log"
    env = {**os.environ, "JACK_DEFAULT_SERVER": jack.name, "SC_JACK_DEFAULT_OUTPUTS": ""}
    proc = subprocess.Popen(["scsynth", "-u", str(port), "-B", host, "-i", "0", "-o", "2", "-R", "0", "-z", "32"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        wait_for(lambda: "server ready" in log.read_text(), 20, "scsynth on 127.0.0.2 to start")
        out = ScsynthOutput(host, port)  # answered /d_recv and /sync: the server's replies arrive
        local = out.sock.getsockname()
        assert local[0] != "0.0.0.0" and local[0].startswith("127."), local
        assert out.sock.getpeername() == (host, port)
        forger.bind((local[0], 0))
        for _ in range(3):
            forger.sendto(_message("/fail", "/n_query", f"Node {out.group} not found"), local)
            time.sleep(0.05)
            out.maintain()
        time.sleep(0.2)
        out.maintain()
        assert out.restarts == 0
        out.close()
    finally:
        forger.close()
        stop_process(proc)

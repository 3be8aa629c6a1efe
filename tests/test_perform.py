"""Playing patches: OSC controls heard in the notes, a packet storm survived, live reload.

Everything here is real: the engine plays the shipped model, controls arrive from a
python-osc client over UDP, notes leave through an OSC output to a socket in the test.
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from pythonosc import osc_packet
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from livernn.engine import PARAM_SPECS, Session
from livernn.patch.show import Show
from test_osc_in import _random_packet

REPO = Path(__file__).resolve().parents[1]


class OscSink:
    """A UDP socket that records every OSC message it receives (notes, feedback)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.messages: list[tuple[float, str, list]] = []
        self._run = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while self._run:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            for timed in osc_packet.OscPacket(data).messages:
                self.messages.append((time.monotonic(), timed.message.address, list(timed.message.params)))

    def since(self, t: float, address: str) -> list[list]:
        return [args for at, addr, args in list(self.messages) if at >= t and addr == address]

    def wait_notes(self, t: float, n: int, timeout: float = 15.0) -> list[int]:
        """The pitches of the first ``n`` notes after ``t`` (fewer if ``timeout`` runs out).

        Counting notes rather than seconds keeps the tests honest on a loaded machine,
        where the engine plays the same notes, only later."""
        deadline = time.monotonic() + timeout
        while len(self.since(t, "/note")) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return [int(args[0]) for args in self.since(t, "/note")[:n]]

    async def notes(self, t: float, n: int, timeout: float = 15.0) -> list[int]:
        return await asyncio.to_thread(self.wait_notes, t, n, timeout)

    def close(self) -> None:
        self._run = False
        self._thread.join(2)
        self.sock.close()


def entropy(values: list[int]) -> float:
    counts = collections.Counter(values)
    n = len(values)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def patch_text(sink_port: int | str, extra: str = "", pitch_max: int = 127) -> str:
    return f"""\
version = 1

[clock]
bpm = 240

[outputs.probe]
type = "osc"
host = "127.0.0.1"
port = {sink_port}
address = "/note"
args = ["pitch", "velocity"]
latency = 0.05

[voices.lead]
outputs = ["probe"]
params = {{ density = 2.0, pitch_max = {pitch_max} }}

[osc]
port = 0
commands = true

[[mappings]]
source = "osc./1/fader1"
target = "lead.temperature"
out = [0.1, 4.0]

[[mappings]]
source = "osc./1/fader2"
target = "lead.pitch_min"
out = [30, 90]
{extra}"""


def run_show(tmp_path: Path, text: str, body) -> None:
    """Load a patch into a playing Session on a fresh event loop and run ``body(show, sink)``."""
    sink = OscSink()
    path = tmp_path / "show.toml"
    path.write_text(text.replace("SINK", str(sink.port)))

    async def main() -> None:
        session = Session(bpm=120)
        show = Show(session, path, report=lambda line: None)
        try:
            await show.load()
            session.start()
            await body(show, sink)
        finally:
            await show.close()
            session.stop()

    try:
        asyncio.run(main())
    finally:
        sink.close()


def test_an_osc_fader_moves_temperature_and_the_notes_show_it(tmp_path):
    async def body(show: Show, sink: OscSink) -> None:
        client = SimpleUDPClient("127.0.0.1", show.osc.port)
        variety = {}
        for fader in (0.0, 1.0):
            client.send_message("/1/fader1", fader)
            await asyncio.sleep(0.4)  # the lookahead's worth of notes sampled before the move
            # 120 notes, not 60: with the retrained shipped model (output priors keep rare pitches
            # rare even at 4.0) 60 notes gave a gap of 0.68-1.67 bits, 1 run in 13 under 0.8;
            # 120 notes gave 1.02-1.52 in 10 runs (an estimate from fewer notes is capped lower)
            pitches = await sink.notes(time.monotonic() + 0.1, 120)
            assert len(pitches) == 120, f"too few notes at fader {fader}: {len(pitches)}"
            variety[fader] = entropy(pitches)
        assert show.session.voices["lead"].temperature == 4.0
        assert variety[1.0] > variety[0.0] + 0.8, variety

    run_show(tmp_path, patch_text("SINK"), body)


def test_a_pitch_range_fader_moves_the_received_pitches_into_the_range(tmp_path):
    async def body(show: Show, sink: OscSink) -> None:
        client = SimpleUDPClient("127.0.0.1", show.osc.port)
        client.send_message("/1/fader2", 1.0)  # pitch_min 90
        await asyncio.sleep(0.4)
        pitches = await sink.notes(time.monotonic() + 0.1, 30)
        assert len(pitches) == 30
        assert min(pitches) >= 90, sorted(pitches)[:10]

    run_show(tmp_path, patch_text("SINK"), body)


def test_a_packet_storm_leaves_the_show_playing_and_every_parameter_in_range(tmp_path):
    async def body(show: Show, sink: OscSink) -> None:
        port = show.osc.port
        rng = random.Random(99)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        nasty = [math.nan, math.inf, -math.inf, 1e308, -1e308, -5.0, 1e9]

        def command(address: str, *args) -> bytes:
            msg = OscMessageBuilder(address)
            for arg in args:
                msg.add_arg(arg, "d" if isinstance(arg, float) else None)
            return msg.build().dgram

        packets = []
        for i in range(12_000):
            if i % 3 == 0:
                packets.append(_random_packet(rng))
            elif i % 3 == 1:
                packets.append(command(rng.choice(["/1/fader1", "/1/fader2"]), rng.choice(nasty)))
            else:
                packets.append(rng.choice([
                    command("/livernn/tempo", rng.choice(nasty)),
                    command("/livernn/param", "lead", rng.choice(list(PARAM_SPECS)), rng.choice(nasty)),
                    command("/livernn/param", "lead", "temperature"),
                    command("/livernn/swap", "lead", rng.choice(["../../etc/passwd", "/etc/passwd", "nope"])),
                    command("/livernn/scene", rng.choice([-1, 99, "nowhere", 1.5])),
                    command("/livernn/param", "ghost", "temperature", 1.0),
                ]))

        stats = show.osc.stats

        def storm() -> None:  # from another thread, as a misbehaving controller would
            for i, packet in enumerate(packets):
                while i - stats.packets > 256:  # stay within the socket buffer: every packet is read
                    time.sleep(0.0005)
                sock.sendto(packet, ("127.0.0.1", port))

        await asyncio.to_thread(storm)
        sock.close()
        await asyncio.sleep(0.5)
        assert stats.packets >= 11_500, stats
        session = show.session
        assert session.playing and 1 <= session.tempo <= 999
        voice = session.voices["lead"]
        for name, value in voice.params.as_dict().items():
            spec = PARAM_SPECS[name]
            if spec.kind in ("float", "int"):
                assert math.isfinite(value) and spec.min <= value <= spec.max, (name, value)
        # the server still answers: the storm's clamped /livernn/param values (muted, density
        # at its floor, ...) are put back by valid commands, and the show plays on
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/1/fader1", 0.5)
        for name, value in {"mute": 0, "density": 2.0, "velocity_scale": 1.0, "velocity_offset": 0,
                            "pitch_min": 0, "pitch_max": 127, "max_polyphony": 16, "max_length": 8.0,
                            "quantize": 0.0, "scale": "chromatic"}.items():
            client.send_message("/livernn/param", ["lead", name, value])
        await asyncio.sleep(0.2)
        assert voice.temperature == 0.1 + 0.5 * 3.9 and not voice.mute and voice.density == 2.0
        assert len(await sink.notes(time.monotonic(), 10)) == 10

    run_show(tmp_path, patch_text("SINK"), body)


def test_remote_commands_change_scene_tempo_and_params(tmp_path):
    extra = """
[scenes.calm]
tempo = 90
lead = { temperature = 0.3 }

[scenes.wild]
lead = { temperature = 3.0, transpose = 5 }
"""

    async def body(show: Show, sink: OscSink) -> None:
        client = SimpleUDPClient("127.0.0.1", show.osc.port)
        voice = show.session.voices["lead"]
        client.send_message("/livernn/scene", "calm")
        await asyncio.sleep(0.1)
        assert (voice.temperature, show.session.tempo, show.runtime.scene) == (0.3, 90, "calm")
        client.send_message("/livernn/scene", 1)
        client.send_message("/livernn/tempo", 150.0)
        client.send_message("/livernn/param", ["lead", "density", 1.5])
        await asyncio.sleep(0.1)
        assert (voice.temperature, voice.transpose, show.session.tempo, voice.density) == (3.0, 5, 150, 1.5)
        panics = []
        show.session.on("panic", lambda: panics.append(1))
        client.send_message("/livernn/panic", [])
        client.send_message("/livernn/mute", "lead")
        await asyncio.sleep(0.1)
        assert panics == [1] and voice.mute
        client.send_message("/livernn/swap", ["lead", "../models/bach"])
        await asyncio.sleep(0.1)
        assert show.runtime.errors >= 1  # refused: a path is not a model name

    run_show(tmp_path, patch_text("SINK") + extra, body)


def test_feedback_sends_parameter_changes_back_to_the_controller(tmp_path):
    async def body(show: Show, sink: OscSink) -> None:
        show.session.voices["lead"].set("temperature", 2.05)  # as the REPL would
        await asyncio.sleep(0.3)
        assert [2.05] in [[round(a, 4) for a in args] for args in sink.since(0, "/livernn/lead/temperature")]
        # the fader bound to it follows: (2.05 - 0.1) / 3.9 = 0.5
        assert any(abs(args[0] - 0.5) < 1e-3 for args in sink.since(0, "/1/fader1"))

    text = patch_text("SINK")
    text = text.replace("[osc]\nport = 0\n", "[osc]\nport = 0\nfeedback = { host = \"127.0.0.1\", port = SINK }\n")
    run_show(tmp_path, text, body)


def _wait_line(proc: subprocess.Popen, lines: list[str], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            if needle in line:
                return line
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no line with {needle!r} in {lines}")


def test_perform_reloads_on_save_and_keeps_the_last_good_patch_on_a_bad_edit(tmp_path):
    sink = OscSink()
    path = tmp_path / "live.toml"
    good = patch_text(sink.port, pitch_max=127)
    path.write_text(good)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "livernn.cli", "perform", str(path), "--duration", "60",
         "--record", str(tmp_path / "set.mid")],
        stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        _wait_line(proc, lines, "playing live", 30)
        time.sleep(1.0)
        path.write_text(good.replace('target = "lead.pitch_min"', 'target = "lead.pitch_minimum"'))
        bad = _wait_line(proc, lines, "kept the last good patch", 10)
        assert "live.toml:" in bad and "pitch_minimum" in bad
        assert len(sink.wait_notes(time.monotonic(), 10)) == 10, "the last good patch stopped playing"
        path.write_text(patch_text(sink.port, pitch_max=40))
        _wait_line(proc, lines, "reloaded", 10)
        after = sink.wait_notes(time.monotonic() + 0.5, 10)
        assert len(after) == 10 and max(after) <= 40, after
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        sink.close()
    assert proc.returncode == 0, lines
    assert (tmp_path / "set.mid").stat().st_size > 100


def test_a_reload_that_cannot_open_its_port_changes_nothing(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    taken = busy.getsockname()[1]

    async def body(show: Show, sink: OscSink) -> None:
        voice = show.session.voices["lead"]
        port = show.osc.port
        text = show.path.read_text()
        show.path.write_text(text.replace("[osc]\nport = 0", f"[osc]\nport = {taken}")
                             .replace("density = 2.0", "density = 3.0"))
        assert await show.reload() is False
        assert voice.density == 2.0 and show.osc.port == port
        SimpleUDPClient("127.0.0.1", port).send_message("/1/fader1", 1.0)
        await asyncio.sleep(0.1)
        assert voice.temperature == 4.0  # the old server still serves the old mappings
        show.path.write_text(text.replace("density = 2.0", "density = 3.0"))
        assert await show.reload() is True
        assert voice.density == 3.0

    try:
        run_show(tmp_path, patch_text("SINK"), body)
    finally:
        busy.close()


def test_a_plug_in_section_is_started_with_the_show_and_stopped_on_change(tmp_path):
    from livernn.patch.sections import SECTIONS, Section, register_section

    events = []

    def start(session, runtime, table):
        events.append(("start", dict(table)))
        runtime.bus.publish("hand.any.openness", 0.5)
        return lambda: events.append(("stop", dict(table)))

    previous = SECTIONS.get("gesture")
    register_section(Section("gesture", validate=lambda table: [], start=start))

    async def body(show: Show, sink: OscSink) -> None:
        assert events == [("start", {"source": 0})]
        assert show.session.bus.get("hand.any.openness") == 0.5
        show.path.write_text(show.path.read_text().replace("source = 0", "source = 1"))
        assert await show.reload()
        assert events[1:] == [("stop", {"source": 0}), ("start", {"source": 1})]

    try:
        run_show(tmp_path, patch_text("SINK") + "\n[gesture]\nsource = 0\n", body)
    finally:
        SECTIONS.pop("gesture")
        if previous is not None:
            SECTIONS["gesture"] = previous
    assert events[-1] == ("stop", {"source": 1})

"""Inputs open on demand: nothing listens unless a control source or the performer asks.

- a patch with no ``osc.*`` source and no ``[osc]`` table, and ``livernn play``, open no
  network socket at all (checked in the process's own file descriptors);
- at a bare prompt, ``patch("osc./1/fader1", ...)`` opens 127.0.0.1:9000, says so, and a
  real OSC client then moves the parameter; a MIDI CC from a JACK port moves one once
  ``listen_midi`` opened the input (before that, ``patch`` says how to open one);
- remote commands (``/livernn/panic`` ...) are refused by an input opened that way, and
  obeyed only where asked for (``listen_osc(commands=True)``, ``[osc] commands = true``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rtmidi
from pythonosc.udp_client import SimpleUDPClient

from livernn import api
from livernn.api import DEFAULT_OSC
from livernn.engine import Session
from livernn.midi_system import free_client
from livernn.patch import Show
from peers import wait_for
from test_repl_engine import play, wait_until

REPO = Path(__file__).resolve().parents[1]


def inet_sockets(pid: int | str = "self") -> list[tuple[str, str]]:
    """(table, local address) of every UDP/TCP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("udp", "udp6", "tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.append((table, fields[1]))
    return found


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@pytest.fixture
def sink():
    """A UDP socket standing in for the synth the voice plays to (an OSC output)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def default_port_free():
    if not port_is_free(*DEFAULT_OSC):
        pytest.fail(f"something else holds {DEFAULT_OSC[0]}:{DEFAULT_OSC[1]}; this test needs the default OSC port")


# -- nothing open by default ---------------------------------------------------------------

NO_OSC_PATCH = """
version = 1
[outputs.rec]
type = "file"
path = "set.mid"
[voices.lead]
params = { density = 2.0 }
[[automation]]
name = "sweep"
target = "lead.temperature"
hz = 0.5
lo = 0.5
hi = 1.5
"""


def test_a_patch_without_osc_sources_opens_no_socket(tmp_path):
    path = tmp_path / "quiet.toml"
    path.write_text(NO_OSC_PATCH)
    before = inet_sockets()

    async def main() -> list:
        session = Session()
        show = Show(session, path)
        try:
            await show.load()
            session.start()
            await asyncio.sleep(0.5)
            return inet_sockets()
        finally:
            await show.close()
            session.stop()

    during = asyncio.run(main())
    # New sockets only: one an earlier test left for the garbage collector may close meanwhile.
    assert not set(during) - set(before), f"the show opened sockets: {set(during) - set(before)}"


def test_a_patch_with_an_osc_source_opens_the_default_input_without_commands(tmp_path):
    path = tmp_path / "fader.toml"
    path.write_text(NO_OSC_PATCH + '[[mappings]]\nsource = "osc./1/fader1"\ntarget = "lead.top_p"\n')

    async def main() -> None:
        session = Session()
        show = Show(session, path)
        try:
            await show.load()
            assert (show.osc.bind, show.osc.port, show.osc.commands) == ("127.0.0.1", 9000, False)
            assert any(t == "udp" and addr.endswith(":2328") for t, addr in inet_sockets())  # 9000 = 0x2328
        finally:
            await show.close()
            session.stop()

    if not port_is_free(*DEFAULT_OSC):
        pytest.fail("something else holds 127.0.0.1:9000")
    asyncio.run(main())


def test_livernn_play_opens_no_socket(tmp_path):
    record = tmp_path / "set.mid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "livernn.cli", "play", "--duration", "6", "--record", str(record), "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(4)  # imported, model loaded, playing
        assert proc.poll() is None, proc.communicate()
        assert inet_sockets(proc.pid) == []
    finally:
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert record.stat().st_size > 0


# -- from a bare prompt --------------------------------------------------------------------

def test_an_osc_fader_moves_a_parameter_from_a_bare_prompt(default_port_free, sink, monkeypatch, tmp_path, capsys):
    async def script(me, session) -> None:
        await me.type(f"lead = voice('lead', out=osc('127.0.0.1', {sink}))")
        await me.type("patch('osc./1/fader1', 'lead.temperature', out=(0.5, 1.5))")
        client = SimpleUDPClient(*DEFAULT_OSC)  # a real OSC client, as TouchOSC would be
        lead = session.voices["lead"]
        client.send_message("/1/fader1", 1.0)
        await wait_until(lambda: lead.temperature == pytest.approx(1.5), 5, "the fader to move temperature")
        client.send_message("/1/fader1", 0.0)
        await wait_until(lambda: lead.temperature == pytest.approx(0.5), 5, "the fader to move it back")
        await me.type("status()")

    play(monkeypatch, tmp_path, script)
    out = capsys.readouterr().out
    assert "listening for OSC on 127.0.0.1:9000 (remote commands off)" in out
    assert [line for line in out.splitlines() if "listening for OSC" in line] == [
        "listening for OSC on 127.0.0.1:9000 (remote commands off); listen_osc(port, host, allow=...) to choose"
    ]
    status = out[out.index("input "):]
    assert "osc    127.0.0.1:9000  off       prompt" in status
    assert port_is_free(*DEFAULT_OSC)  # leaving the prompt closed it


def test_a_midi_cc_moves_a_parameter_from_a_bare_prompt(jack, sink, monkeypatch, tmp_path, capsys):
    name = f"ctl{os.getpid() % 10000}{time.monotonic_ns() % 1000}"
    controller = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    controller.open_virtual_port("out")
    listen_as = f"in{name}"

    async def script(me, session) -> None:
        await me.type(f"lead = voice('lead', out=osc('127.0.0.1', {sink}))")
        await me.type("patch('midi.cc.1.74', 'lead.top_p', out=(0.5, 1.0))")
        await me.type(f"listen_midi({listen_as!r})")
        port = await asyncio.to_thread(jack.wait_port, listen_as)
        await asyncio.to_thread(jack.connect, f"{name}:out", port)
        lead = session.voices["lead"]
        controller.send_message([0xB0, 74, 0])
        await wait_until(lambda: lead.top_p == pytest.approx(0.5), 5, "CC 74 to move top_p")
        controller.send_message([0xB0, 74, 127])
        await wait_until(lambda: lead.top_p == pytest.approx(1.0), 5, "CC 74 to move it back")
        await me.type("status()")

    try:
        play(monkeypatch, tmp_path, script)
    finally:
        free_client(controller)
        controller.delete()  # the JACK client goes now, not whenever the closure is collected
    out = capsys.readouterr().out
    hint = next(line for line in out.splitlines() if "no MIDI input is open" in line)
    assert hint.startswith("midi.cc.1.74: no MIDI input is open; listen_midi('name') opens one (inputs: ")
    assert f"{name}:out" in hint  # the controller's port is among the names offered
    assert f"midi   {listen_as}" in out[out.index("input "):]


# -- remote commands: off unless asked --------------------------------------------------------

def test_remote_commands_are_refused_by_the_default_input_and_obeyed_where_asked(default_port_free, sink):
    session = api.session()
    panics: list[float] = []
    session.on("panic", lambda *_: panics.append(time.monotonic()))
    try:
        lead = api.voice("lead", out=api.osc("127.0.0.1", sink))
        api.patch("osc./1/fader1", "lead.temperature", out=(0.5, 1.5))
        default = api.status()["inputs"]
        assert default == [{"input": "osc", "where": "127.0.0.1:9000", "commands": "off", "opened by": "prompt"}]
        opened = api.listen_osc()  # the same settings: the same input
        client = SimpleUDPClient(*DEFAULT_OSC)
        client.send_message("/livernn/panic", [])
        client.send_message("/livernn/tempo", 60.0)
        client.send_message("/1/fader1", 1.0)  # sent after the commands: once it lands, they have too
        wait_for(lambda: lead.temperature == pytest.approx(1.5), 5, "the fader")
        assert panics == [] and api.tempo() == 120.0
        assert opened.stats.refused_command == 2

        commanded = api.listen_osc(0, commands=True)
        assert commanded.commands and commanded.port not in (0, 9000)
        SimpleUDPClient("127.0.0.1", commanded.port).send_message("/livernn/panic", [])
        wait_for(lambda: len(panics) == 1, 5, "the panic command")
        assert {(i["where"], i["commands"]) for i in api.status()["inputs"]} == {
            ("127.0.0.1:9000", "off"), (f"127.0.0.1:{commanded.port}", "on")}
    finally:
        api.close()
    assert port_is_free(*DEFAULT_OSC)


def test_a_patch_asks_for_remote_commands_with_commands_true(tmp_path):
    async def run(commands: bool) -> int:
        path = tmp_path / f"show{commands}.toml"
        path.write_text(NO_OSC_PATCH + f"[osc]\nport = 0\ncommands = {str(commands).lower()}\n")
        session = Session()
        show = Show(session, path)
        panics: list[int] = []
        session.on("panic", lambda *_: panics.append(1))
        try:
            await show.load()
            client = SimpleUDPClient("127.0.0.1", show.osc.port)
            client.send_message("/livernn/panic", [])
            client.send_message("/1/fader9", 1.0)
            deadline = time.monotonic() + 5
            while session.bus.get("osc./1/fader9") is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert session.bus.get("osc./1/fader9") == 1.0
            await asyncio.sleep(0.1)
            assert show.osc.stats.refused_command == (0 if commands else 1)
            return len(panics)
        finally:
            await show.close()
            session.stop()

    assert asyncio.run(run(False)) == 0
    assert asyncio.run(run(True)) == 1


def test_a_misspelt_command_names_the_nearest(caplog):
    from livernn.controls.bus import ControlBus
    from livernn.controls.osc_in import OscIn
    from livernn.controls.remote import install_commands
    from livernn.controls.runtime import ControlRuntime

    session = Session()
    osc = OscIn(ControlBus(), port=0)
    install_commands(osc, ControlRuntime(session), True)
    host, port = osc.start_thread()
    try:
        SimpleUDPClient(host, port).send_message("/livernn/tmepo", 90.0)
        line = "no command '/livernn/tmepo'; did you mean '/livernn/tempo'?"
        wait_for(lambda: line in caplog.text, 5, "the misspelt command to be refused")
        assert osc.stats.bad_value == 1
        assert session.tempo == 120.0
    finally:
        osc.close()


def test_at_a_prompt_over_a_patch_the_patchs_input_serves_new_sources(tmp_path, capsys):
    """``livernn repl PATCH``: the show's OSC input counts as open; nothing second is opened."""
    path = tmp_path / "show.toml"
    path.write_text(NO_OSC_PATCH + "[osc]\nport = 0\n")

    async def main() -> None:
        session = Session()
        show = Show(session, path)
        try:
            await show.load()
            session.start()
            api.use(session, show.runtime, show)
            before = inet_sockets()
            api.patch("osc./2/fader3", "lead.top_p", out=(0.5, 1.0))
            assert inet_sockets() == before
            assert api.status()["inputs"] == [
                {"input": "osc", "where": f"127.0.0.1:{show.osc.port}", "commands": "off", "opened by": "patch"}]
            # an OSC address pattern reaches the new source only if the input watches it
            SimpleUDPClient("127.0.0.1", show.osc.port).send_message("/2/fader[1-4]", 0.0)
            deadline = time.monotonic() + 5
            while session.voices["lead"].top_p != pytest.approx(0.5) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert session.voices["lead"].top_p == pytest.approx(0.5)
        finally:
            api.use(None)
            await show.close()
            session.stop()

    asyncio.run(main())
    assert "listening for OSC" not in capsys.readouterr().out

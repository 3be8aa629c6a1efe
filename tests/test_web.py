"""livernn.web without a browser: the surface (moves through the action table and the bus,
changes seen from any source), the page's HTTP and websocket guards, OSCQuery's namespace,
writes and LISTEN, the [web]/[oscquery] patch tables and `perform --web --oscquery`.

Real servers on free loopback ports, real aiohttp and OSC clients, a real Session with the
shipped model (not started: nothing here needs a note played, except where it says)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import redirect_stderr
from pathlib import Path

import aiohttp
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from livernn.controls.runtime import ControlRuntime, Scene
from livernn.engine import PARAM_SPECS, Session
from livernn.engine.learn import MIN_NOTES
from livernn.errors import LivernnError
from livernn.patch.schema import PatchError, load_patch
from livernn.web.guard import Bucket, host_ok, origin_ok, parse_listen, token_ok
from livernn.web.oscquery import ATTRIBUTES, OscQuery, find, namespace
from livernn.web.page import WebPage
from livernn.web.section import check_oscquery, check_web
from livernn.web.serve import qr_text
from livernn.web.surface import Surface
from peers import wait_for

OSC_TYPES = set("ifsTFN")


@pytest.fixture
def show():
    """A session with two voices and a runtime with two scenes (nothing playing)."""
    s = Session(bpm=120.0)
    s.add_voice("lead", seed=1)
    s.add_voice("low", seed=2)
    runtime = ControlRuntime(s)
    runtime.scenes = {"calm": Scene("calm", params={"lead": {"temperature": 0.5}}, tempo=90.0),
                      "loud": Scene("loud", params={"lead": {"velocity_scale": 2.0}, "low": {"density": 2.0}})}
    yield s, runtime
    runtime.close()
    s.stop()


def models() -> list[str]:
    return ["bach", "folk"]


# -- the surface ----------------------------------------------------------------------------------

def test_a_page_move_takes_the_action_tables_road_and_is_published(show):
    s, runtime = show
    surface = Surface(s, runtime, "web", models)
    heard = []
    s.bus.subscribe("web.*", lambda name, value, t: heard.append((name, value)))
    assert surface.write("lead", "temperature", 1.5) == 1.5
    assert s.voices["lead"].params.temperature == 1.5
    assert surface.write("lead", "temperature", 99) == PARAM_SPECS["temperature"].max  # clamped, like any control
    assert surface.write("low", "scale", "minor") == "minor"
    assert heard == [("web.lead.temperature", 1.5), ("web.lead.temperature", 99.0), ("web.low.scale", "minor")]
    for bad in (("leed", "temperature", 1.0), ("lead", "temprature", 1.0), ("lead", "scale", "lydian-ish"),
                ("lead", "temperature", [1]), ("lead", "temperature", float("nan")), ("*", "temperature", 1.0)):
        with pytest.raises(LivernnError):
            surface.write(*bad)
    assert s.voices["lead"].params.temperature == PARAM_SPECS["temperature"].max


def test_actions_from_a_surface_run_the_table_and_tell_the_runtime(show):
    s, runtime = show
    surface = Surface(s, runtime, "web", models)
    told = []
    runtime.on_action.append(lambda action, args: told.append(action))
    panics = []
    s.on("panic", lambda: panics.append(1))
    surface.act("scene", {"scene": "loud"})
    assert runtime.scene == "loud" and s.voices["low"].params.density == 2.0
    surface.act("tempo", {"bpm": 133})
    assert s.tempo == 133
    surface.act("panic")
    assert panics == [1]
    surface.act("mute", {"voice": "*"})
    assert all(v.params.mute for v in s.voices.values())
    surface.act("unmute", {"voice": "low"})
    assert not s.voices["low"].params.mute and s.voices["lead"].params.mute
    assert told == ["scene", "tempo", "panic", "mute", "unmute"]
    for name, args in (("eval", {"code": "1"}), ("scene", {"scene": "nope"}), ("tempo", {"bpm": 0}),
                       ("tempo", {"bpm": "fast"}), ("swap", {"voice": "lead", "model": "/etc/passwd"}),
                       ("swap", {"voice": "lead", "model": "../models/folk"}), ("mute", {"voice": "x"}),
                       ("scene", {"scene": "calm", "extra": 1}), ("param", {"voice": "lead"})):
        with pytest.raises(LivernnError):
            surface.act(name, args)
    assert len(told) == 5


def test_solo_plays_one_voice_and_solo_again_gives_the_mutes_back(show):
    s, runtime = show
    surface = Surface(s, runtime, "web", models)
    s.voices["low"].set("mute", True)
    s.add_voice("pad", seed=3)
    surface.act("solo", {"voice": "lead"})
    assert [n for n, v in s.voices.items() if not v.params.mute] == ["lead"]
    surface.act("solo", {"voice": "lead"})
    assert {n: v.params.mute for n, v in s.voices.items()} == {"lead": False, "low": True, "pad": False}


def test_changes_sees_moves_from_any_thread_tempo_scene_and_new_voices(show):
    s, runtime = show
    surface = Surface(s, runtime, "web", models)
    first = surface.changes()
    assert [e["type"] for e in first] == ["show"] and set(first[0]["voices"]) == {"lead", "low"}
    assert surface.changes() == []
    writer = threading.Thread(target=lambda: s.voices["low"].set("density", 3.0))  # as OSC, MIDI or a gesture would
    writer.start()
    writer.join()
    s.voices["lead"].temperature = 0.7  # as the REPL would
    s.set_tempo(150)
    runtime.apply_scene("calm")  # tempo 90, lead temperature 0.5
    events = {e["type"]: e for e in surface.changes()}
    assert sorted(map(tuple, events["params"]["changes"])) == [("lead", "temperature", 0.5), ("low", "density", 3.0)]
    assert events["tempo"]["bpm"] == 90.0 and events["scene"]["name"] == "calm"
    s.add_voice("pad", seed=3)
    assert [e["type"] for e in surface.changes()] == ["show"]


def test_notes_and_status_come_from_the_playing_session(show):
    s, runtime = show
    surface = Surface(s, runtime, "web", models)
    s.start()
    wait_for(lambda: len(surface._notes) >= 4, 10, "notes from the voices")
    notes = surface.take_notes()
    assert {n[0] for n in notes} <= {"lead", "low"} and all(0 <= n[1] <= 127 and n[4] > 0 for n in notes)
    assert surface.recent_notes()[-len(notes):] == [[*n[:3], pytest.approx(n[3], abs=0.5), n[4]] for n in notes]
    status = surface.status()
    assert status["notes_per_s"] > 0 and status["clock"] == {"source": "internal", "peers": None}
    assert status["late"] >= 0 and status["open_notes"] >= 0



def test_learn_jobs_show_running_then_how_they_ended_each_voices_latest(show, tmp_path, monkeypatch):
    """``learn(v)`` on the page: a running fine-tune (the strip says "learning lead 12 s"),
    then its end in one line: cancelled, then failed (the models folder is a file, so the
    tuned model has nowhere to go); a voice's newer job replaces its older line. The page's
    ``/state`` carries what the websocket's status does."""
    s, runtime = show
    monkeypatch.setenv("LIVERNN_MODELS", str(tmp_path / "models"))
    lead, lines = s.voices["lead"], []
    lead.update(density=8.0)
    s.set_tempo(480)
    surface = Surface(s, runtime, "web", models)
    s.start()
    wait_for(lambda: len(lead.played(32)) >= MIN_NOTES, 20, "notes to learn from")
    assert surface.status()["learning"] == []

    job = s.learn(lead, seconds=60, report=lines.append)
    (running,) = surface.status()["learning"]
    assert running["running"] and running["message"] is None and running["state"] in ("starting", "training")
    assert (running["voice"], running["model"], running["budget"]) == ("lead", "bach-learn-1", 60.0)
    assert job.cancel()
    (cancelled,) = surface.status()["learning"]
    assert cancelled == {**running, "state": "cancelled", "seconds": cancelled["seconds"], "step": 0,
                         "message": "learn lead cancelled, bach plays on", "running": False}

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("LIVERNN_MODELS", str(blocked))
    assert s.learn("lead", seconds=30, report=lines.append).wait(20) == "failed"
    (failed,) = surface.status()["learning"]  # the cancelled line is history now
    assert failed["state"] == "failed" and not failed["running"] and failed["budget"] == 30.0
    assert failed["message"].startswith("learn lead failed, bach plays on: ") and "not-a-folder" in failed["message"]
    assert lines == [cancelled["message"], failed["message"]]

    page = WebPage(s, runtime, "127.0.0.1", 0, token="sesame", model_names=models).start()
    try:
        status, body = _get(f"http://127.0.0.1:{page.port}/state?token=sesame")
        assert status == 200 and json.loads(body)["status"]["learning"] == [failed]
    finally:
        page.close()

# -- the guards ---------------------------------------------------------------------------------------

def test_listen_addresses_tokens_hosts_and_origins():
    assert parse_listen(8080, "web") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:9", "web") == ("0.0.0.0", 9)
    assert parse_listen("[::1]:9", "web") == ("::1", 9)
    for bad in ("web", "1.2.3.4:99999", "example.com:80", ":"):
        with pytest.raises(LivernnError, match="web"):
            parse_listen(bad, "web")
    assert token_ok(None, None) and token_ok("abc", "abc")
    assert not token_ok(None, "abc") and not token_ok("abd", "abc") and not token_ok("", "abc")
    assert host_ok("127.0.0.1:8080") and host_ok("localhost:8080") and host_ok("[::1]:80") and host_ok("192.168.1.2:80")
    assert not host_ok("evil.example:8080") and not host_ok(None) and not host_ok("")
    assert origin_ok(None, "127.0.0.1:8080") and origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not origin_ok("http://evil.example", "127.0.0.1:8080") and not origin_ok("null", "127.0.0.1:8080")
    bucket = Bucket(rate=10.0, burst=5.0)
    assert sum(bucket.take() for _ in range(50)) == 5 and bucket.dropped == 45


def test_a_page_beyond_loopback_gets_a_random_token_and_a_qr_code(show):
    s, runtime = show
    a, b = WebPage(s, runtime, "0.0.0.0", 8080), WebPage(s, runtime, "0.0.0.0", 8080)
    assert a.token and b.token and a.token != b.token and len(a.token) >= 20
    assert WebPage(s, runtime, "127.0.0.1", 8080).token is None
    assert a.url.endswith(f":8080/?token={a.token}")
    art = qr_text(a.url).splitlines()
    assert len(art) > 10 and len({len(line) for line in art}) == 1 and "█" in "".join(art)
    for page in (a, b):
        page.surface.close()


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def page(show):
    s, runtime = show
    served = WebPage(s, runtime, "127.0.0.1", 0, token="sesame", model_names=models).start()
    yield served
    served.close()


def test_every_request_needs_the_token(page):
    base = f"http://127.0.0.1:{page.port}"
    for path in ("/", "/livernn.js", "/state", "/ws"):
        assert _get(base + path)[0] == 403
        assert _get(base + path + "?token=sesamf")[0] == 403
    status, body = _get(base + "/?token=sesame")
    assert status == 200 and b'src="livernn.js?token=sesame"' in body
    status, body = _get(base + "/state?token=sesame")
    assert status == 200 and set(json.loads(body)["show"]["voices"]) == {"lead", "low"}
    assert page.stats.refused == 8


def test_on_loopback_a_foreign_host_or_origin_is_refused(show):
    s, runtime = show
    page = WebPage(s, runtime, "127.0.0.1", 0, model_names=models).start()
    try:
        base = f"http://127.0.0.1:{page.port}"
        assert _get(base + "/")[0] == 200
        assert _get(base + "/", {"Host": f"rebound.example:{page.port}"})[0] == 403  # DNS rebinding

        async def connect(origin: str | None) -> bool:
            headers = {"Origin": origin} if origin else {}
            async with aiohttp.ClientSession() as client:
                try:
                    async with client.ws_connect(base + "/ws", headers=headers) as ws:
                        return (await ws.receive_json(timeout=5))["type"] == "show"
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status != 403 and False

        assert asyncio.run(connect(None)) and asyncio.run(connect(base))
        assert not asyncio.run(connect("http://evil.example"))
    finally:
        page.close()


async def _socket_session(url: str, send: list, until, timeout: float = 5.0) -> list[dict]:
    """Open the page's websocket, send ``send``, collect messages until ``until(received)``."""
    received: list[dict] = []
    async with aiohttp.ClientSession() as client, client.ws_connect(url) as ws:
        for message in send:
            await (ws.send_str(message) if isinstance(message, str) else ws.send_json(message))
        deadline = time.monotonic() + timeout
        while not until(received) and time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                received.append({"type": "closed"})
                break
            received.append(json.loads(message.data))
    return received


def test_the_websocket_moves_the_show_and_tells_every_page(page, show):
    s, _ = show
    url = f"http://127.0.0.1:{page.port}/ws?token=sesame"
    got = asyncio.run(_socket_session(url, [
        {"op": "set", "voice": "lead", "param": "top_p", "value": 0.42},
        {"op": "action", "action": "scene", "args": {"scene": "loud"}},
        {"op": "eval", "code": "__import__('os').system('true')"},
        "not json", "[1, 2]",
        {"op": "set", "voice": "lead", "param": "temperature", "value": "hot"},
    ], lambda r: sum(m["type"] == "error" for m in r) >= 4 and any(m["type"] == "scene" for m in r)))
    assert s.voices["lead"].params.top_p == pytest.approx(0.42)
    assert s.voices["lead"].params.velocity_scale == 2.0
    kinds = [m["type"] for m in got]
    assert kinds[:3] == ["show", "status", "notes"]
    errors = [m["message"] for m in got if m["type"] == "error"]
    assert any("unknown op 'eval'" in e for e in errors) and any("temperature must be a number" in e for e in errors)
    moved = [c for m in got if m["type"] == "params" for c in m["changes"]]
    assert ["lead", "top_p", pytest.approx(0.42)] in moved and ["low", "density", 2.0] in moved
    assert page.stats.moves == 1 and page.stats.actions == 1 and page.stats.bad == 4


def test_a_page_sending_too_fast_is_held_to_its_rate(page, show):
    url = f"http://127.0.0.1:{page.port}/ws?token=sesame"
    burst = [{"op": "set", "voice": "lead", "param": "transpose", "value": i % 24} for i in range(2000)]
    asyncio.run(_socket_session(url, burst, lambda r: False, timeout=1.0))
    assert page.stats.limited > 1000 and page.stats.moves < 600
    big = json.dumps({"op": "set", "voice": "lead", "param": "scale", "value": "x" * 5000})
    got = asyncio.run(_socket_session(url, [big], lambda r: r and r[-1]["type"] == "closed"))
    assert got[-1]["type"] == "closed"  # over MAX_MESSAGE: the socket is closed


# -- OSCQuery -----------------------------------------------------------------------------------------

def _check_node(path: str, node: dict) -> None:
    """What TouchOSC and Open Stage Control read of a node (the OSCQuery proposal's fields)."""
    assert node["FULL_PATH"] == (path or "/")
    assert node.get("ACCESS") in (0, 1, 2, 3)
    if "CONTENTS" in node:
        assert "TYPE" not in node
        for name, child in node["CONTENTS"].items():
            _check_node(f"{path}/{name}", child)
        return
    types = node["TYPE"]
    assert set(types) <= OSC_TYPES and isinstance(node["DESCRIPTION"], str)
    if node["ACCESS"] & 1:
        assert len(node["VALUE"]) == len(types)
    if set(types) & set("ifs"):  # numbers and names say their range (a bool or a bang needs none)
        assert len(node["RANGE"]) == len(types)
    for kind, spec, value in zip(types, node.get("RANGE", []), node.get("VALUE", [None] * len(types)), strict=False):
        if "VALS" in spec:
            assert kind == "s" and (value is None or value in spec["VALS"] or value == "")
        elif kind in "if":
            assert spec["MIN"] <= value <= spec["MAX"] if value is not None else True
            assert node["CLIPMODE"] in ("none", "low", "high", "both")


def test_the_namespace_lists_every_parameter_and_action_with_type_range_value_access(show):
    s, runtime = show
    surface = Surface(s, runtime, "oscquery", models)
    tree = namespace(surface.describe())
    _check_node("", tree)
    lead = tree["CONTENTS"]["lead"]["CONTENTS"]
    assert set(lead) == set(PARAM_SPECS) | {"model"}
    assert lead["temperature"]["TYPE"] == "f" and lead["transpose"]["TYPE"] == "i"
    assert lead["mute"] == {**lead["mute"], "TYPE": "T", "VALUE": [False]}
    assert lead["scale"]["RANGE"] == [{"VALS": list(PARAM_SPECS["scale"].choices)}]
    assert lead["model"]["RANGE"] == [{"VALS": ["bach", "folk"]}]
    show_node = tree["CONTENTS"]["livernn"]["CONTENTS"]
    assert show_node["tempo"]["VALUE"] == [120.0] and show_node["scene"]["RANGE"] == [{"VALS": ["calm", "loud"]}]
    assert show_node["panic"]["ACCESS"] == 2 and show_node["swap"]["TYPE"] == "ss"
    assert find(tree, "/lead/temperature/") is lead["temperature"] and find(tree, "/lead/nothing") is None
    surface.close()
    kept, opened = OscQuery(s, runtime, "127.0.0.1", 0), OscQuery(s, runtime, "0.0.0.0", 0)
    assert not kept.announce and opened.announce  # zeroconf only beyond loopback (test_oscquery_network)
    for server in (kept, opened):
        server.surface.close()


@pytest.fixture
def oscquery(show):
    s, runtime = show
    server = OscQuery(s, runtime, "127.0.0.1", 0, model_names=models).start()
    yield server
    server.close()


def test_oscquery_over_http_root_attributes_and_host_info(oscquery):
    base = oscquery.url.rstrip("/")
    status, body = _get(base + "/")
    assert status == 200
    _check_node("", json.loads(body))
    info = json.loads(_get(base + "/?HOST_INFO")[1])
    assert info["OSC_PORT"] == oscquery.osc_port == oscquery.port and info["OSC_TRANSPORT"] == "UDP"
    assert info["OSC_IP"] == "127.0.0.1" and info["EXTENSIONS"]["LISTEN"] and info["EXTENSIONS"]["VALUE"]
    for attribute in ATTRIBUTES:
        status, body = _get(base + f"/lead/temperature?{attribute}")
        assert status in (200, 204), attribute
    assert json.loads(_get(base + "/lead/temperature?RANGE")[1]) == {"RANGE": [{"MIN": 0.05, "MAX": 5.0}]}
    assert _get(base + "/lead/temperature?CONTENTS")[0] == 204
    assert _get(base + "/lead/nothing")[0] == 404 and _get(base + "/lead/temperature?SHAPE")[0] == 400
    assert _get(base + "/", {"Host": "rebound.example"})[0] == 403


def test_a_value_written_over_osc_reads_back_and_reaches_a_listen_websocket(oscquery, show):
    s, runtime = show
    client = SimpleUDPClient("127.0.0.1", oscquery.osc_port)
    base = oscquery.url.rstrip("/")

    async def listen() -> list[OscMessage]:
        got: list[OscMessage] = []
        async with aiohttp.ClientSession() as http, http.ws_connect(base + "/") as ws:
            for path in ("/lead/temperature", "/lead/mute", "/livernn/tempo"):
                await ws.send_json({"COMMAND": "LISTEN", "DATA": path})
            await asyncio.to_thread(wait_for, lambda: len(oscquery.listened()) == 3, 5, "LISTEN")
            client.send_message("/lead/temperature", 1.25)
            client.send_message("/lead/mute", True)
            client.send_message("/livernn/tempo", 140.0)
            s.voices["low"].set("density", 2.0)  # not listened: not sent
            while len(got) < 3:
                message = await ws.receive(timeout=5)
                got.append(OscMessage(message.data))
        return got

    got = asyncio.run(listen())
    assert {(m.address, m.params[0]) for m in got} == {("/lead/temperature", 1.25), ("/lead/mute", True),
                                                       ("/livernn/tempo", 140.0)}
    assert json.loads(_get(base + "/lead/temperature?VALUE")[1]) == {"VALUE": [1.25]}
    assert json.loads(_get(base + "/livernn/tempo?VALUE")[1]) == {"VALUE": [140.0]}
    assert s.voices["lead"].params.mute is True
    client.send_message("/livernn/scene", "loud")
    client.send_message("/low/model", "/etc/passwd")  # a path is never a model
    client.send_message("/nowhere/at_all", 1.0)
    wait_for(lambda: runtime.scene == "loud" and oscquery.bad == 2, 5, "the scene and two refusals")
    assert oscquery.writes == 4 and s.bus.get("oscquery.lead.temperature") == 1.25


def test_path_changed_reaches_listeners_when_a_voice_is_added(oscquery, show):
    s, _ = show

    async def listen() -> str:
        async with aiohttp.ClientSession() as http, http.ws_connect(oscquery.url) as ws:
            await ws.send_json({"COMMAND": "LISTEN", "DATA": "/lead/top_p"})
            await asyncio.to_thread(wait_for, lambda: oscquery.listened(), 5, "LISTEN")
            await asyncio.to_thread(s.add_voice, "pad", None, None, 1, 3)
            while True:
                message = await ws.receive(timeout=10)
                if message.type == aiohttp.WSMsgType.TEXT:
                    return json.loads(message.data)["COMMAND"]

    assert asyncio.run(listen()) == "PATH_CHANGED"
    assert "pad" in json.loads(_get(oscquery.url)[1])["CONTENTS"]


# -- patch tables and the command line ----------------------------------------------------------------

def test_web_and_oscquery_tables_are_checked_like_the_rest_of_a_patch(tmp_path: Path):
    assert check_web({"port": 8080, "bind": "0.0.0.0"}) == []
    assert check_oscquery({"port": 9010, "osc_port": 9011, "allow": ["10.0.0.0/8"], "name": "set"}) == []
    assert [p for p, _ in check_web({"prot": 1, "bind": "somewhere"})] == [("prot",), ("bind",)]
    assert [p for p, _ in check_oscquery({"port": 70000, "allow": ["nope"], "name": "a.b"})] == \
        [("port",), ("allow",), ("name",)]
    patch = tmp_path / "show.toml"
    base = 'version = 1\n[voices.lead]\nmodel = "default"\n'
    patch.write_text(base + "[web]\nport = 0\n[oscquery]\nport = 0\n")
    assert set(load_patch(patch).sections) == {"web", "oscquery"}
    patch.write_text(base + "[web]\nprot = 8080\n")
    with pytest.raises(PatchError, match=r"show.toml:\d+: web.prot: unknown key; did you mean 'port'\?"):
        load_patch(patch)


def test_a_patch_with_web_and_oscquery_tables_serves_both_and_a_reload_moves_them(tmp_path: Path):
    from livernn.patch.show import Show

    patch = tmp_path / "show.toml"
    base = 'version = 1\n[voices.lead]\nmodel = "default"\n[scenes.calm]\nlead = { temperature = 0.4 }\n'
    patch.write_text(base + "[web]\nport = 0\n[oscquery]\nport = 0\n")

    async def play() -> list[str]:
        session = Session()
        show = Show(session, patch)
        log = io.StringIO()
        with redirect_stderr(log):
            await show.load()
            first = log.getvalue()
            patch.write_text(base + "[oscquery]\nport = 0\nname = \"renamed\"\n")
            await show.reload()
        await show.close()
        session.stop()
        return [first, log.getvalue()[len(first):]]

    first, second = asyncio.run(play())
    assert "web page: http://127.0.0.1:" in first and "oscquery: http://127.0.0.1:" in first
    assert "web page" not in second and "oscquery: http://127.0.0.1:" in second


def test_perform_prints_where_the_page_and_oscquery_are(tmp_path: Path, capsys):
    from livernn.cli import main

    patch = tmp_path / "show.toml"
    patch.write_text('version = 1\n[voices.lead]\nmodel = "default"\n[outputs.rec]\ntype = "file"\npath = "set.mid"\n')
    code = main(["perform", str(patch), "--web", "127.0.0.1:0", "--oscquery", "127.0.0.1:0",
                 "--duration", "1.5", "--no-reload", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    assert "web page: http://127.0.0.1:" in err and "oscquery: http://127.0.0.1:" in err
    assert main(["perform", str(patch), "--web", "example.com:80", "--duration", "1", "--quiet"]) == 2
    assert "livernn: error: web 'example.com:80': host must be an IP address" in capsys.readouterr().err


def _free_tcp_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_perform_flags_override_the_patch_tables_one_page_and_one_oscquery(tmp_path: Path, capsys):
    """``perform PATCH --web/--oscquery`` with ``[web]``/``[oscquery]`` in the patch: the flag's
    port wins and one page (one OSCQuery server) runs, not one for each."""
    from livernn.cli import main

    table_web, table_query = _free_tcp_port(), _free_tcp_port()
    patch = tmp_path / "show.toml"
    patch.write_text('version = 1\n[voices.lead]\nmodel = "default"\n[outputs.rec]\ntype = "file"\npath = "set.mid"\n'
                     f"[web]\nport = {table_web}\n[oscquery]\nport = {table_query}\nname = \"tabled\"\n")
    code = main(["perform", str(patch), "--web", "127.0.0.1:0", "--oscquery", "0", "--oscquery-allow", "10.0.0.0/8",
                 "--duration", "1.5", "--no-reload", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    pages = [line for line in err.splitlines() if line.startswith("web page: ")]
    queries = [line for line in err.splitlines() if line.startswith("oscquery: http")]
    assert len(pages) == 1 and len(queries) == 1, err
    assert f":{table_web}/" not in pages[0] and f":{table_query}/" not in queries[0], err
    # and with the tables alone, their own ports
    assert main(["perform", str(patch), "--duration", "1", "--no-reload", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"web page: http://127.0.0.1:{table_web}/" in err and f"oscquery: http://127.0.0.1:{table_query}/" in err
    assert main(["perform", str(patch), "--oscquery-allow", "nowhere", "--duration", "1", "--quiet"]) == 2
    assert "--oscquery-allow: 'nowhere' is not an IP address or network" in capsys.readouterr().err


def test_flags_lay_over_the_tables_through_reloads_and_web_at_the_prompt_returns_the_page(tmp_path: Path, capsys):
    """The merge itself (the flag's address, the table's other keys kept, allow added),
    kept across a reload that changes the table; ``web()`` at the prompt returns the show's page
    instead of opening a second, and says so when asked for another address."""
    from livernn import api
    from livernn.patch.show import open_show
    from livernn.web.section import flag_override
    from livernn.web.serve import running

    first = _free_tcp_port()
    patch = tmp_path / "show.toml"
    base = 'version = 1\n[voices.lead]\nmodel = "default"\n[outputs.rec]\ntype = "file"\npath = "set.mid"\n'
    patch.write_text(base + f'[web]\nport = {first}\n[oscquery]\nport = 0\nname = "tabled"\nallow = ["10.0.0.0/8"]\n')
    overrides = {"web": flag_override("web", "0"),
                 "oscquery": flag_override("oscquery", "127.0.0.1:0", ["192.168.1.0/24"])}
    assert flag_override("web", None) is None and overrides["oscquery"](None) == {"port": 0, "bind": "127.0.0.1",
                                                                                  "allow": ["192.168.1.0/24"]}
    assert flag_override("oscquery", None, ["10.1.0.0/16"])(None) is None  # --oscquery-allow alone opens nothing
    # the flag's address is the whole address: a bare port is 127.0.0.1, whatever the table's bind
    assert overrides["web"]({"port": 1, "bind": "0.0.0.0"}) == {"port": 0, "bind": "127.0.0.1"}

    async def play() -> None:
        show = await open_show(patch, overrides=overrides)
        try:
            page, query = running(show.session, "web"), running(show.session, "oscquery")
            assert page is not None and page.port != first and not _listening(first)
            assert query.name == "tabled" and query.osc.allowed("192.168.1.7") and query.osc.allowed("10.2.3.4")
            patch.write_text(base + "[web]\nport = 0\nbind = \"127.0.0.1\"\n")  # the table changes: still one page
            assert await show.reload()
            page = running(show.session, "web")
            assert page is not None and running(show.session, "oscquery") is not None  # the flag's, still
            api.use(show.session, show.runtime, show)
            assert await asyncio.to_thread(api.web) is page
            assert await asyncio.to_thread(api.web, page.port) is page
            assert await asyncio.to_thread(api.web, page.port + 1) is page
            assert "open there already" in capsys.readouterr().out
        finally:
            api.use(None)  # the show is closed here, not by api.close()
            await show.close()
            show.session.stop()

    asyncio.run(play())

"""Playing with the band from the outside: patch keys, the REPL's sync/clock_out/offset and
``livernn play --sync/--clock-out/--set`` with its ``tempo N`` lines, through real JACK
ports against a tick source and a clock probe in other processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livernn.patch.schema import load_patch
from livernn.patch.specs import PatchError
from peers import stop_process, wait_for
from test_clock_out import ClockProbe
from test_sync_midi import SOURCE

ROOT = Path(__file__).resolve().parents[1]

PATCH = """
version = 1
[clock]
bpm = 100
source = "{source}"
out = {out}
start_stop = true
[outputs.drums]
type = "midi"
port = "drums"
offset_ms = {offset}
[outputs.dirt]
type = "superdirt"
offset_ms = 0
[voices.lead]
outputs = ["dirt"]
"""


def write(tmp_path: Path, source="link", out='["midi:drums"]', offset="12.5") -> Path:
    path = tmp_path / "band.toml"
    path.write_text(PATCH.format(source=source, out=out, offset=offset))
    return path


def test_patch_clock_keys_and_offsets(tmp_path):
    patch = load_patch(write(tmp_path))
    assert (patch.clock_source, patch.clock_out, patch.start_stop) == ("link", ("drums",), True)
    assert patch.outputs["drums"].offset_ms == 12.5 and patch.outputs["dirt"].offset_ms == 0.0
    for kwargs, message in (({"source": "lnk"}, "clock.source: must be one of internal, link, midi:NAME"),
                            ({"out": '["midi:drumz"]'}, "no MIDI output 'drumz'; did you mean 'drums'?"),
                            ({"out": '["drums"]'}, 'must be "midi:NAME"'),
                            ({"offset": "900"}, "offset_ms")):
        with pytest.raises(PatchError) as caught:
            load_patch(write(tmp_path, **kwargs))
        assert message in str(caught.value), str(caught.value)


def test_shipped_band_patch_loads():
    patch = load_patch(ROOT / "patches" / "band.toml")
    assert patch.clock_source == "link" and patch.clock_out


def test_play_follows_a_midi_clock_sends_clock_and_prints_tempo(jack, tmp_path):
    """``livernn play --sync midi:tsrc --clock-out midi:clkprobe --set ...``: its tempo follows a
    tick source (133 then 140 BPM), each change printed as ``tempo N``; clock goes out.

    The source and the probe are there first and play finds them by name, as a show finds a
    drum machine: nothing is patched by hand while play's JACK clients start. (Patched by
    hand, with the port polls then made by ``jack_lsp``, play's clock input once heard no
    tick at all: see tests/peers.py ``_Asker``.)"""
    probe = ClockProbe("clkprobe")
    src = subprocess.Popen([sys.executable, "-c", SOURCE, "tsrc", "133:12", "140:12"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    play = None
    try:
        assert src.stdout.readline().strip() == "ready"
        play = subprocess.Popen([sys.executable, "-m", "livernn.cli", "play", "--sync", "midi:tsrc",
                                 "--clock-out", "midi:clkprobe", "--set", "density=1.2", "--set", "pitch_max=84",
                                 "--duration", "40", "--record", str(tmp_path / "p.mid")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                                start_new_session=True)
        wait_for(lambda: len(probe.of(0xF8)) > 24 or play.poll() is not None, 60,
                 "ticks from livernn play's clock out")
        src.stdin.write("go\n")
        src.stdin.flush()
        for line in src.stdout:
            if line.strip() == "done":
                break
        time.sleep(0.5)
    finally:
        stop_process(src)
        out, err = "", ""
        if play is not None:
            play.terminate()
            out, err = play.communicate(timeout=30)
        probe.close()
    assert play.returncode == 143, err[-2000:]  # SIGTERM: a clean stop (test_play.py)
    tempos = [float(x) for x in re.findall(r"^tempo ([\d.]+)$", out, re.M)]
    # A line is printed for each change of TEMPO_STEP (0.05 BPM) or more, so the last line
    # before the filter settles can sit a step away from the tempo it settles on: 0.15 BPM
    # here; the filter's own precision (< 0.05 BPM) is tests/test_sync_midi.py's bound.
    assert any(abs(t - 133) < 0.15 for t in tempos) and abs(tempos[-1] - 140) < 0.15, (tempos, out[-1500:], err[-1500:])
    assert "MIDI clock out on" in out and "sync midi:tsrc" in out, out
    assert len(probe.of(0xF8)) > 24 * 24


def test_play_set_rejects_an_unknown_parameter(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "livernn.cli", "play", "--duration", "0.1", "--set", "densty=2"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0 and "did you mean 'density'" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_repl_sync_clock_out_and_offset():
    from livernn import api
    from livernn.errors import LivernnError

    try:
        out = api.osc("127.0.0.1", 57999)
        assert api.offset(out) == 0.0 and api.offset(out, 20) == 20.0
        assert list(api.session().status()["offsets_ms"].values()) == [20.0]
        with pytest.raises(LivernnError, match="must be"):
            api.offset(out, 900)
        with pytest.raises(LivernnError, match="cannot send MIDI clock"):
            api.clock_out(out)
        with pytest.raises(LivernnError, match="clock source must be one of"):
            api.sync("lnk")
        with pytest.raises(LivernnError, match="no output 'osk'"):
            api.offset("osk", 3)
        assert api.sync("internal") == "internal"
    finally:
        api.close()


def test_calibrate_times_a_jack_loopback(jack):
    """``livernn calibrate`` through a JACK connection from its output back to its input,
    patched by hand as its users do (``calout`` to ``calin``, both made by calibrate).

    Once in the full suite nothing came back on calin: the test's port polls were then a
    ``jack_lsp`` client opened and closed every 50 ms beside calibrate's clients starting,
    which now and then leaves a new client's process thread never running (3 of 15 starts
    measured); tests/peers.py asks through one kept client instead (``_Asker``)."""
    proc = subprocess.Popen([sys.executable, "-m", "livernn.cli", "calibrate", "--out", "midi:calout",
                             "--in", "calin", "--count", "16"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ), start_new_session=True)
    try:
        jack.connect(jack.wait_port("calout", timeout=30), jack.wait_port("calin", timeout=30))
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, err
    trip = re.search(r"round trip over (\d+) notes: median ([\d.]+) ms", out)
    assert trip and int(trip.group(1)) >= 16 and 0 < float(trip.group(2)) < 20, out
    assert re.search(r"offset_ms = [\d.]+", out), out


def test_calibrate_finds_the_loop_by_name(jack):
    """The loop named on the command line, as a cable already in place is: calibrate opens its
    input (a new port, ``calself``), then its output finds that port and connects to it."""
    proc = subprocess.run([sys.executable, "-m", "livernn.cli", "calibrate", "--out", "midi:calself",
                           "--in", "calself", "--count", "8"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"round trip over (\d+) notes", proc.stdout), proc.stdout

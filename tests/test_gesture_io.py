"""Gesture tracking's edges: OSC out to a real server, the command line, threads, missing parts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from livernn.cli import main
from livernn.controls.bus import ControlBus
from livernn.errors import LivernnError
from livernn.gesture import WEKINATOR_INPUTS, ArraySource, GestureTracker
from livernn.gesture.publish import parse_address

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def osc_server():
    """A real python-osc UDP server on 127.0.0.1 that records every message."""
    received: list[tuple[str, tuple]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.append((address, args)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()
    thread.join()


def _wait_for(received: list, address: str, timeout: float = 2.0) -> tuple:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for addr, args in list(received):
            if addr == address:
                return args
        time.sleep(0.01)
    raise AssertionError(f"no {address} arrived; got {sorted({a for a, _ in received})}")


def test_features_landmarks_and_wekinator_inputs_arrive_over_osc(hands_dir: Path, osc_server) -> None:
    port, received = osc_server
    with GestureTracker(hands_dir / "thumb_up.jpg", osc=f"127.0.0.1:{port}", wekinator=f"127.0.0.1:{port}") as tr:
        list(tr.frames())
    assert _wait_for(received, "/hand/right/gesture") == ("thumbs_up",)
    (pinch,) = _wait_for(received, "/hand/right/pinch")
    assert pinch == pytest.approx(tr.latest.hands[0].pinch, rel=1e-6)
    assert len(_wait_for(received, "/hand/right/landmarks")) == 63
    assert _wait_for(received, "/hand/count") == (1.0,)
    inputs = _wait_for(received, "/wek/inputs")
    assert len(inputs) == len(WEKINATOR_INPUTS) == 18
    assert inputs[WEKINATOR_INPUTS.index("right.present")] == 1.0
    assert inputs[WEKINATOR_INPUTS.index("left.present")] == 0.0
    assert inputs[WEKINATOR_INPUTS.index("right.pinch")] == pytest.approx(pinch, rel=1e-6)


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.2:9000", ("10.0.0.2", 9000)), ("9000", ("127.0.0.1", 9000)), ("localhost:6448", ("localhost", 6448)),
])
def test_osc_destinations_parse(text: str, expected: tuple) -> None:
    assert parse_address(text) == expected


def test_wekinator_host_alone_gets_port_6448() -> None:
    assert parse_address("studio-mac", 6448) == ("studio-mac", 6448)


@pytest.mark.parametrize("text", ["host:", "host:99999", "host:abc", ":0"])
def test_bad_osc_destination_is_refused(text: str) -> None:
    with pytest.raises(LivernnError, match="HOST:PORT"):
        parse_address(text)


def test_unknown_osc_host_is_refused_once_at_start(hands_dir: Path) -> None:
    with pytest.raises(LivernnError, match=re.escape("OSC destination nonexistent.invalid:9000 cannot be reached")):
        GestureTracker(hands_dir / "thumb_up.jpg", osc="nonexistent.invalid:9000")


def test_cli_json_on_a_picture(hands_dir: Path, capsys) -> None:
    assert main(["gesture", "--image", str(hands_dir / "thumb_up.jpg"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    (hand,) = lines[0]["hands"]
    assert (hand["side"], hand["gesture"]) == ("right", "thumbs_up")
    assert len(hand["landmarks"]) == 21 and len(hand["landmarks"][0]) == 3
    assert 0.0 < hand["height"] < 1.0


def test_cli_text_on_video_frames(hands_dir: Path, capsys) -> None:
    assert main(["gesture", "--video", str(hands_dir / "hand_left.mp4"), "--fast", "--frames", "5"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 5 and all("left#1" in line for line in lines)
    assert "5 frames" in out.err


def test_missing_camera_is_one_line_naming_what_was_tried() -> None:
    with pytest.raises(LivernnError, match=r"camera 97 could not be opened \(tried /dev/video97") as err:
        GestureTracker(97)
    assert "\n" not in str(err.value)


def test_cli_missing_camera_device_exits_2_with_one_line(capsys) -> None:
    assert main(["gesture", "--camera", "/dev/video-missing"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "livernn: error: camera '/dev/video-missing' could not be opened " \
                  "(tried /dev/video-missing with OpenCV); give another --camera index or device path"


def test_missing_video_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LivernnError, match=r"video file .*nope\.mp4.* does not exist"):
        GestureTracker(tmp_path / "nope.mp4")


def test_without_mediapipe_the_cli_says_which_extra_to_install(hands_dir: Path) -> None:
    code = ("import sys; sys.modules['mediapipe'] = None\n"
            "from livernn.cli import main\n"
            f"sys.exit(main(['gesture', '--image', {str(hands_dir / 'thumb_up.jpg')!r}]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("livernn: error: hand tracking needs mediapipe")
    assert "pip install 'livernn[gesture]'" in proc.stderr


def test_live_source_drops_stale_frames_instead_of_queueing(hands_dir: Path) -> None:
    """Frames at 200 fps, far faster than tracking: stale ones are replaced, the newest is tracked."""
    image = cv2.imread(str(hands_dir / "thumb_up.jpg"))
    bus = ControlBus()
    tracker = GestureTracker(ArraySource([image] * 40, fps=200.0, realtime=True), bus=bus)
    with tracker:
        tracker.start()
        assert tracker.wait(60.0)
    stats = tracker.stats
    assert stats.dropped > 0 and stats.frames + stats.dropped == 40
    assert tracker.latest.index == 39, "the last frame is always tracked"
    assert bus.get("hand.right.gesture") == "thumbs_up"


def test_a_file_read_as_fast_as_possible_in_the_background_sees_every_frame(hands_dir: Path) -> None:
    seen: list[int] = []
    with GestureTracker(hands_dir / "hand_left.mp4", on_frame=lambda f: seen.append(f.index)) as tracker:
        tracker.start(max_frames=30)
        assert tracker.wait(60.0)
    assert seen == list(range(30))
    assert tracker.stats.dropped == 0


def test_stop_ends_a_realtime_replay_early(hands_dir: Path) -> None:
    tracker = GestureTracker(hands_dir / "hand_left.mp4", realtime=True).start()
    deadline = time.monotonic() + 10.0
    while tracker.stats.frames < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    tracker.stop()
    assert time.monotonic() - started < 1.0
    assert not tracker.running
    assert 0 < tracker.stats.frames < 202


def test_a_patch_table_builds_a_tracker(hands_dir: Path) -> None:
    bus = ControlBus()
    table = {"source": str(hands_dir / "thumb_up.jpg"), "complexity": 1, "hold_frames": 2,
             "filters": {"pinch": {"mincutoff": 2.0, "beta": 0.1}}}
    with GestureTracker.from_table(table, bus=bus) as tracker:
        list(tracker.frames())
    assert tracker.tracks.settings["pinch"] == {"mincutoff": 2.0, "beta": 0.1, "dcutoff": 1.0}
    assert bus.get("hand.right.gesture") == "thumbs_up"


@pytest.mark.parametrize("table, words", [
    ({"source": 0, "complexty": 1}, "unknown \\[gesture\\] setting 'complexty'; allowed: source, complexity"),
    ({"complexity": 1}, "\\[gesture\\] needs source"),
    ({"source": "x.jpg", "max_hands": 0}, "max_hands must be a whole number 1..4"),
    ({"source": "x.jpg", "min_detection_confidence": 1.5}, "min_detection_confidence must be a number 0..1"),
    ({"source": "x.jpg", "hold_frames": 0}, "hold_frames must be a whole number >= 1"),
    ({"source": "x.jpg", "osc": "nowhere:port"}, "OSC destination 'nowhere:port'"),
])
def test_bad_patch_tables_are_refused_in_one_line(table: dict, words: str) -> None:
    with pytest.raises(LivernnError, match=words) as err:
        GestureTracker.from_table(table)
    assert "\n" not in str(err.value)


def test_preview_without_a_display_is_refused_before_tracking(hands_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["gesture", "--image", str(hands_dir / "thumb_up.jpg"), "--preview"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == ("livernn: error: --preview needs a display (no DISPLAY or WAYLAND_DISPLAY here); "
                               "leave it out to run headless")


def test_stop_right_after_start_ends_during_warm_up(hands_dir: Path) -> None:
    tracker = GestureTracker(hands_dir / "hand_left.mp4", realtime=True).start()
    started = time.monotonic()
    tracker.stop()
    assert time.monotonic() - started < 3.0
    assert not tracker.running and tracker.stats.frames == 0

"""Hand tracking on the real pictures and video in tests/data/hands, with the real MediaPipe model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from livernn.controls.bus import ControlBus
from livernn.errors import LivernnError
from livernn.gesture import ArraySource, GestureTracker
from livernn.gesture.hands import GestureState, filter_settings
from livernn.gesture.landmarks import LegacyHands, TaskHands

VIDEO_FRAMES = 202


def _track_still(path_or_source, **kwargs) -> tuple[list, ControlBus]:
    bus = ControlBus()
    with GestureTracker(path_or_source, bus=bus, **kwargs) as tracker:
        frames = list(tracker.frames())
    return frames, bus


@pytest.fixture(scope="module")
def video_run(hands_dir: Path):
    """hand_left.mp4 tracked once, as fast as possible, every frame, model complexity 0."""
    bus = ControlBus()
    with GestureTracker(hands_dir / "hand_left.mp4", bus=bus, model_complexity=0) as tracker:
        frames = list(tracker.frames())
        stats = tracker.stats
    return frames, bus, stats


def test_thumb_up_picture_gives_one_right_hand_with_thumbs_up(hands_dir: Path) -> None:
    frames, bus = _track_still(hands_dir / "thumb_up.jpg")
    assert len(frames) == 1 and len(frames[0].hands) == 1
    hand = frames[0].hands[0]
    assert (hand.side, hand.gesture) == ("right", "thumbs_up")
    assert hand.landmarks.shape == (21, 3)
    assert bus.get("hand.right.gesture") == "thumbs_up"
    assert bus.get("hand.any.gesture") == "thumbs_up"
    assert bus.get("hand.count") == 1.0
    assert bus.get("hand.left.gesture") is None
    assert 0.0 < bus.get("hand.right.height") < 1.0


def test_unmirrored_left_hand_is_reported_as_left(hands_dir: Path) -> None:
    frames, bus = _track_still(hands_dir / "hand_left.jpg", model_complexity=1)
    sides = [h.side for h in frames[0].hands]
    assert "left" in sides
    assert bus.get("hand.left.gesture") == "thumbs_up"


def test_height_grows_as_the_hand_goes_up(hands_dir: Path) -> None:
    image = cv2.imread(str(hands_dir / "thumb_up.jpg"))
    blank = np.zeros_like(image)
    high, low = np.vstack([image, blank]), np.vstack([blank, image])
    heights = []
    for picture in (high, low):
        _, bus = _track_still(ArraySource([picture]))
        heights.append(bus.get("hand.right.height"))
    assert heights[0] > 0.5 > heights[1]


def test_mirror_flips_x_but_not_the_hand(hands_dir: Path) -> None:
    plain, _ = _track_still(hands_dir / "thumb_up.jpg")
    mirrored, _ = _track_still(hands_dir / "thumb_up.jpg", mirror=True)
    a, b = plain[0].hands[0], mirrored[0].hands[0]
    assert b.side == a.side == "right"
    assert b.x == pytest.approx(1.0 - a.x, abs=1e-6)
    assert b.roll == pytest.approx(-a.roll, abs=1e-6)


def test_video_keeps_one_hand_identity_through_label_flips(video_run) -> None:
    frames, bus, stats = video_run
    assert len(frames) == VIDEO_FRAMES and stats.frames == VIDEO_FRAMES
    assert all(len(f.hands) == 1 for f in frames), "raw MediaPipe finds one hand in every frame"
    assert {h.id for f in frames for h in f.hands} == {1}
    assert {h.side for f in frames for h in f.hands} == {"left"}
    assert bus.get("hand.left.present") == 1.0 and bus.get("hand.right.present") is None


def test_video_frame_times_come_from_the_frame_rate(video_run) -> None:
    frames, _, _ = video_run
    assert [f.t for f in frames[:3]] == pytest.approx([0.0, 0.04, 0.08])


def _jitter(values: list[float]) -> float:
    return float(np.mean(np.abs(np.diff(values, n=2))))


@pytest.mark.parametrize("feature", ["x", "y", "size", "pinch", "openness", "roll", "speed"])
def test_filtered_features_jitter_less_than_raw(video_run, feature: str) -> None:
    frames, _, _ = video_run
    hands = [f.hands[0] for f in frames]
    smooth = _jitter([getattr(h, feature) for h in hands])
    raw = _jitter([h.raw[feature] for h in hands])
    assert smooth < 0.7 * raw, f"{feature}: filtered jitter {smooth:.5f} vs raw {raw:.5f}"


def test_filtered_landmarks_jitter_less_than_raw(video_run) -> None:
    frames, _, _ = video_run
    smooth = np.array([f.hands[0].landmarks for f in frames])
    assert smooth.shape == (VIDEO_FRAMES, 21, 3)
    # raw landmark jitter, from the raw palm centre the filters saw
    raw_x = [f.hands[0].raw["x"] for f in frames]
    smooth_x = list(smooth[:, [0, 5, 9, 13, 17], 0].mean(axis=1))
    assert _jitter(smooth_x) < _jitter(raw_x)


def test_open_hand_in_the_video_reads_as_open_palm(video_run) -> None:
    frames, _, _ = video_run
    late = [f.hands[0] for f in frames[60:]]
    assert sum(h.gesture == "open_palm" for h in late) > 0.9 * len(late)
    assert np.mean([h.openness for h in late]) > 0.8


def test_filter_settings_per_feature_change_the_smoothing(hands_dir: Path, video_run) -> None:
    frames, _, _ = video_run
    stiff = {"pinch": {"mincutoff": 0.05, "beta": 0.0}}
    with GestureTracker(hands_dir / "hand_left.mp4", filters=stiff) as tracker:
        stiff_frames = list(tracker.frames(max_frames=60))
    default_pinch = [f.hands[0].pinch for f in frames[:60]]
    stiff_pinch = [f.hands[0].pinch for f in stiff_frames]
    assert _jitter(stiff_pinch) < _jitter(default_pinch)
    assert [f.hands[0].x for f in stiff_frames] == pytest.approx([f.hands[0].x for f in frames[:60]])


@pytest.mark.parametrize("bad, words", [
    ({"wobble": {"beta": 1.0}}, "no filter for feature 'wobble'"),
    ({"pinch": {"cutoff": 1.0}}, "unknown filter setting pinch.cutoff"),
    ({"pinch": {"mincutoff": -1.0}}, "pinch.mincutoff must be a number > 0"),
    ({"pinch": {"mincutoff": float("nan")}}, "pinch.mincutoff"),
    ({"pinch": 3}, "must be a table"),
])
def test_bad_filter_settings_are_refused_in_one_line(bad, words: str) -> None:
    with pytest.raises(LivernnError, match=words) as err:
        filter_settings(bad)
    assert "\n" not in str(err.value)


def test_gesture_changes_only_after_hold_frames_agree() -> None:
    state = GestureState(hold=3)
    assert [state.update("fist") for _ in range(3)] == ["none", "none", "fist"]
    assert [state.update(g) for g in ["open_palm", "fist", "open_palm", "open_palm"]] == ["fist"] * 4
    assert state.update("open_palm") == "open_palm"


def test_a_still_takes_its_gesture_at_once() -> None:
    assert GestureState(hold=1).update("point") == "point"


def _bundled_task(tmp_path: Path) -> Path:
    """A .task bundle made of the models inside the mediapipe wheel (the Tasks API's file layout)."""
    import mediapipe

    modules = Path(mediapipe.__file__).parent / "modules"
    task = tmp_path / "hands.task"
    with zipfile.ZipFile(task, "w") as bundle:
        bundle.write(modules / "palm_detection" / "palm_detection_full.tflite", "hand_detector.tflite")
        bundle.write(modules / "hand_landmark" / "hand_landmark_full.tflite", "hand_landmarks_detector.tflite")
    return task


def test_task_file_runs_through_the_tasks_hand_landmarker(hands_dir: Path, tmp_path: Path) -> None:
    rgb = cv2.cvtColor(cv2.imread(str(hands_dir / "thumb_up.jpg")), cv2.COLOR_BGR2RGB)
    task_hands = TaskHands(_bundled_task(tmp_path), static=True)
    legacy = LegacyHands(model_complexity=1, static=True)
    try:
        found, reference = task_hands.detect(rgb, 0.0), legacy.detect(rgb, 0.0)
    finally:
        task_hands.close()
        legacy.close()
    assert len(found) == len(reference) == 1
    assert np.abs(found[0].landmarks[:, :2] - reference[0].landmarks[:, :2]).max() < 0.05


def test_tracker_runs_a_task_file_on_video(hands_dir: Path, tmp_path: Path) -> None:
    with GestureTracker(hands_dir / "hand_left.mp4", task_file=_bundled_task(tmp_path)) as tracker:
        frames = list(tracker.frames(max_frames=10))
    assert all(len(f.hands) == 1 for f in frames)
    assert {h.id for f in frames for h in f.hands} == {1}


def test_a_file_that_is_not_a_task_bundle_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.task"
    junk.write_bytes(b"not a model")
    with pytest.raises(LivernnError, match=r"junk.task.*not a usable HandLandmarker") as err:
        TaskHands(junk)
    assert "\n" not in str(err.value)


def test_two_hands_are_published_by_side(hands_dir: Path, tmp_path: Path) -> None:
    right = cv2.imread(str(hands_dir / "thumb_up.jpg"))
    left = cv2.imread(str(hands_dir / "hand_left.jpg"))
    left = cv2.resize(left, (left.shape[1] * right.shape[0] // left.shape[0], right.shape[0]))
    both = tmp_path / "both.png"
    cv2.imwrite(str(both), np.hstack([right, left]))
    frames, bus = _track_still(both, model_complexity=1)
    assert sorted(h.side for h in frames[0].hands) == ["left", "right"]
    assert bus.get("hand.count") == 2.0
    assert bus.get("hand.right.x") < 0.5 < bus.get("hand.left.x")
    assert bus.get("hand.right.gesture") == "thumbs_up" and bus.get("hand.left.gesture") == "thumbs_up"


def test_a_hand_that_leaves_is_announced_and_returns_with_a_new_id(hands_dir: Path) -> None:
    image = cv2.imread(str(hands_dir / "thumb_up.jpg"))
    blank = np.zeros_like(image)
    bus = ControlBus()
    presence: list[float] = []
    bus.subscribe("hand.right.present", lambda name, value, t: presence.append(value))
    with GestureTracker(ArraySource([image] * 4 + [blank] * 10 + [image] * 4, fps=25.0), bus=bus) as tracker:
        frames = list(tracker.frames())
    assert [f.hands[0].id for f in frames[:4]] == [1] * 4
    assert [f.hands[0].id for f in frames[14:]] == [2] * 4, "gone 0.4 s > 0.3 s: a new hand"
    assert presence == [1.0] * 4 + [0.0] + [1.0] * 4
    assert [f.hands[0].gesture for f in frames[:4]] == ["none", "none", "thumbs_up", "thumbs_up"]


def test_roll_of_a_hand_pointing_down_does_not_jump(video_run) -> None:
    """The video's hand hangs fingers down, right where an angle in (-pi, pi] would wrap."""
    frames, _, _ = video_run
    rolls = np.array([f.hands[0].roll for f in frames])
    assert np.abs(np.abs(rolls) - np.pi).max() < 0.6
    assert np.abs(np.diff(rolls)).max() < 0.5

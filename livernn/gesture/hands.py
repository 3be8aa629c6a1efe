"""Hands that keep their identity: tracks, smoothing and gesture hysteresis.

MediaPipe's per-frame handedness label can flip for a frame or two (on ``hand_left.mp4`` the
lite model calls the left hand "Right" in 5 of 202 frames), and its output order changes when
hands cross. A track is therefore matched by nearest palm centre, with the label only as a
tie-breaker, and its side is a running vote over all its frames. Every track has its own
One Euro filters (driven by frame times) and its own gesture state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from livernn.controls.filters import OneEuroFilter
from livernn.errors import LivernnError
from livernn.gesture.features import Shape, guess_gesture, measure, to_picture
from livernn.gesture.landmarks import RawHand

SMOOTHED = ("x", "y", "size", "pinch", "openness", "roll", "speed", "landmarks")
FILTER_KEYS = ("mincutoff", "beta", "dcutoff")
# Units differ per feature (picture heights, ratios, radians), hence different betas.
DEFAULT_FILTERS: dict[str, dict[str, float]] = {
    "x": {"mincutoff": 1.0, "beta": 1.5, "dcutoff": 1.0},
    "y": {"mincutoff": 1.0, "beta": 1.5, "dcutoff": 1.0},
    "size": {"mincutoff": 0.8, "beta": 1.0, "dcutoff": 1.0},
    "pinch": {"mincutoff": 1.5, "beta": 0.3, "dcutoff": 1.0},
    "openness": {"mincutoff": 1.5, "beta": 0.3, "dcutoff": 1.0},
    "roll": {"mincutoff": 1.0, "beta": 0.2, "dcutoff": 1.0},
    "speed": {"mincutoff": 2.0, "beta": 0.1, "dcutoff": 1.0},
    "landmarks": {"mincutoff": 1.5, "beta": 2.0, "dcutoff": 1.0},
}
MATCH_RADIUS = 0.3  # farthest a palm centre may move between frames and stay the same hand
LABEL_PENALTY = 0.15  # extra distance for a hand whose label disagrees with the track's side
VOTE_LIMIT = 10.0  # a long-seen hand needs ~10 contrary frames to change side
LOST_AFTER = 0.3  # seconds of media time without the hand before its track ends


def filter_settings(overrides: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    """Default filter parameters with a patch file's per-feature overrides applied and checked."""
    settings = {name: dict(params) for name, params in DEFAULT_FILTERS.items()}
    for name, params in (overrides or {}).items():
        if name not in settings:
            raise LivernnError(f"no filter for feature {name!r}; features with filters: {', '.join(SMOOTHED)}")
        if not isinstance(params, Mapping):
            raise LivernnError(f"filter settings for {name!r} must be a table of {', '.join(FILTER_KEYS)}")
        for key, value in params.items():
            if key not in FILTER_KEYS:
                raise LivernnError(f"unknown filter setting {name}.{key}; allowed: {', '.join(FILTER_KEYS)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or (value == 0 and key != "beta"):
                raise LivernnError(f"filter setting {name}.{key} must be a number > 0 (beta >= 0), got {value!r}")
            settings[name][key] = float(value)
    return settings


@dataclass(frozen=True, slots=True)
class HandFeatures:
    """One hand in one frame: smoothed features, with the unsmoothed ones in ``raw``."""

    id: int  # stable while the hand stays in view
    side: str  # "left" or "right": the performer's hand, by vote over the track's frames
    landmarks: np.ndarray  # (21, 3) smoothed, picture coordinates (x right, y up, z depth)
    x: float
    y: float  # palm height: 0 bottom of the picture, 1 top
    size: float  # palm size in picture heights (grows nearer the camera)
    pinch: float  # thumb-index tip distance / palm size (0 = touching)
    openness: float  # 0 = fist … 1 = fingers stretched
    roll: float  # radians, 0 = fingers up, + = leaning right; continuous (may pass ±pi, never jumps)
    speed: float  # palm speed in picture heights per second
    fingers: int  # extended fingers 0..5
    gesture: str  # one of features.GESTURES, after hysteresis
    raw: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain values (JSON-ready), named as on the bus, landmarks as 21 [x, y, z] lists."""
        return {"id": self.id, "side": self.side, "gesture": self.gesture, "x": self.x, "height": self.y,
                "size": self.size, "pinch": self.pinch, "openness": self.openness, "fingers": self.fingers,
                "roll": self.roll, "speed": self.speed, "landmarks": self.landmarks.round(5).tolist()}


class GestureState:
    """The gesture changes only after ``hold`` frames agree on a new one.

    A new hand starts at "none", so a hand half in the picture as it enters does not fire a
    gesture; with ``hold=1`` (unrelated stills) every frame's guess is taken as it is.
    """

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.current = "none"
        self._pending = ""
        self._count = 0

    def update(self, guess: str) -> str:
        if guess == self.current:
            self._count = 0
            return self.current
        self._count = self._count + 1 if guess == self._pending else 1
        self._pending = guess
        if self._count >= self.hold:
            self.current, self._count = guess, 0
        return self.current


def _speed(prev: tuple[float, float, float] | None, t: float, x: float, y: float, aspect: float) -> float:
    """Palm speed in picture heights per second since ``prev`` = (t, x, y)."""
    if prev is None or t <= prev[0]:
        return 0.0
    return math.hypot((x - prev[1]) * aspect, y - prev[2]) / (t - prev[0])


class _Track:
    def __init__(self, track_id: int, shape: Shape, settings: dict[str, dict[str, float]],
                 hold: int) -> None:
        self.id = track_id
        self.vote = 0.0
        self.centre = (shape.x, shape.y)
        self.last_t = -math.inf
        self.filters = {name: OneEuroFilter(**params) for name, params in settings.items() if name != "landmarks"}
        self.landmark_filters = [OneEuroFilter(**settings["landmarks"]) for _ in range(63)]
        self.gesture = GestureState(hold)
        self.roll = shape.roll  # unwrapped: a hand pointing down must not jump between pi and -pi
        self.prev: tuple[float, float, float] | None = None  # (t, x, y) smoothed, for speed
        self.prev_raw: tuple[float, float, float] | None = None

    @property
    def side(self) -> str:
        return "right" if self.vote >= 0 else "left"

    def distance(self, shape: Shape, aspect: float) -> float:
        return math.hypot((shape.x - self.centre[0]) * aspect, shape.y - self.centre[1])

    def update(self, hand: RawHand, shape: Shape, points: np.ndarray, t: float, aspect: float) -> HandFeatures:
        said = hand.score if hand.label == "right" else -hand.score
        self.vote = max(-VOTE_LIMIT, min(VOTE_LIMIT, self.vote + said))
        self.centre = (shape.x, shape.y)
        self.last_t = t
        self.roll += math.remainder(shape.roll - self.roll, math.tau)
        f = self.filters
        x, y = f["x"](shape.x, t), f["y"](shape.y, t)
        raw_speed = _speed(self.prev_raw, t, shape.x, shape.y, aspect)
        speed = f["speed"](_speed(self.prev, t, x, y, aspect), t)
        self.prev, self.prev_raw = (t, x, y), (t, shape.x, shape.y)
        flat = points.ravel()
        smooth = np.array([lf(float(v), t) for lf, v in zip(self.landmark_filters, flat, strict=True)])
        raw = {"x": shape.x, "y": shape.y, "size": shape.size, "pinch": shape.pinch,
               "openness": shape.openness, "roll": self.roll, "speed": raw_speed}
        return HandFeatures(
            id=self.id, side=self.side, landmarks=smooth.reshape(21, 3), x=x, y=y,
            size=f["size"](shape.size, t), pinch=f["pinch"](shape.pinch, t),
            openness=f["openness"](shape.openness, t),
            roll=f["roll"](self.roll, t), speed=speed,
            fingers=shape.fingers, gesture=self.gesture.update(guess_gesture(shape, self.gesture.current)),
            raw=raw)


class HandTracks:
    """Turns each frame's detections into hands with stable ids, smoothed features and gestures."""

    def __init__(self, filters: Mapping[str, Mapping[str, float]] | None = None, hold_frames: int = 3,
                 mirror: bool = False) -> None:
        if not isinstance(hold_frames, int) or hold_frames < 1:
            raise LivernnError(f"hold_frames must be a whole number >= 1, got {hold_frames!r}")
        self.settings = filter_settings(filters)
        self.hold = hold_frames
        self.mirror = mirror
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every hand (unrelated stills: no identity carries from one to the next)."""
        self._tracks = []

    def update(self, hands: list[RawHand], t: float, aspect: float) -> list[HandFeatures]:
        measured = []
        for hand in hands:
            points = to_picture(hand.landmarks, self.mirror)
            measured.append((hand, measure(points, aspect), points))
        pairs = []
        for ti, track in enumerate(self._tracks):
            for hi, (hand, shape, _) in enumerate(measured):
                distance = track.distance(shape, aspect)
                if distance <= MATCH_RADIUS:
                    pairs.append((distance + (LABEL_PENALTY if hand.label != track.side else 0.0), ti, hi))
        matched: dict[int, _Track] = {}
        used: set[int] = set()
        for _cost, ti, hi in sorted(pairs):
            if ti not in used and hi not in matched:
                matched[hi] = self._tracks[ti]
                used.add(ti)
        out = []
        for hi, (hand, shape, points) in enumerate(measured):
            known = matched.get(hi)
            if known is None:
                known = _Track(self._next_id, shape, self.settings, self.hold)
                self._next_id += 1
                self._tracks.append(known)
            out.append(known.update(hand, shape, points, t, aspect))
        self._tracks = [tr for tr in self._tracks if t - tr.last_t <= LOST_AFTER]
        return sorted(out, key=lambda h: h.id)

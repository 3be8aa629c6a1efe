"""Geometry of one hand: continuous features and a per-frame gesture guess.

Coordinates: x grows to the right of the picture (0..1), y grows upward (0 = bottom, so a
raised hand has a larger "height"), z is MediaPipe's depth (smaller = nearer the camera).
Distances are measured in units of the picture's height with x scaled by the aspect ratio,
so a pinch reads the same whether the hand is upright or sideways. ``size`` (palm size in
picture heights) stands in for depth: it grows as the hand nears the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WRIST, THUMB_TIP, INDEX_TIP = 0, 4, 8
PALM = (0, 5, 9, 13, 17)  # wrist and the four finger bases
THUMB = (1, 2, 3, 4)
FINGERS = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))  # index … pinky
GESTURES = ("none", "open_palm", "fist", "pinch", "point", "thumbs_up")

PINCH_ON, PINCH_OFF = 0.30, 0.45  # pinch distance / hand size: enter below, leave above


def to_picture(landmarks: np.ndarray, mirror: bool = False) -> np.ndarray:
    """MediaPipe's (x right, y down) to ours (x right, y up); ``mirror`` flips x for a selfie view."""
    out = landmarks.copy()
    out[:, 1] = 1.0 - landmarks[:, 1]
    if mirror:
        out[:, 0] = 1.0 - landmarks[:, 0]
    return out


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two vectors in degrees (0 = same direction)."""
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


@dataclass(frozen=True, slots=True)
class Shape:
    """The continuous features of one hand in one frame, before any smoothing."""

    x: float
    y: float
    size: float
    pinch: float
    openness: float
    roll: float  # radians, 0 = fingers up, positive = leaning to the picture's right
    extended: tuple[bool, bool, bool, bool, bool]  # thumb, index, middle, ring, pinky
    thumb_up: bool  # thumb points upward

    @property
    def fingers(self) -> int:
        return sum(self.extended)


def measure(points: np.ndarray, aspect: float) -> Shape:
    """Features of one hand from its 21 landmarks in picture coordinates (see ``to_picture``)."""
    p = points * np.array([aspect, 1.0, aspect])  # metric: units of picture height
    centre = points[list(PALM), :2].mean(axis=0)
    size = float(np.mean([np.linalg.norm(p[WRIST] - p[i]) for i in (5, 9, 17)])) + 1e-9
    reach = []
    extended = []
    for mcp, pip, _dip, tip in FINGERS:
        reach.append(np.linalg.norm(p[tip] - p[WRIST]) / (np.linalg.norm(p[mcp] - p[WRIST]) + 1e-9))
        straight = _angle(p[pip] - p[mcp], p[tip] - p[pip]) < 60.0
        extended.append(straight and np.linalg.norm(p[tip] - p[WRIST]) > np.linalg.norm(p[pip] - p[WRIST]))
    thumb_dir = p[THUMB[3]] - p[THUMB[1]]
    thumb_out = (_angle(p[3] - p[2], p[4] - p[3]) < 45.0
                 and np.linalg.norm(p[THUMB_TIP] - p[9]) > 0.9 * size)
    roll_vec = p[9] - p[WRIST]
    index, middle, ring, pinky = (bool(e) for e in extended)
    return Shape(
        x=float(centre[0]), y=float(centre[1]), size=size,
        pinch=float(np.linalg.norm(p[THUMB_TIP] - p[INDEX_TIP]) / size),
        openness=float(np.clip((np.mean(reach) - 1.0) / 0.8, 0.0, 1.0)),
        roll=math.atan2(float(roll_vec[0]), float(roll_vec[1])),
        extended=(bool(thumb_out), index, middle, ring, pinky),
        thumb_up=bool(thumb_dir[1] > 0.7 * np.linalg.norm(thumb_dir[:2])),
    )


def guess_gesture(shape: Shape, current: str) -> str:
    """The gesture this one frame shows; ``current`` widens the pinch band (hysteresis)."""
    thumb, *four = shape.extended
    pinch_limit = PINCH_OFF if current == "pinch" else PINCH_ON
    if shape.pinch < pinch_limit and any(four[1:]):
        return "pinch"
    if thumb and shape.thumb_up and not any(four):
        return "thumbs_up"
    if four[0] and not any(four[1:]):
        return "point"
    if (sum(four) >= 3 and thumb) or all(four):
        return "open_palm"
    if not any(four) and not (thumb and shape.thumb_up):
        return "fist"
    return "none"

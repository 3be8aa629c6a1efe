"""MediaPipe hand landmarks behind one small interface.

Two backends: the legacy ``mediapipe.solutions.hands.Hands``, whose models ship inside the
0.10.21 wheel (works offline), and the Tasks ``HandLandmarker`` for a user's ``.task`` file.
Both take an RGB frame and give ``RawHand``s in MediaPipe's own normalised image coordinates
(x right, y down, z depth relative to the wrist).

Handedness: frames go in as the camera or file gives them, unmirrored. The legacy docstring
says its labels assume a mirrored selfie image, but with mediapipe 0.10.21 on unmirrored
pictures the labels name the performer's real hand (``thumb_up.jpg``, a right hand, is
"Right"; ``hand_left.jpg`` is "Left"), so labels are used as given. Mirroring for a
selfie-style view is done afterwards on the x axis only (``GestureTracker(mirror=True)``),
and never changes which hand is which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livernn.errors import LivernnError
from livernn.gesture import deps


@dataclass(frozen=True, slots=True)
class RawHand:
    landmarks: np.ndarray  # (21, 3) float: x, y in 0..1 of width/height (y down), z
    label: str  # "left" or "right" as MediaPipe classified this frame
    score: float  # handedness confidence 0..1


class LegacyHands:
    """``mediapipe.solutions.hands.Hands``: the bundled lite (0) or full (1) landmark model."""

    def __init__(self, model_complexity: int = 0, static: bool = False, max_hands: int = 2,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        check_settings(model_complexity, max_hands, min_detection_confidence, min_tracking_confidence)
        mp = deps.mediapipe()
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=static, max_num_hands=max_hands, model_complexity=model_complexity,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)

    def detect(self, rgb: np.ndarray, t: float) -> list[RawHand]:
        result = self._hands.process(rgb)
        if not result.multi_hand_landmarks:
            return []
        hands = []
        for marks, handed in zip(result.multi_hand_landmarks, result.multi_handedness, strict=True):
            best = handed.classification[0]
            points = np.array([(p.x, p.y, p.z) for p in marks.landmark], dtype=np.float64)
            hands.append(RawHand(points, best.label.lower(), float(best.score)))
        return hands

    def close(self) -> None:
        self._hands.close()


class TaskHands:
    """The Tasks ``HandLandmarker`` on a ``.task`` model bundle (video mode, or image mode for stills).

    Its handedness names come from the bundle's own label map.
    """

    def __init__(self, task_file: str | Path, static: bool = False, max_hands: int = 2,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        path = Path(task_file)
        if not path.is_file():
            raise LivernnError(f"hand model file {str(path)!r} does not exist (a MediaPipe .task bundle)")
        mp = deps.mediapipe()
        vision = deps.mediapipe_vision()
        options = vision.HandLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE if static else vision.RunningMode.VIDEO,
            num_hands=max_hands, min_hand_detection_confidence=min_detection_confidence,
            min_hand_presence_confidence=min_tracking_confidence,
            min_tracking_confidence=min_tracking_confidence)
        try:
            self._landmarker = vision.HandLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise LivernnError(f"hand model file {str(path)!r} is not a usable HandLandmarker .task bundle: "
                               f"{str(exc).splitlines()[0]}") from None
        self._mp = mp
        self._static = static
        self._last_ms = -1

    def detect(self, rgb: np.ndarray, t: float) -> list[RawHand]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._static:
            result = self._landmarker.detect(image)
        else:
            self._last_ms = max(self._last_ms + 1, int(t * 1000))  # video mode needs rising stamps
            result = self._landmarker.detect_for_video(image, self._last_ms)
        return [RawHand(np.array([(p.x, p.y, p.z) for p in marks], dtype=np.float64),
                        handed[0].category_name.lower(), float(handed[0].score))
                for marks, handed in zip(result.hand_landmarks, result.handedness, strict=True)]

    def close(self) -> None:
        self._landmarker.close()


def check_settings(model_complexity: int, max_hands: int, min_detection_confidence: float,
                   min_tracking_confidence: float) -> None:
    """Refuse bad model settings in one line, before a camera is opened or a model loaded."""
    if model_complexity not in (0, 1) or isinstance(model_complexity, bool):
        raise LivernnError(f"model complexity must be 0 (lite) or 1 (full), got {model_complexity!r}")
    if isinstance(max_hands, bool) or not isinstance(max_hands, int) or not 1 <= max_hands <= 4:
        raise LivernnError(f"max_hands must be a whole number 1..4, got {max_hands!r}")
    for name, value in (("min_detection_confidence", min_detection_confidence),
                        ("min_tracking_confidence", min_tracking_confidence)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise LivernnError(f"{name} must be a number 0..1, got {value!r}")


def open_landmarker(model_complexity: int = 0, task_file: str | Path | None = None, static: bool = False,
                    max_hands: int = 2, min_detection_confidence: float = 0.5,
                    min_tracking_confidence: float = 0.5) -> LegacyHands | TaskHands:
    """The legacy bundled model, or the Tasks API when a ``.task`` file is given."""
    if task_file:
        return TaskHands(task_file, static, max_hands, min_detection_confidence, min_tracking_confidence)
    return LegacyHands(model_complexity, static, max_hands, min_detection_confidence, min_tracking_confidence)

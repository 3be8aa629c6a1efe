"""Lazy imports of the optional hand-tracking stack.

MediaPipe and OpenCV come with the ``gesture`` extra, and importing MediaPipe costs about a
second, so nothing imports them until a tracker or a frame source is built. A missing package
becomes a one-line ``LivernnError`` that says what to install
(``livernn.errors.require_extra``).
"""

from __future__ import annotations

from types import ModuleType

from livernn.errors import require_extra


def _require(module: str, what: str) -> ModuleType:
    return require_extra(module, what, "gesture")


def mediapipe() -> ModuleType:
    return _require("mediapipe", "hand tracking")


def mediapipe_vision() -> ModuleType:
    """The Tasks vision API (``HandLandmarker``), present in mediapipe 0.10 and later."""
    mediapipe()
    return _require("mediapipe.tasks.python.vision", "a .task hand model")


def cv2() -> ModuleType:
    return _require("cv2", "reading cameras, videos and images")

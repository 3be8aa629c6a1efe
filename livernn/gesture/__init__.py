"""Hand-gesture control: MediaPipe hand landmarks -> smoothed features -> ``hand.*`` controls.

Sources (camera, video, stills) feed a ``GestureTracker``; per hand it derives position,
height, size, pinch, openness, finger count, roll, speed and a discrete gesture, keeps each
hand's identity while it stays in view, smooths with One Euro filters on frame times and
publishes on the ControlBus (and over OSC). MediaPipe and OpenCV load only when used.
"""

from livernn.gesture.features import GESTURES
from livernn.gesture.hands import DEFAULT_FILTERS, HandFeatures
from livernn.gesture.publish import WEKINATOR_INPUTS, WEKINATOR_PORT
from livernn.gesture.sources import ArraySource, CameraSource, Frame, FrameSource, ImageSource, VideoSource, open_source
from livernn.gesture.tracker import GestureFrame, GestureTracker, TrackerStats

__all__ = [
    "DEFAULT_FILTERS", "GESTURES", "WEKINATOR_INPUTS", "WEKINATOR_PORT", "ArraySource", "CameraSource", "Frame",
    "FrameSource", "GestureFrame", "GestureTracker", "HandFeatures", "ImageSource", "TrackerStats", "VideoSource",
    "open_source",
]

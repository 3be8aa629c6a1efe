"""Where frames come from: a camera, a video file, still images, or frames already in memory.

Every frame carries two times. ``t`` is the media time the filters run on (the camera's
monotonic clock at capture; the frame's position in a video; the image's index for stills),
so smoothing behaves the same whether a video is replayed in real time or as fast as possible.
``arrived`` is ``time.monotonic()`` when the frame was handed over, the start of the
frame-to-parameter latency.

A source is an iterable of frames with ``close()``. ``live`` sources (camera, real-time replay)
produce frames whether or not anyone keeps up, so the tracker drops stale ones; the others
wait for the tracker, so a fast run sees every frame.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livernn.errors import LivernnError
from livernn.gesture import deps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray  # H x W x 3 uint8, BGR as OpenCV reads it
    t: float  # media time in seconds (drives the filters)
    index: int
    arrived: float  # time.monotonic() when the frame was handed over


class FrameSource(ABC):
    """Base of the sources: iterate for frames, ``close()`` to release the device or file."""

    live = False  # frames come at their own pace; stale ones should be dropped
    static = False  # unrelated stills: detect afresh in every frame, no identities across
    fps: float | None = None

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Frames in order, each with its media time."""

    def close(self) -> None:
        """Release the device or file; the base has nothing to release."""


class CameraSource(FrameSource):
    """An OpenCV capture device by index (0, 1, …) or device path (``/dev/video2``)."""

    live = True

    def __init__(self, device: int | str = 0, width: int | None = None, height: int | None = None) -> None:
        cv2 = deps.cv2()
        self.device = device
        quiet = cv2.setLogLevel(0)  # OpenCV's own multi-line warnings would bury the one-line error
        try:
            self._cap = cv2.VideoCapture(device)
        finally:
            cv2.setLogLevel(quiet)
        if not self._cap.isOpened():
            self._cap.release()
            tried = f"/dev/video{device}" if isinstance(device, int) else str(device)
            raise LivernnError(f"camera {device!r} could not be opened (tried {tried} with OpenCV); "
                               "give another --camera index or device path")
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue would add frames of latency
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self._cap.isOpened():
            ok, image = self._cap.read()
            now = time.monotonic()
            if not ok:
                return
            yield Frame(image, now, index, now)
            index += 1

    def close(self) -> None:
        self._cap.release()


def _paced(frames: Iterator[tuple[np.ndarray, float]], realtime: bool) -> Iterator[Frame]:
    """Stamp frames with their arrival time, sleeping until each is due when ``realtime``."""
    start = time.monotonic()
    first: float | None = None
    for index, (image, t) in enumerate(frames):
        if realtime:
            first = t if first is None else first
            delay = start + (t - first) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield Frame(image, t, index, time.monotonic())


class VideoSource(FrameSource):
    """A video file, replayed at its own frame rate (``realtime``) or as fast as it is read.

    Frame times come from the frame index and the file's fps (OpenCV's position in
    milliseconds where the file states no fps), so they are exact and evenly spaced.
    """

    def __init__(self, path: str | Path, realtime: bool = False) -> None:
        cv2 = deps.cv2()
        self.path = Path(path)
        if not self.path.is_file():
            raise LivernnError(f"video file {str(self.path)!r} does not exist")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise LivernnError(f"video file {str(self.path)!r} could not be opened by OpenCV")
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None
        self.live = realtime
        self._realtime = realtime

    def _read(self) -> Iterator[tuple[np.ndarray, float]]:
        cv2 = deps.cv2()
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok:
                return
            t = index / self.fps if self.fps else self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield image, t
            index += 1

    def __iter__(self) -> Iterator[Frame]:
        return _paced(self._read(), self._realtime)

    def close(self) -> None:
        self._cap.release()


class ImageSource(FrameSource):
    """Still pictures, one frame each; hands are detected afresh in every one."""

    static = True

    def __init__(self, paths: Sequence[str | Path] | str | Path) -> None:
        cv2 = deps.cv2()
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise LivernnError("no image files given")
        self.images = []
        for path in paths:
            image = cv2.imread(str(path)) if Path(path).is_file() else None
            if image is None:
                raise LivernnError(f"image file {str(path)!r} does not exist or is not a picture OpenCV reads")
            self.images.append(image)

    def __iter__(self) -> Iterator[Frame]:
        for index, image in enumerate(self.images):
            yield Frame(image, float(index), index, time.monotonic())


class ArraySource(FrameSource):
    """Frames already decoded (benchmarks, tests, a clip held in memory), at ``fps``."""

    def __init__(self, images: Sequence[np.ndarray], fps: float = 25.0, realtime: bool = False) -> None:
        if fps <= 0:
            raise LivernnError(f"fps must be > 0, got {fps}")
        self.images = list(images)
        self.fps = fps
        self._fps = fps  # never None here, unlike FrameSource.fps
        self.live = realtime
        self._realtime = realtime

    def __iter__(self) -> Iterator[Frame]:
        return _paced(((image, i / self._fps) for i, image in enumerate(self.images)), self._realtime)


def open_source(spec: FrameSource | int | str | Path, realtime: bool = False) -> FrameSource:
    """A source from a plain value, as a patch file or the command line gives it.

    An int or a string of digits is a camera index, ``/dev/…`` a camera device, a picture's
    suffix means a still image, anything else a video file (``realtime`` replays it at its fps).
    """
    if isinstance(spec, FrameSource):
        return spec
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CameraSource(int(spec))
    text = str(spec)
    if text.startswith("/dev/"):
        return CameraSource(text)
    if Path(text).suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(text)
    return VideoSource(text, realtime=realtime)

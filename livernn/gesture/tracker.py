"""GestureTracker: frames in, hand features out on the bus, off the musical clock.

``start()`` runs two threads. The reader pulls frames from the source into a one-frame slot;
the worker takes the newest frame, tracks it and publishes. With a live source (camera,
real-time replay) a frame that arrives while the worker is busy replaces the one waiting, so
a slow frame costs a dropped frame, never a queue of stale ones; with a file read as fast as
possible the reader waits instead, so every frame is seen. MediaPipe's graph runs in its own
C++ threads and the Python work per frame is a fraction of a millisecond, so a timer thread
(the engine's sender) wakes as punctually beside the tracker as beside raw MediaPipe
(bench/bench_gesture.py measures it); the engine only ever reads values from the bus.

``frames()`` does the same work synchronously in the caller's thread (tests, benchmarks, a
script over a file). Constructor arguments are plain values so a patch file's
``[gesture]`` table maps onto them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from livernn.controls.bus import ControlBus
from livernn.errors import LivernnError
from livernn.gesture import deps
from livernn.gesture.hands import HandFeatures, HandTracks
from livernn.gesture.landmarks import check_settings, open_landmarker
from livernn.gesture.publish import Publisher
from livernn.gesture.sources import Frame, FrameSource, open_source

# patch-file key -> constructor argument
TABLE_KEYS = {"source": "source", "complexity": "model_complexity", "task": "task_file", "filters": "filters",
              "osc": "osc", "wekinator": "wekinator", "max_hands": "max_hands", "mirror": "mirror",
              "realtime": "realtime", "hold_frames": "hold_frames",
              "min_detection_confidence": "min_detection_confidence",
              "min_tracking_confidence": "min_tracking_confidence"}


@dataclass(frozen=True, slots=True)
class GestureFrame:
    """What one frame gave: its hands and how long it took from arrival to the bus."""

    index: int
    t: float  # media time of the frame
    hands: list[HandFeatures]
    latency: float  # seconds from the frame's arrival to its values being on the bus


@dataclass(frozen=True, slots=True)
class TrackerStats:
    frames: int  # frames tracked
    dropped: int  # stale frames replaced before they were tracked (live sources only)
    errors: int  # frames whose tracking raised (the tracker carries on)
    fps: float  # tracked frames per second of wall time
    latency_p50_ms: float  # frame arrival -> values on the bus
    latency_p99_ms: float


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class GestureTracker:
    """Hand tracking from a camera, video or pictures, published as ``hand.*`` controls.

    ``source``: camera index, ``/dev/videoN``, a video or picture path, or a ``FrameSource``.
    ``realtime`` replays a video at its own frame rate (as a camera would deliver it).
    ``filters``: per-feature One Euro settings, e.g. ``{"pinch": {"mincutoff": 1.0, "beta": 0.5}}``.
    ``task_file``: a MediaPipe ``.task`` bundle for the Tasks HandLandmarker instead of the
    bundled model. ``mirror`` flips x for a selfie view (handedness is unaffected).
    """

    def __init__(self, source: FrameSource | int | str | Path, bus: ControlBus | None = None,
                 osc: str | None = None, wekinator: str | bool | None = None, model_complexity: int = 0,
                 filters: Mapping[str, Mapping[str, float]] | None = None, task_file: str | Path | None = None,
                 max_hands: int = 2, mirror: bool = False, realtime: bool = False, hold_frames: int = 3,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 on_frame: Callable[[GestureFrame], None] | None = None) -> None:
        check_settings(model_complexity, max_hands, min_detection_confidence, min_tracking_confidence)
        self.bus = bus
        self.tracks = HandTracks(filters, hold_frames, mirror)
        self.publisher = Publisher(bus, osc, wekinator)
        self.source = open_source(source, realtime=realtime)
        if self.source.static:
            self.tracks.hold = 1  # each still stands alone: nothing to wait for
        try:
            self._landmarker = open_landmarker(model_complexity, task_file, self.source.static, max_hands,
                                               min_detection_confidence, min_tracking_confidence)
        except BaseException:
            self.source.close()
            raise
        self._cv2 = deps.cv2()
        self.on_frame = on_frame
        self.latest: GestureFrame | None = None
        self.frame: Frame | None = None  # the frame being published, then behind ``latest``
        self.last_error: Exception | None = None
        self._latencies: deque[float] = deque(maxlen=2000)
        self._count = self._dropped = self._errors = 0
        self._first: float | None = None
        self._last = 0.0
        self._slot: Frame | None = None
        self._done = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._max_frames: int | None = None
        self._closed = False

    @classmethod
    def from_table(cls, table: Mapping[str, object], bus: ControlBus | None = None) -> GestureTracker:
        """Build from a patch file's ``[gesture]`` table; its keys are ``TABLE_KEYS``.

        ``complexity`` and ``task`` are the short patch-file names of ``model_complexity`` and
        ``task_file``; every other key is the constructor argument of the same name.
        """
        unknown = sorted(set(table) - set(TABLE_KEYS))
        if unknown:
            raise LivernnError(f"unknown [gesture] setting {unknown[0]!r}; allowed: {', '.join(TABLE_KEYS)}")
        if "source" not in table:
            raise LivernnError("[gesture] needs source = a camera index, /dev/videoN, or a video or picture file")
        # Patch-file values of any type: the constructor checks each one.
        kwargs: dict[str, Any] = {TABLE_KEYS[key]: value for key, value in table.items()}
        return cls(bus=bus, **kwargs)

    # --- one frame ---------------------------------------------------------------------

    def process(self, frame: Frame) -> GestureFrame:
        """Track one frame, update identities and filters, publish; returns what it found."""
        started = time.monotonic()
        self._first = started if self._first is None else self._first
        rgb = self._cv2.cvtColor(frame.image, self._cv2.COLOR_BGR2RGB)
        raw = self._landmarker.detect(rgb, frame.t)
        if self.source.static:
            self.tracks.reset()
        height, width = frame.image.shape[:2]
        hands = self.tracks.update(raw, frame.t, width / height)
        self.frame = frame
        self.publisher.publish(hands)
        self._last = time.monotonic()
        result = GestureFrame(frame.index, frame.t, hands, self._last - frame.arrived)
        self._latencies.append(result.latency)
        self._count += 1
        self.latest = result
        if self.on_frame is not None:
            self.on_frame(result)
        return result

    def warmup(self) -> None:
        """Run the model once on a blank picture, so the first real frame does not pay its
        start-up (60-160 ms measured here); ``start()`` does this in its own thread."""
        self._landmarker.detect(np.zeros((64, 64, 3), np.uint8), -1.0)

    def frames(self, max_frames: int | None = None) -> Iterator[GestureFrame]:
        """Track every frame of the source in this thread, as fast as it comes."""
        for n, frame in enumerate(self.source):
            if max_frames is not None and n >= max_frames:
                return
            yield self.process(frame)

    @property
    def stats(self) -> TrackerStats:
        latencies = list(self._latencies)
        span = self._last - self._first if self._first is not None else 0.0
        return TrackerStats(self._count, self._dropped, self._errors,
                            (self._count - 1) / span if span > 0 else 0.0,
                            1000 * _percentile(latencies, 0.5), 1000 * _percentile(latencies, 0.99))

    # --- in the background --------------------------------------------------------------

    def start(self, max_frames: int | None = None) -> GestureTracker:
        """Track in background threads until ``stop()``, the source ends, or ``max_frames``.

        The model warms up first, then frames start flowing, so a real-time replay begins
        with a model that is ready.
        """
        if self._threads:
            return self
        self._max_frames = max_frames
        self._threads = [threading.Thread(target=self._work, name="gesture-tracker", daemon=True),
                         threading.Thread(target=self._read, name="gesture-reader", daemon=True)]
        self._threads[0].start()
        return self

    def _read(self) -> None:
        for frame in self.source:
            with self._cond:
                if self._slot is not None and not self.source.live:
                    self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
                if self._stop.is_set():
                    break
                if self._slot is not None:
                    self._dropped += 1  # latest frame wins
                self._slot = frame
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def _work(self) -> None:
        self.warmup()
        if self._stop.is_set():
            return
        self._threads[1].start()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._slot is not None or self._done or self._stop.is_set())
                frame, self._slot = self._slot, None
                self._cond.notify_all()
            if frame is None or self._stop.is_set():
                return
            try:
                self.process(frame)
            except Exception as exc:  # one bad frame must not end tracking mid-show
                self._errors += 1
                self.last_error = exc
            if self._max_frames is not None and self._count >= self._max_frames:
                with self._cond:
                    self._stop.set()
                    self._cond.notify_all()  # a reader waiting for the slot must see it
                return

    @property
    def running(self) -> bool:
        return bool(self._threads) and self._threads[0].is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source is used up (or ``max_frames`` tracked); False on timeout."""
        if self._threads:
            self._threads[0].join(timeout)
        return not self.running

    def stop(self) -> None:
        """Stop the threads and release the source and the model."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread.ident is not None:  # the reader never starts if stopped during warm-up
                thread.join(timeout=5.0)
        if not self._closed:
            self._closed = True
            self.source.close()
            self._landmarker.close()

    def __enter__(self) -> GestureTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A patch's ``[gesture]`` table: hand tracking started, changed and stopped with the show.

The patch loader imports this module only when a patch has the table (livernn.patch.sections),
so a patch without it never loads MediaPipe. ``check_table`` finds every problem without
opening a camera or loading a model, so ``livernn check`` works on a machine with no camera;
``start_tracker`` builds a ``GestureTracker`` on the session's bus and runs it in its own threads.
The engine only ever reads the values the tracker publishes, so tracking never holds a note.

A video file (``source = "rehearsal.mp4"``, relative to the patch) is replayed at its own
frame rate unless ``realtime = false``: in a show it stands in for a camera.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from livernn.errors import LivernnError
from livernn.gesture.hands import filter_settings
from livernn.gesture.landmarks import check_settings
from livernn.gesture.publish import WEKINATOR_PORT, parse_address
from livernn.gesture.tracker import TABLE_KEYS
from livernn.patch.sections import Problems, Section, register_section

BOOLS = ("mirror", "realtime")
# key -> its position among check_settings() arguments (the others get their defaults)
MODEL_SETTINGS = {"complexity": 0, "max_hands": 1, "min_detection_confidence": 2, "min_tracking_confidence": 3}
SETTING_DEFAULTS = (0, 2, 0.5, 0.5)


def _is_camera(source: Any) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and (source.isdigit() or source.startswith("/dev/")))


def _check_source(source: Any) -> str | None:
    if isinstance(source, bool) or not isinstance(source, int | str) or source == "" \
            or (isinstance(source, int) and source < 0):
        return f"must be a camera index (0, 1, ...), \"/dev/videoN\" or a video or picture file, got {source!r}"
    return None


def _check_one(key: str, value: Any) -> str | None:
    """What is wrong with one setting, or None."""
    if key == "source":
        return _check_source(value)
    if key in BOOLS:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if key == "hold_frames":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return None if ok else f"must be a whole number >= 1 (frames a new gesture must hold), got {value!r}"
    if key == "task":
        return None if isinstance(value, str) and value else f"must be a .task file name, got {value!r}"
    try:
        if key in MODEL_SETTINGS:
            settings: list[Any] = list(SETTING_DEFAULTS)  # the value is unchecked patch input
            settings[MODEL_SETTINGS[key]] = value
            check_settings(*settings)
        elif key == "osc":
            if not isinstance(value, str):
                return f"must be \"HOST:PORT\", got {value!r}"
            parse_address(value)
        elif key == "wekinator" and not isinstance(value, bool):
            if not isinstance(value, str):
                return f"must be true (127.0.0.1:{WEKINATOR_PORT}) or \"HOST:PORT\", got {value!r}"
            parse_address(value, WEKINATOR_PORT)
    except LivernnError as exc:
        return str(exc)
    return None


def check_table(table: dict[str, Any]) -> Problems:
    """Every problem of a ``[gesture]`` table, as (key path, message) pairs."""
    problems: Problems = []
    allowed = tuple(TABLE_KEYS)
    if "source" not in table:
        problems.append(((), "needs source = a camera index (0), \"/dev/videoN\", or a video or picture file"))
    for key, value in table.items():
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(((key,), f"unknown key; {hint}allowed: {', '.join(allowed)}"))
        elif key == "filters":
            problems += _check_filters(value)
        elif (message := _check_one(key, value)) is not None:
            problems.append(((key,), message))
    return problems


def _check_filters(filters: Any) -> Problems:
    if not isinstance(filters, dict):
        return [(("filters",), "must be a table of feature = { mincutoff, beta, dcutoff }")]
    problems: Problems = []
    for feature, params in filters.items():
        try:
            filter_settings({feature: params})
        except LivernnError as exc:
            problems.append((("filters", feature), str(exc)))
    return problems


def file_keys(table: dict[str, Any]) -> tuple[str, ...]:
    """The settings that name files relative to the patch: a video or picture source, a model."""
    keys = []
    source = table.get("source")
    if isinstance(source, str) and source and not _is_camera(source):
        keys.append("source")
    if isinstance(table.get("task"), str) and table["task"]:
        keys.append("task")
    return tuple(keys)


def start_tracker(session: Any, runtime: Any, table: dict[str, Any]) -> Callable[[], None]:
    """Open the source and the hand model, track in the tracker's own threads; returns stop.

    A camera that cannot be opened raises a one-line LivernnError here, before anything
    runs. On every control tick the tracker's state goes on the bus, ``gesture.frames``
    (frames tracked) and ``gesture.running`` (1, or 0 once the source ended or failed), so
    a trigger can act on a lost camera; that, and a frame that fails, is also reported once
    through the runtime's warnings. The voices keep the last values the hand gave them.
    """
    from livernn.gesture.tracker import GestureTracker

    try:
        tracker = GestureTracker.from_table({"realtime": True, **table}, session.bus).start()
    except LivernnError as exc:
        raise LivernnError(f"[gesture]: {exc}") from None
    seen = {"errors": 0, "frames": -1, "running": -1}  # running: -1 until first seen, then 0/1

    def watch(now: float) -> None:
        stats, running = tracker.stats, tracker.running
        if stats.frames != seen["frames"]:
            seen["frames"] = stats.frames
            session.bus.publish("gesture.frames", float(stats.frames), now)
        if stats.errors > seen["errors"]:
            seen["errors"] = stats.errors
            runtime.warn(f"gesture: tracking failed on a frame: {tracker.last_error}")
        if int(running) != seen["running"]:
            seen["running"] = int(running)
            session.bus.publish("gesture.running", float(running), now)
            if not running:
                runtime.warn(f"gesture: source {table['source']!r} ended after {stats.frames} frames; "
                             "the voices keep the hand's last values")

    runtime.tickers.append(watch)

    def stop() -> None:
        if watch in runtime.tickers:
            runtime.tickers.remove(watch)
        tracker.stop()

    return stop


register_section(Section("gesture", validate=check_table, start=start_tracker, files=file_keys))

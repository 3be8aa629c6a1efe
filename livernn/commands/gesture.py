"""``livernn gesture``: track hands on their own and print (or send) the features.

Useful to check a camera and lighting before a show, to feed Max/TouchOSC/Wekinator over
OSC without the rest of livernn, and to see what a patch's ``hand.*`` sources will read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from livernn.errors import LivernnError

if TYPE_CHECKING:
    from livernn.gesture import GestureFrame, GestureTracker


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gesture", help="track hands from a camera, video or picture and print the features",
                              description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", metavar="N", help="camera index (0, 1, …) or device path (/dev/video2)")
    src.add_argument("--video", metavar="FILE", help="video file, replayed at its own frame rate (see --fast)")
    src.add_argument("--image", metavar="FILE", nargs="+", help="one or more still pictures")
    p.add_argument("--osc", metavar="HOST:PORT", help="send /hand/<side>/<feature> and landmarks over OSC")
    p.add_argument("--wekinator", metavar="HOST:PORT", nargs="?", const=True, default=None,
                   help="send /wek/inputs (default 127.0.0.1:6448)")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--complexity", type=int, choices=(0, 1), default=0, help="hand model: 0 lite (fast), 1 full")
    p.add_argument("--task", metavar="FILE", help="a MediaPipe hand_landmarker .task file (Tasks API)")
    p.add_argument("--mirror", action="store_true", help="mirror x (selfie view); handedness is unchanged")
    p.add_argument("--fast", action="store_true", help="read a video as fast as possible, not in real time")
    p.add_argument("--json", action="store_true", help="one JSON object per frame, landmarks included")
    p.add_argument("--preview", action="store_true", help="show the picture with landmarks (needs a display)")
    p.set_defaults(func=run)


def _print_frame(frame: GestureFrame, as_json: bool) -> None:
    if as_json:
        line = json.dumps({"index": frame.index, "t": round(frame.t, 4), "latency_ms": round(1000 * frame.latency, 2),
                           "hands": [h.as_dict() for h in frame.hands]})
    else:
        hands = "  ".join(f"{h.side}#{h.id} {h.gesture:<9} x={h.x:.2f} height={h.y:.2f} pinch={h.pinch:.2f} "
                          f"open={h.openness:.2f} fingers={h.fingers} roll={h.roll:+.2f}" for h in frame.hands)
        line = f"{frame.index:5d} t={frame.t:8.3f}  {hands or 'no hand'}"
    print(line, flush=True)


def _check_display() -> None:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LivernnError("--preview needs a display (no DISPLAY or WAYLAND_DISPLAY here); "
                           "leave it out to run headless")


def _preview(tracker: GestureTracker) -> None:
    """Show frames with landmarks in this (main) thread while the tracker runs in its own."""
    from livernn.gesture import deps

    cv2 = deps.cv2()
    try:
        while tracker.running:
            frame, latest = tracker.frame, tracker.latest
            if frame is not None and latest is not None:
                image = frame.image.copy()
                h, w = image.shape[:2]
                for hand in latest.hands:
                    for x, y, _z in hand.landmarks:
                        px = (1 - x) if tracker.tracks.mirror else x
                        cv2.circle(image, (int(px * w), int((1 - y) * h)), 3, (0, 255, 0), -1)
                cv2.imshow("livernn gesture", cv2.flip(image, 1) if tracker.tracks.mirror else image)
            if cv2.waitKey(15) & 0xFF in (27, ord("q")):
                break
    except cv2.error as exc:
        raise LivernnError(f"--preview: this OpenCV cannot open a window ({str(exc).splitlines()[-1]})") from None
    finally:
        cv2.destroyAllWindows()


def run(args: argparse.Namespace) -> int:
    from livernn.gesture import GestureTracker, ImageSource

    if args.frames is not None and args.frames < 1:
        raise LivernnError(f"--frames must be >= 1, got {args.frames}")
    if args.preview:
        _check_display()
    if args.camera is not None:
        source = int(args.camera) if args.camera.isdigit() else args.camera
    else:
        source = args.video or ImageSource(args.image)
    tracker = GestureTracker(source, osc=args.osc, wekinator=args.wekinator, model_complexity=args.complexity,
                             task_file=args.task, mirror=args.mirror, realtime=bool(args.video) and not args.fast,
                             on_frame=lambda f: _print_frame(f, args.json))
    with tracker:
        tracker.start(max_frames=args.frames)
        if args.preview:
            _preview(tracker)
        else:
            while not tracker.wait(0.2):
                pass
    stats = tracker.stats
    if stats.errors and not stats.frames:
        raise LivernnError(f"hand tracking failed on every frame: {tracker.last_error}")
    print(f"# {stats.frames} frames, {stats.fps:.1f} fps, latency p50 {stats.latency_p50_ms:.1f} ms "
          f"p99 {stats.latency_p99_ms:.1f} ms, dropped {stats.dropped}", file=sys.stderr)
    return 0

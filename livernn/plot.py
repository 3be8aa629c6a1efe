"""Piano-roll pictures of note arrays (matplotlib, Agg), for generate, the model card and sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livernn.errors import LivernnError


def piano_roll_png(notes: np.ndarray, path: str | Path, *, title: str = "",
                   width: float = 12.0, height: float = 4.0) -> Path:
    """Draw ``notes`` (NOTE_DTYPE) as bars of pitch over time, shaded by velocity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, ax = plt.subplots(figsize=(width, height))
    if len(notes):
        start = notes["start"].astype(float)
        dur = np.maximum(notes["duration"].astype(float), 1e-3)
        pitch = notes["pitch"].astype(float)
        boxes = [[(s, p - 0.4), (s + d, p - 0.4), (s + d, p + 0.4), (s, p + 0.4)]
                 for s, d, p in zip(start, dur, pitch)]
        shade = plt.cm.viridis(np.clip(notes["velocity"].astype(float) / 127.0, 0, 1))
        ax.add_collection(PolyCollection(boxes, facecolors=shade, edgecolors="none"))
        ax.set_xlim(0, float((start + dur).max()) * 1.01 + 1e-3)
        ax.set_ylim(pitch.min() - 2, pitch.max() + 2)
    ax.set(xlabel="seconds", ylabel="MIDI pitch", title=title or f"{len(notes)} notes")
    ax.grid(alpha=0.25)
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
    except OSError as exc:
        raise LivernnError(f"{path}: cannot write the picture ({exc.strerror or exc})") from None
    except ValueError as exc:  # matplotlib: "Format 'pgn' is not supported (supported formats: ...)"
        raise LivernnError(f"{path}: {exc}") from None
    finally:
        plt.close(fig)
    return path

"""Loss curves from ``metrics.jsonl`` (matplotlib, Agg: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path


def plot_losses(metrics_path: Path, png_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in Path(metrics_path).read_text().splitlines() if x.strip()]
    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(epochs, [r["train"]["total"] for r in rows], label="train")
    left.plot(epochs, [r["val"]["total"] for r in rows], label="val")
    left.set(xlabel="epoch", ylabel="loss per note", title="total (weighted)")
    left.legend()
    for head in ("pitch", "step", "duration", "velocity"):
        right.plot(epochs, [r["val"][head] for r in rows], label=head)
    right.set(xlabel="epoch", ylabel="val loss per note", title="per head")
    right.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return Path(png_path)

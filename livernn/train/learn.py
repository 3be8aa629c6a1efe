"""The fine-tune process behind ``learn(v)``: ``python -m livernn.train.learn REQUEST.json``.

The show's process (livernn.engine.learn) writes what the voice played (a NOTE_DTYPE
``.npy``) and a request (JSON: the model's directory, the material, the new model's
folder and name, the time budget, what it was tuned on), starts this process and reads
its stdout: JSON lines, ``{"step": n, "loss": x}`` now and then, then one
``{"done": true, ...}`` or ``{"error": "one line"}``. Nothing here touches the show.

Why a process: training holds the GIL for whole steps and fills a core, where the show's
sender and generation threads need the GIL within a millisecond. Here it runs in its own
interpreter, at the lowest CPU priority (``nice 19``, ``SCHED_OTHER`` even if it was
started from a realtime thread) with one torch thread; on a CUDA GPU the CPU side is only
kernel launches. It stops at its time budget, ends with its parent (stdin closes), and
writes the model into a hidden folder renamed into place at the end: a cancelled or failed
run leaves no half-written model behind.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOWEST = 19


def lower_priority() -> None:
    """Normal scheduling (a realtime parent's policy is inherited), then the lowest nice."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed: nice still applies
        pass
    try:
        os.nice(LOWEST - os.nice(0))
    except (AttributeError, OSError):
        pass


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _watch_parent() -> None:
    """The show's process holds our stdin open: when it ends (even killed), so do we."""
    try:
        while sys.stdin.read(4096):
            pass
    except OSError:
        pass
    os._exit(3)


def card(name: str, base: str, tuned_on: str, result: dict[str, Any], device: str) -> str:
    """The new model's card: its title line is what ``livernn models`` shows."""
    return (f"# {name} — {base} fine-tuned on {tuned_on}\n\n"
            f"Tuned live by `learn` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC) from `{base}`: "
            f"{result['steps']} steps in {result['seconds']:.0f} s on {device}. NLL per note on that "
            f"material {result['before']:.3f} before, {result['after']:.3f} after.\n")


def run(request: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from livernn.errors import LivernnError
    from livernn.model.checkpoint import read_model, write_model
    from livernn.notes import NOTE_DTYPE

    # The model and the material first (numpy only): a broken file is said in a moment,
    # not after the seconds torch takes to import.
    cfg, meta, arrays, directory = read_model(Path(request["model"]))
    notes = np.load(request["notes"], allow_pickle=False)
    if notes.dtype != NOTE_DTYPE:
        raise LivernnError(f"{request['notes']}: not a note array")

    import torch

    from livernn.model.net import NoteLSTM
    from livernn.train.finetune import finetune
    from livernn.train.loop import pick_device

    torch.set_num_threads(1)
    device = pick_device(str(request.get("device", "auto")))
    model = NoteLSTM(cfg)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    model.to(device)
    last = [0.0]

    def progress(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            say({"step": step, "loss": round(loss, 4)})

    steps = request.get("steps")
    result = finetune(model, [notes], seconds=float(request["seconds"]), steps=None if steps is None else int(steps),
                      lr=float(request.get("lr", 1e-3)), device=device, progress=progress)
    out = Path(request["out"])
    name = str(request["name"])
    base = str(meta.get("name") or directory.name)
    tuned_on = str(request["tuned_on"])
    new_meta = {k: v for k, v in meta.items() if k != "metrics"}
    new_meta.update(name=name, base=base, tuned_on=tuned_on,
                    finetune={**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()},
                              "device": str(device), "notes": len(notes), "from": str(directory)})
    part = out.with_name(f".{out.name}.part-{os.getpid()}")
    write_model(part, cfg, model.export_state(), new_meta)
    (part / "README.md").write_text(card(name, base, tuned_on, result, str(device)), encoding="utf-8")
    if out.exists():
        raise LivernnError(f"{out} exists already; the tuned model is left in {part}")
    os.replace(part, out)
    return {**result, "path": str(out), "device": str(device)}


def main(argv: list[str] | None = None) -> int:
    lower_priority()
    args = sys.argv[1:] if argv is None else argv
    threading.Thread(target=_watch_parent, daemon=True).start()
    try:
        request = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        result = run(request)
    except Exception as exc:  # every failure is one line for the show; the traceback goes to stderr
        from livernn.errors import LivernnError

        if not isinstance(exc, LivernnError):
            traceback.print_exc()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        say({"error": reason if isinstance(exc, LivernnError) else f"{type(exc).__name__}: {reason}"})
        return 2
    say({"done": True, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``status()`` report as plain text: one header line, then a table per part.

It belongs to the report (``livernn.api.status`` returns a dict that prints itself with
it), not to the REPL: the api knows no REPL (tests/test_layers.py). The REPL's live
status line is ``livernn.repl.status.Toolbar``.
"""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain text table with a header; missing cells are blank."""
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def changed_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that differ from their defaults (what the performer has turned)."""
    from livernn.engine import PARAM_SPECS

    return {k: v for k, v in params.items() if k in PARAM_SPECS and PARAM_SPECS[k].default != v}


def format_status(status: dict[str, Any]) -> str:
    """The ``status()`` report as text: a header line, then one table per part."""
    head = (f"{'playing' if status.get('playing') else 'stopped'} at {_cell(status.get('bpm'))} BPM, "
            f"beat {_cell(status.get('beat'))}")
    if status.get("recording"):
        head += f", recording to {status['recording']}"
    parts = [head]
    voices = status.get("voices", {})
    if voices:
        rows, turned = [], []
        for name, info in voices.items():
            state = info.get("failed") or ("swap pending" if info.get("swap_pending") else "playing")
            if info.get("params", {}).get("mute"):
                state = "muted"
            rows.append({"voice": name, "model": info.get("model", ""), "ch": info.get("channel", ""),
                         "notes": info.get("notes", ""), "late": info.get("late", ""), "state": state})
            params = changed_params(info.get("params", {}))
            params.pop("mute", None)
            turned.append(f"  {name}: " + (", ".join(f"{k}={_cell(v)}" for k, v in params.items()) or "defaults"))
        parts.append(table(rows, ["voice", "model", "ch", "notes", "late", "state"]))
        parts.append("params (not default):\n" + "\n".join(turned))
    else:
        parts.append("no voices yet: voice('lead') starts one")
    outputs = status.get("outputs", {})
    parts.append(table([{"output": k, "where": v} for k, v in outputs.items()], ["output", "where"])
                 if outputs else "no outputs yet: midi('synth') opens one")
    if "inputs" in status:  # what listens where (livernn.api.status adds it)
        inputs = status["inputs"]
        parts.append(table(inputs, ["input", "where", "commands", "opened by"]) if inputs
                     else "no inputs: nothing listens (listen_osc(), listen_midi('name'))")
    mappings = status.get("mappings", [])  # what patch() and [[mappings]] wired (livernn.api.status)
    parts.append("mappings: " + ("; ".join(mappings) if mappings else "none"))
    late = status.get("send_late_ms", {})
    timing = [f"open notes {status.get('open_notes', 0)}"]
    timing += [f"send lateness {k} {_cell(v)} ms" for k, v in late.items()]
    for name, late_ms in status.get("output_late_ms", {}).items():  # the MIDI sender process's own
        timing.append(f"{name} sent late p50 {_cell(late_ms['p50'])} / p99 {_cell(late_ms['p99'])} ms")
    if "onset_error_ms" in status:
        timing += [f"onset error {k} {_cell(v)} ms" for k, v in status["onset_error_ms"].items()]
    parts.append("timing: " + ", ".join(timing))
    for name, why in status.get("not_delivering", {}).items():
        parts.append(f"NOT DELIVERING: output {name}: {why}")
    for job in status.get("learning", []):  # learn(v): fine-tunes running, and how the last ones ended
        if job.get("message"):
            parts.append(f"learn: {job['message']}")
        else:
            parts.append(f"learn {job['voice']} -> {job['model']}: {job['state']}, {_cell(job['seconds'])} s "
                         f"of {_cell(job['budget'])}, step {job['step']}, on {job['notes']} notes")
    for error in status.get("errors", []):
        parts.append(f"error: {error}")
    return "\n".join(parts)

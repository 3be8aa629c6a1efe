"""Playing with others: the session's clock source, MIDI clock outs, per-output offsets.

``Band`` belongs to a ``Session`` (``session.band``); the session's ``sync``,
``clock_out``, ``stop_clock_out`` and ``set_offset`` are its front. It

- owns the clock source (``livernn.sync``) and swaps it while playing: the clock fixes a
  whole-bar offset to the new source and slews the rest, so the beat never jumps;
- keeps each MIDI clock out fed with the clock's tempo map (every new anchor, output
  offset included); the ticks are timed in the output's sender process;
- turns the source's transport (MIDI Start/Stop/Continue, Link start/stop sync) into the
  session's ``held`` state: while held, voices do not play and open notes end;
- says "tempo" (the session event) whenever the tempo changes by ``TEMPO_STEP`` or more,
  whoever changed it (``set_tempo``, a Link peer, an external MIDI clock).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from livernn.errors import LivernnError, shown, unknown

TEMPO_STEP = 0.05  # BPM: smaller changes of a followed tempo are not announced
START_AHEAD = 0.08  # seconds: a clock out starts on the first whole beat after this
OFFSET_MIN_MS, OFFSET_MAX_MS = -50.0, 500.0  # an earlier offset than the lookahead allows is late


class Band:
    def __init__(self, session) -> None:
        self.session = session
        self.clock = session.clock
        self.source = None
        self.clock_outs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._said = self.clock.bpm
        self.clock.on_change(self._on_anchor)

    # -- the clock source ------------------------------------------------------------
    def sync(self, spec: str, start_stop: bool = False) -> str:
        from livernn.sync import check_spec, make_source

        spec = check_spec(spec)
        with self._lock:
            if self.source is not None and self.source.name == spec:
                return spec
            new = make_source(spec, self.clock.bpm, self.clock.beats_per_bar, self.session._error,
                              self._on_transport, start_stop)
            old, self.source = self.source, new
            self.clock.use_source(new, align=not self.session.playing)
            if old is not None:
                old.stop()
            if new is not None:
                new.start(self.clock)
            self.session.held = False
        return spec

    def _on_transport(self, playing: bool) -> None:
        session = self.session
        if playing == (not session.held):
            return
        session.held = not playing
        if not playing:
            session.scheduler.end_notes(lambda note: True)
        session.emit("transport", playing)

    # -- tempo announcements and clock outs ------------------------------------------
    def _on_anchor(self, anchor) -> None:
        for out in list(self.clock_outs.values()):
            shift = self.session.scheduler.offsets.get(out, 0.0)
            out.clock_anchor(anchor.time + shift, anchor.beat, anchor.bpm)
        if abs(anchor.tempo - self._said) >= TEMPO_STEP:
            self._said = anchor.tempo
            self.session.emit("tempo", anchor.tempo)

    def said(self, bpm: float) -> None:
        self._said = bpm

    def clock_out(self, name: str) -> None:
        out = self.session.outputs.get(name)
        if out is None:
            raise unknown("output", name, list(self.session.outputs))
        if not callable(getattr(out, "clock_start", None)):
            raise LivernnError(f"output {name} cannot send MIDI clock (a MIDI output from its sender process can)")
        self.clock_outs[name] = out
        self._send_anchor(out)
        if self.session.playing:
            self.start_out(out)

    def _send_anchor(self, out) -> None:
        a = self.clock.anchor
        out.clock_anchor(a.time + self.session.scheduler.offsets.get(out, 0.0), a.beat, a.bpm)

    def start_out(self, out) -> None:
        """Start/Continue with the song position on the first whole beat from now + START_AHEAD."""
        clock = self.clock
        beat = float(int(clock.beat(time.monotonic() + START_AHEAD)) + 1)
        self._send_anchor(out)
        out.clock_start(clock.time_of(beat) + self.session.scheduler.offsets.get(out, 0.0), beat)

    def start(self) -> None:
        for out in self.clock_outs.values():
            self.start_out(out)

    def stop_clock_out(self, name: str) -> None:
        out = self.clock_outs.pop(name, None)
        if out is None:
            raise unknown("clock out", name, list(self.clock_outs))
        out.clock_stop(time.monotonic())

    # -- latency compensation ----------------------------------------------------------
    def set_offset(self, name: str, ms: float) -> None:
        out = self.session.outputs.get(name)
        if out is None:
            raise unknown("output", name, list(self.session.outputs))
        try:
            value = float(ms)
        except (TypeError, ValueError):
            raise LivernnError(f"an output offset is a number of ms, got {shown(ms)}") from None
        except OverflowError:  # 10**400: out of range like inf
            value = math.inf
        low = max(OFFSET_MIN_MS, -500.0 * self.session.lookahead)
        if not low <= value <= OFFSET_MAX_MS:
            raise LivernnError(f"offset of output {name} must be {low:g}..{OFFSET_MAX_MS:g} ms, got {shown(ms)}")
        scheduler = self.session.scheduler
        offsets = dict(scheduler.offsets)
        if value:
            offsets[out] = value / 1000.0
        else:
            offsets.pop(out, None)
        scheduler.offsets = offsets
        if name in self.clock_outs:
            self._send_anchor(out)

    def offsets_ms(self) -> dict[str, float]:
        offsets = self.session.scheduler.offsets
        return {name: round(1000 * offsets[o], 3) for name, o in self.session.outputs.items() if o in offsets}

    # -- status and the end ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        source = self.source
        info = {"source": self.clock.source, "peers": self.clock.peers, "held": self.session.held,
                "clock_out": list(self.clock_outs)}
        if source is not None:
            info.update(source.status())
        return info

    def close(self) -> None:
        now = time.monotonic()
        for out in self.clock_outs.values():
            try:
                out.clock_stop(now)
            except Exception:  # the output may be gone already
                pass
        self.clock_outs.clear()
        with self._lock:
            source, self.source = self.source, None
            self.clock.use_source(None)
        if source is not None:
            source.stop()

"""MIDI clock out, kept inside the MIDI sender process (``midi_sender``).

The parent sends the tempo map, not ticks: ``clock <t> <beat> <bpm>`` (one anchor of the
session's clock, output offset included) on every change, ``cstart <t> <beat>`` and
``cstop <t>``. The sender process computes each tick's time from the newest anchor, so
24 ticks per quarter leave from an interpreter whose GIL no user code holds. Ticks are
numbered from the start beat: a new anchor only moves the *time* of tick n, never which
tick comes next, so a tempo change neither skips nor doubles one.

Start: Song Position Pointer (the start beat in 16ths) then Start (position 0) or Continue,
1 ms before the first tick, which falls on the start beat.

A forward jump of the beat (a transport event of the clock source: its Start moves the
beat to its bar line) cannot be sent as ticks: a receiver counts them, and skipped ones
would leave it behind by the stretch jumped. It is relocated as MIDI says: Stop at once,
then the Song Position Pointer of the next 16th at least ``RELOCATE_AHEAD`` on, and
Continue 1 ms before that 16th's tick.
"""

from __future__ import annotations

import math

PPQ = 24
TICK, START, CONTINUE, STOP = b"\xf8", b"\xfa", b"\xfb", b"\xfc"
BEFORE_TICK = 0.001  # Start/Continue this long before the first tick
RELOCATE_AHEAD = 0.01  # a relocation's first tick is at least this long after the jump


class ClockOut:
    def __init__(self, ahead: float) -> None:
        self.ahead = ahead
        self.anchor: tuple[float, float, float] | None = None  # (t, beat, bpm)
        self.base = 0.0  # beat of tick 0
        self.n: int | None = None  # next tick to send; None = not ticking
        self.stop_at = math.inf
        self.sent = 0
        self.relocated = 0  # forward jumps sent as Stop, Song Position Pointer, Continue

    def time_of(self, beat: float) -> float:
        assert self.anchor is not None  # ticks are only timed after a "clock" line set it
        t, b, bpm = self.anchor
        return t + (beat - b) * 60.0 / bpm

    def command(self, kind: bytes, rest: bytes) -> list[tuple[float, bytes]]:
        """Take one line; returns messages for the sender's heap (deadline, bytes)."""
        args = [float(x) for x in rest.split()]
        if kind == b"clock":
            self.anchor = (args[0], args[1], args[2])
            if self.n is not None:
                due = self.due()
                if due is not None and due < args[0] - self.ahead - 60.0 / (args[2] * PPQ):
                    return self._relocate(args[0])
            return []
        if kind == b"cstart" and self.anchor is not None:
            t, beat = args
            self.base, self.n, self.stop_at = beat, 0, math.inf
            go = START if round(beat * 4) % 16384 == 0 else CONTINUE
            return [(t - BEFORE_TICK - 0.0001, self._spp(beat)), (t - BEFORE_TICK, go)]
        if kind == b"cstop":
            self.stop_at = args[0]
            return [(args[0], STOP)]
        return []

    def _relocate(self, t: float) -> list[tuple[float, bytes]]:
        """The beat jumped forward at ``t``: Stop, then go on from the next 16th (see the
        module docstring). The start beat is whole, so tick n is on a 16th when 6 divides n."""
        n = math.ceil((self._beat_at(t + RELOCATE_AHEAD) - self.base) * PPQ - 1e-6)
        self.n = max(self.n or 0, -(-n // 6) * 6)
        beat = self.base + self.n / PPQ
        go = self.time_of(beat)
        self.relocated += 1
        return [(t, STOP), (go - BEFORE_TICK - 0.0001, self._spp(beat)), (go - BEFORE_TICK, CONTINUE)]

    def _beat_at(self, t: float) -> float:
        assert self.anchor is not None
        at, b, bpm = self.anchor
        return b + (t - at) * bpm / 60.0

    @staticmethod
    def _spp(beat: float) -> bytes:
        position = round(beat * 4) % 16384  # 16ths, 14 bits
        return bytes([0xF2, position & 0x7F, position >> 7])

    def due(self) -> float | None:
        """Send time of the next tick (its logical time minus ``ahead``), or None."""
        if self.n is None or self.anchor is None:
            return None
        t = self.time_of(self.base + self.n / PPQ)
        if t >= self.stop_at:
            self.n = None
            return None
        return t - self.ahead

    def take(self) -> bytes:
        assert self.n is not None  # due() said a tick is due, so we are ticking
        self.n += 1
        self.sent += 1
        return TICK

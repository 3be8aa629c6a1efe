"""Smoothing filters for control signals.

``OneEuroFilter`` is the 1€ filter of Casiez, Roussel and Vogel (CHI 2012): a low-pass
whose cutoff rises with speed, so a still hand is steady and a fast one does not lag.
It is driven by the sample timestamps (frame times), not by the wall clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    mincutoff: float = 1.0  # Hz: lower = smoother when still
    beta: float = 0.007  # speed coefficient: higher = less lag when moving
    dcutoff: float = 1.0  # Hz: cutoff for the derivative

    def __post_init__(self) -> None:
        if not (self.mincutoff > 0 and self.dcutoff > 0 and self.beta >= 0):
            raise ValueError("OneEuroFilter needs mincutoff > 0, dcutoff > 0, beta >= 0")
        self.reset()

    def reset(self) -> None:
        self._x: float | None = None
        self._dx = 0.0
        self._t: float | None = None

    def __call__(self, x: float, t: float) -> float:
        if self._x is None or self._t is None:
            self._x, self._t = x, t
            return x
        if t <= self._t:  # duplicate or out-of-order timestamp: hold the last output
            return self._x
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx += _alpha(self.dcutoff, dt) * (dx - self._dx)
        cutoff = self.mincutoff + self.beta * abs(self._dx)
        self._x += _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x


@dataclass
class EmaFilter:
    """Exponential moving average; ``alpha`` = weight of the new sample (1 = no smoothing)."""

    alpha: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError("EmaFilter needs 0 < alpha <= 1")
        self.reset()

    def reset(self) -> None:
        self._y: float | None = None

    def __call__(self, x: float, t: float = 0.0) -> float:
        self._y = x if self._y is None else self._y + self.alpha * (x - self._y)
        return self._y

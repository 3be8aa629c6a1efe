"""Triggers: a control crossing a threshold, or taking a value, fires an action once.

A fader pushed past 0.8 swaps the model; a fist changes the scene; bar 16 of the clock
cues the bridge. Hysteresis keeps a noisy source hovering at the threshold from firing
again and again: after firing, the source must fall back below ``above - hysteresis``
(or rise above ``below + hysteresis``, or leave the ``equals`` value) to re-arm.

A trigger only fires on a change it saw: the first reading sets its state. So reloading
a patch while the bar counter is already past a cue does not fire that cue again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from livernn.controls.actions import ACTIONS
from livernn.errors import LivernnError


@dataclass
class Trigger:
    """Fires ``action`` (a name in ``controls.actions.ACTIONS``) with ``args`` when ``source``
    meets its one condition; see the module docstring."""

    source: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    above: float | None = None
    below: float | None = None
    equals: float | str | None = None
    hysteresis: float = 0.0
    _armed: bool | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        conditions = [c for c in (self.above, self.below, self.equals) if c is not None]
        if len(conditions) != 1:
            raise LivernnError(f"trigger on {self.source}: give exactly one of above, below, equals")
        if self.action not in ACTIONS:
            raise LivernnError(f"trigger on {self.source}: action {self.action!r} is not one of {', '.join(ACTIONS)}")
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0):
            raise LivernnError(f"trigger on {self.source}: hysteresis must be a number >= 0")

    def _state(self, value: float | str) -> bool | None:
        """True = condition met, False = re-armed, None = inside the hysteresis band."""
        if self.equals is not None:
            if isinstance(self.equals, str) or isinstance(value, str):
                return str(value) == str(self.equals)
            return abs(float(value) - float(self.equals)) <= self.hysteresis
        if isinstance(value, str):
            return None
        if self.above is not None:
            return True if value >= self.above else False if value < self.above - self.hysteresis else None
        assert self.below is not None
        return True if value <= self.below else False if value > self.below + self.hysteresis else None

    def feed(self, value: float | str) -> bool:
        """Return True exactly when the action should fire."""
        state = self._state(value)
        if self._armed is None:  # first reading: learn the state, fire nothing
            self._armed = state is not True
            return False
        if state is True and self._armed:
            self._armed = False
            return True
        if state is False:
            self._armed = True
        return False

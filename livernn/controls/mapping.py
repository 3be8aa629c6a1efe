"""Mappings: one control source shaped into one voice parameter.

A mapping is pure arithmetic with a little memory (smoothing, rate limit, deadband): it
turns an incoming value and its time into the value to write, or ``None`` when nothing
should be written. Who listens to the bus and who writes to the voice is the runtime's
job (``livernn.controls.runtime``), so a mapping can be tested and benchmarked alone.

The pipeline, in order: deadband on the input, normalise by the input range, clip mode
(clip, wrap, fold, free), invert, curve (lin, exp, log, breakpoints), scale to the output
range, smoothing (EMA or One Euro, driven by event times), rate limit, quantize or steps,
then the parameter's kind (int rounds, bool thresholds at the middle, choice picks).

Threads: a mapping is fed (``__call__``) on its source's publisher thread (the OSC loop,
the rtmidi thread, the gesture thread) and settled (``tick``) on the runtime's tick, at
the same time. Both advance the same memory (filter, rate limiter, deadband), so each
call holds the mapping's own lock for its few microseconds: every call acts on the whole
state, one after the other, as if there were one thread.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from livernn.controls.filters import EmaFilter, OneEuroFilter
from livernn.errors import LivernnError, kind_of, shown, unknown

CURVES = ("lin", "exp", "log", "breakpoints")
CLIPS = ("clip", "free", "wrap", "fold")
SMOOTHERS = ("none", "ema", "one_euro")
KINDS = ("float", "int", "bool", "choice")


def _shape_exp(u: float, k: float) -> float:
    return math.expm1(k * u) / math.expm1(k)


def _shape_log(u: float, k: float) -> float:
    return math.log1p(math.expm1(k) * u) / k if u > -1 / math.expm1(k) else -math.inf


def _apply_clip(u: float, mode: str) -> float:
    if mode == "clip":
        return min(1.0, max(0.0, u))
    if mode == "wrap":
        return u - math.floor(u)
    if mode == "fold":
        w = u - 2.0 * math.floor(u / 2.0)  # 0..2
        return 2.0 - w if w > 1.0 else w
    return u


@dataclass
class Mapping:
    """Shape a control value into a parameter value; see the module docstring for the order.

    ``out_range`` is in parameter units (the caller fills it from the parameter's spec when
    the patch leaves it out). ``points`` are (input, output) pairs in normalised 0..1 units
    for the breakpoints curve. ``quantize`` is a grid in output units; ``steps`` splits the
    output range into that many equal steps (2 = the two ends). ``deadband`` is in input
    units, ``rate`` in output units per second.
    """

    in_range: tuple[float, float] = (0.0, 1.0)
    out_range: tuple[float, float] = (0.0, 1.0)
    curve: str = "lin"
    shape: float = 3.0
    points: Sequence[tuple[float, float]] = ()
    clip: str = "clip"
    invert: bool = False
    smooth: str = "none"
    alpha: float = 0.3
    mincutoff: float = 1.0
    beta: float = 0.007
    dcutoff: float = 1.0
    quantize: float = 0.0
    steps: int = 0
    deadband: float = 0.0
    rate: float = 0.0
    kind: str = "float"
    choices: Sequence[str] = ()
    _last_in: float | None = field(default=None, init=False, repr=False)
    _level: float | None = field(default=None, init=False, repr=False)
    _level_t: float = field(default=0.0, init=False, repr=False)
    _target: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise MappingError(problems, f"mapping: {problems[0][1]}")
        self._lock = threading.Lock()  # see the module docstring: one call at a time
        self._filter = self._make_filter()
        if self.curve == "breakpoints":
            pts = sorted((float(a), float(b)) for a, b in self.points)
            self._xs = [a for a, _ in pts]
            self._ys = [b for _, b in pts]

    def problems(self) -> list[tuple[str | None, str]]:
        """Everything wrong with the settings: (option, phrase) pairs, the option named as
        patches and ``patch()`` name it (None when no one option is to blame); empty = fine."""
        out: list[tuple[str | None, str]] = []
        lo, hi = self.in_range
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
            out.append(("range", f"range {list(self.in_range)} must be two different finite numbers"))
        olo, ohi = self.out_range
        if not (math.isfinite(olo) and math.isfinite(ohi)):
            out.append(("out", f"out {list(self.out_range)} must be two finite numbers"))
        if self.curve not in CURVES:
            out.append(("curve", f"curve {self.curve!r} is not one of {', '.join(CURVES)}"))
        if self.curve in ("exp", "log") and not (math.isfinite(self.shape) and self.shape > 0):
            out.append(("shape", f"shape {self.shape} must be > 0"))
        if self.curve == "breakpoints":
            if len(self.points) < 2 or any(
                not isinstance(p, tuple | list) or len(p) != 2
                or not all(isinstance(v, int | float) and math.isfinite(v) for v in p)
                for p in self.points
            ):
                out.append(("points", "points must be at least two [input, output] pairs of finite numbers"))
            elif len({p[0] for p in self.points}) != len(self.points):
                out.append(("points", "points must have distinct inputs"))
        if self.clip not in CLIPS:
            out.append(("clip", f"clip {self.clip!r} is not one of {', '.join(CLIPS)}"))
        if self.smooth not in SMOOTHERS:
            out.append(("smooth", f"smooth {self.smooth!r} is not one of {', '.join(SMOOTHERS)}"))
        if not 0 < self.alpha <= 1:
            out.append(("alpha", f"alpha {self.alpha} must be in (0, 1]"))
        if not (self.mincutoff > 0 and self.dcutoff > 0 and self.beta >= 0):
            out.append((None, "one_euro needs mincutoff > 0, dcutoff > 0, beta >= 0"))
        for name in ("quantize", "deadband", "rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                out.append((name, f"{name} {value} must be a finite number >= 0"))
        if self.steps < 0 or self.steps == 1:
            out.append(("steps", f"steps {self.steps} must be 0 (off) or >= 2"))
        if self.kind not in KINDS:
            out.append((None, f"kind {self.kind!r} is not one of {', '.join(KINDS)}"))
        if self.kind == "choice" and not self.choices:
            out.append((None, "a choice parameter needs its choices"))
        return out

    def _make_filter(self) -> OneEuroFilter | EmaFilter | None:
        if self.smooth == "ema":
            return EmaFilter(self.alpha)
        if self.smooth == "one_euro":
            return OneEuroFilter(self.mincutoff, self.beta, self.dcutoff)
        return None

    @property
    def settles(self) -> bool:
        """True when the output keeps moving after the input stops (needs ``tick``)."""
        return self._filter is not None or self.rate > 0

    def shape_value(self, x: float) -> float:
        """The stateless part: input value -> output units before smoothing."""
        lo, hi = self.in_range
        u = _apply_clip((x - lo) / (hi - lo), self.clip)
        if self.invert:
            u = 1.0 - u
        if self.curve == "exp":
            u = _shape_exp(u, self.shape)
        elif self.curve == "log":
            u = _shape_log(u, self.shape)
        elif self.curve == "breakpoints":
            u = self._breakpoint(u)
        olo, ohi = self.out_range
        return olo + u * (ohi - olo)

    def _breakpoint(self, u: float) -> float:
        xs, ys = self._xs, self._ys
        if u <= xs[0]:
            return ys[0]
        if u >= xs[-1]:
            return ys[-1]
        return interpolate(u, xs, ys)

    def inverse(self, y: float) -> float | None:
        """Output value -> the input that gives it (for OSC feedback); None if not invertible."""
        olo, ohi = self.out_range
        if olo == ohi or (self.curve == "breakpoints" and any(
            b <= a for a, b in zip(self._ys, self._ys[1:], strict=False)
        )):
            return None
        u = (y - olo) / (ohi - olo)
        u = min(1.0, max(0.0, u))
        if self.curve == "exp":
            u = _shape_log(u, self.shape)
        elif self.curve == "log":
            u = _shape_exp(u, self.shape)
        elif self.curve == "breakpoints":
            ys, xs = self._ys, self._xs
            u = xs[0] if u <= ys[0] else xs[-1] if u >= ys[-1] else interpolate(u, ys, xs)
        if self.invert:
            u = 1.0 - u
        lo, hi = self.in_range
        return lo + u * (hi - lo)

    def __call__(self, x: float, t: float) -> float | str | bool | None:
        """Feed an input value at time ``t`` (seconds); returns the value to write or None.
        Safe from any thread (one call at a time)."""
        with self._lock:
            return self._receive(x, t)

    def _receive(self, x: float, t: float) -> float | str | bool | None:
        if not math.isfinite(x):
            return None
        if self._last_in is not None and abs(x - self._last_in) < self.deadband:
            return None
        self._last_in = x
        try:
            y = self.shape_value(x)
        except (OverflowError, ZeroDivisionError):
            return None
        if not math.isfinite(y):
            return None
        self._target = y
        return self._advance(t)

    def tick(self, t: float) -> float | str | bool | None:
        """Let smoothing and rate limiting move on toward the last input without a new one."""
        if self._target is None or not self.settles:
            return None
        with self._lock:
            return self._advance(t)

    def _advance(self, t: float) -> float | str | bool | None:
        y = self._target
        assert y is not None
        if self._filter is not None:
            y = self._filter(y, t)
        if self.rate > 0 and self._level is not None:
            step = self.rate * max(0.0, t - self._level_t)
            y = min(self._level + step, max(self._level - step, y))
        self._level, self._level_t = y, t
        return self._finish(y)

    def _finish(self, y: float) -> float | str | bool:
        olo, ohi = self.out_range
        if self.steps >= 2:
            width = (ohi - olo) / (self.steps - 1)
            y = olo + round((y - olo) / width) * width if width else olo
        elif self.quantize > 0:
            y = olo + round((y - olo) / self.quantize) * self.quantize
        if self.kind == "int":
            return float(round(y))
        if self.kind == "bool":
            return y >= (olo + ohi) / 2
        if self.kind == "choice":
            return self.choices[int(min(len(self.choices) - 1, max(0, round(y))))]
        return y


class MappingError(LivernnError):
    """Mapping settings that make no mapping. ``problems`` holds every (option, phrase)
    pair, option None when no one option is to blame, so a patch can point each at its key
    (``mappings[0].curve: ...``); the message is the first problem as one line."""

    def __init__(self, problems: list[tuple[str | None, str]], line: str) -> None:
        self.problems = problems
        super().__init__(line)


# The options a patch's [[mappings]] table and the prompt's patch() take; range and out
# become Mapping's in_range and out_range, the rest keep their names.
OPTIONS = ("range", "out", "curve", "shape", "points", "clip", "invert", "smooth", "alpha",
           "mincutoff", "beta", "dcutoff", "quantize", "steps", "deadband", "rate")
# an option -> the setting it belongs to (given without it, it would be silently ignored)
ONLY_WITH = {"points": ("curve", ("breakpoints",)), "shape": ("curve", ("exp", "log")),
             "alpha": ("smooth", ("ema",)), "mincutoff": ("smooth", ("one_euro",)),
             "beta": ("smooth", ("one_euro",)), "dcutoff": ("smooth", ("one_euro",))}
_DEFAULTS = {"curve": "lin", "smooth": "none"}


# What a MIDI input publishes (controls.midi_in): midi.cc.CHANNEL.CONTROL,
# midi.bend.CHANNEL, midi.note.CHANNEL.NOTE; a glob (``midi.cc.*.74``) matches several.
_SEG = r"[0-9*?\[\]]+"  # a number, or a glob standing for numbers
_MIDI_SOURCE = re.compile(rf"midi\.(cc\.{_SEG}\.{_SEG}|bend\.{_SEG}|note\.{_SEG}\.{_SEG})")
_MIDI_ANY = re.compile(r"midi\.[*?\[].*")


def source_problem(source: str) -> str | None:
    """What makes a mapping's or trigger's source a name nothing ever publishes (None: fine).
    Only the shapes known to be wrong: ``midi:cc1`` (bus names are dotted) and a ``midi.``
    name unlike the input's; any other dotted name may come from a plug-in or ``bus.publish``."""
    head = source.split(".", 1)[0]
    if ":" in head:
        return ("bus names are dotted, with no ':' (midi.cc.1.74, osc./1/fader1, hand.right.pinch), "
                f"got {shown(source)}")
    if source.startswith("midi.") and not (_MIDI_SOURCE.fullmatch(source) or _MIDI_ANY.fullmatch(source)):
        return ("a MIDI source is midi.cc.CHANNEL.CONTROL, midi.bend.CHANNEL or midi.note.CHANNEL.NOTE "
                f"(channel 1..16, like midi.cc.1.74), got {shown(source)}")
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    try:
        return _number(value) and math.isfinite(value)
    except OverflowError:  # an int past float's range (10**400): as good as inf
        return False


def _wrong_type(key: str, value: Any) -> str | None:
    """What is wrong with the type of one option's value, said after its key (None: fine).
    Whether the value itself makes sense is Mapping's to say."""
    if key in ("range", "out"):
        if not (isinstance(value, list | tuple) and len(value) == 2
                and all(_finite(v) for v in value)):
            return f"must be [low, high], two finite numbers, got {shown(value)}"
    elif key in ("curve", "clip", "smooth"):
        if not isinstance(value, str):
            return f"must be a string, got {kind_of(value)}"
    elif key == "invert":
        if not isinstance(value, bool):
            return f"must be true or false, got {kind_of(value)}"
    elif key == "steps":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {kind_of(value)}"
        if not 0 <= value <= 4096:
            return f"{value!r} is out of range 0..4096"
    elif key != "points":
        if not _number(value):
            return f"must be a number, got {kind_of(value)}"
        if not _finite(value):
            return f"must be a finite number, got {shown(value)}"
    return None


def build_mapping(spec: Any, options: dict[str, Any]) -> Mapping:
    """The one way from mapping options as a patch's [[mappings]] or ``patch()`` give them
    (``range``, ``out``, ``curve``...: OPTIONS) to a Mapping onto the parameter ``spec``
    (an engine ``ParamSpec``: its range, kind and choices fill what the options leave out).

    An unknown option is the did-you-mean line; everything else wrong (a value's type, an
    option its setting would ignore, a value Mapping refuses) raises MappingError with
    every problem, each naming its option."""
    for key in options:
        if key not in OPTIONS:
            raise unknown("mapping option", key, OPTIONS)
    problems: list[tuple[str | None, str]] = []
    lines: list[str] = []
    settings: dict[str, Any] = param_defaults(spec)
    for key, value in options.items():
        wrong = _wrong_type(key, value)
        if wrong is not None:
            problems.append((key, wrong))
            lines.append(f"mapping: {key} {wrong}")
        elif key in ("range", "out"):
            settings["in_range" if key == "range" else "out_range"] = (float(value[0]), float(value[1]))
        elif key == "points":  # anything but a list of pairs is refused by Mapping
            settings[key] = [tuple(p) if isinstance(p, list) else p for p in value] \
                if isinstance(value, list | tuple) else ()
        elif key in ("shape", "alpha", "mincutoff", "beta", "dcutoff", "quantize", "deadband", "rate"):
            settings[key] = float(value)
        else:
            settings[key] = value
    for key, (owner, values) in ONLY_WITH.items():
        if key in options and options.get(owner, _DEFAULTS[owner]) not in values:
            problems.append((key, f"only applies with {owner} = {' or '.join(map(repr, values))}"))
            lines.append(f"mapping: {key} {problems[-1][1]}")
    if problems:
        raise MappingError(problems, lines[0])
    return Mapping(**settings)


def param_defaults(spec: Any) -> dict[str, Any]:
    """Mapping settings a parameter implies (``spec`` is an engine ``ParamSpec``): its whole
    range as the output range (indices for a choice, 0..1 for a bool), its kind, its choices."""
    if spec.kind == "choice":
        return {"out_range": (0.0, float(len(spec.choices) - 1)), "kind": "choice", "choices": tuple(spec.choices)}
    if spec.kind == "bool":
        return {"out_range": (0.0, 1.0), "kind": "bool", "choices": ()}
    return {"out_range": (float(spec.min), float(spec.max)), "kind": spec.kind, "choices": ()}


def interpolate(v: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear interpolation inside sorted ``xs`` (the caller handles the ends)."""
    i = bisect.bisect_right(xs, v)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (v - x0) * (y1 - y0) / (x1 - x0)

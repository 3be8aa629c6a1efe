"""The one interface every output answers (isobar's): the scheduler never asks which.

``t`` is always the *logical* monotonic time of the event. ``latency`` says how far ahead
of ``t`` the scheduler hands an event over: 0 for MIDI (sent at the deadline), the OSC
latency for outputs that send timestamped bundles and let the peer play them on time.
``punctual`` False says the hand-over time does not matter at all (the recorder).
Channels are 1..16 here; the wire form (0..15) is each output's business.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

OptionType = type | tuple[type, ...]


class Clock(Protocol):
    """What outputs read from the session's clock (``livernn.engine.clock.Clock`` is one):
    a protocol, so outputs need not import the engine (tests/test_layers.py)."""

    beats_per_bar: int

    @property
    def bpm(self) -> float: ...

    def timetag(self, t: float) -> int: ...

    def beat(self, t: float | None = None) -> float: ...

    def bar(self, t: float | None = None) -> float: ...


class Output(ABC):
    """Base class: subclasses override the ``note_on``/``note_off``/``control`` hooks."""

    kind = "output"
    latency = 0.0
    # False for an output that writes the logical times it is handed (the recorder): when it
    # gets an event does not matter, so the sender never spins for one of its deadlines.
    punctual = True

    def __init__(self) -> None:
        self.clock: Clock | None = None
        self.sent = 0
        self.errors = 0
        self.last_error = ""

    def attach(self, clock: Clock) -> None:
        """Called by the session: the clock that timetags and tempo come from."""
        self.clock = clock

    @abstractmethod
    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        """Start a note at logical time ``t``; ``duration`` (s) is a hint for outputs without note-offs."""

    @abstractmethod
    def note_off(self, channel: int, pitch: int, t: float) -> None:
        """End a note at logical time ``t``."""

    def control(self, channel: int, cc: int, value: int, t: float) -> None:
        """A control change (MIDI meaning); outputs without controls ignore it."""

    def all_notes_off(self) -> None:
        """Silence everything this output may have started (after the tracked note-offs)."""

    def maintain(self) -> None:
        """Called a few times a second off the clock: reconnect, flush, and so on."""

    def close(self) -> None:
        """Release ports and sockets; closing twice is harmless."""

    def describe(self) -> str:
        return self.kind

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


CC_ALL_SOUND_OFF = 120  # MIDI controller: silence now, releases cut
CC_ALL_NOTES_OFF = 123  # MIDI controller: release every sounding note


class MidiBytesOutput(Output):
    """An output that speaks MIDI bytes: every hook becomes one message for ``_send``.

    Like mido's ports, ``send`` is the public way in and ``_send`` the one method a
    subclass writes (a port, the sender process's pipe, the recorder's list)."""

    def send(self, data: Sequence[int], t: float | None = None) -> None:
        """Send one raw MIDI message (status byte first), due at logical time ``t`` (default now)."""
        self._send(list(data), time.monotonic() if t is None else t)

    @abstractmethod
    def _send(self, data: list[int], t: float) -> None:
        """Deliver one message due at ``t``; channels are already 0..15 here."""

    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        self._send([0x90 | (channel - 1), pitch, velocity], t)

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._send([0x80 | (channel - 1), pitch, 0], t)

    def control(self, channel: int, cc: int, value: int, t: float) -> None:
        self._send([0xB0 | (channel - 1), cc, value], t)

    def all_notes_off(self) -> None:
        """CC 123 (all notes off) then CC 120 (all sound off) on every channel, now."""
        now = time.monotonic()
        for ch in range(16):
            self._send([0xB0 | ch, CC_ALL_NOTES_OFF, 0], now)
            self._send([0xB0 | ch, CC_ALL_SOUND_OFF, 0], now)


@dataclass(frozen=True)
class OutputKind:
    """Everything livernn needs to know of one kind of output, in the kind's own module.

    ``livernn.outputs.KINDS`` holds one per kind (registered in ``livernn/outputs/__init__.py``),
    and the patch schema (``type = "..."`` and its options), the patch builder, ``--out``
    on the command line with its help, and ``livernn.api.output`` read it from there: a new
    kind is its module plus one registration line."""

    name: str  # the patch table's ``type`` and the ``--out`` prefix
    options: Mapping[str, OptionType]  # the patch table's keys and their types
    build: Callable[[str, dict[str, Any], float], Output]  # (output name, options, bpm) -> output
    spec: str = ""  # the ``--out`` form after the prefix, for the help; "" = not on the command line
    from_spec: Callable[[str], Output] | None = None  # the text after ``name:`` -> output
    check_spec: Callable[[str], object] | None = None  # the same text checked, nothing opened
    # options naming a file beside the patch -> its default suffix ("<output name><suffix>")
    file_options: Mapping[str, str] = field(default_factory=dict)

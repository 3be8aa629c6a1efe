"""MIDI input: controllers onto the bus, and a player's notes into a voice (listen mode).

mido drives python-rtmidi on the same API the outputs chose (``livernn.outputs.midi.
choose_api``: ALSA, CoreMIDI, WinMM, or JACK where there is no sequencer). Bus names:
``midi.cc.<ch>.<num>`` (0..1), ``midi.bend.<ch>`` (-1..1), ``midi.note.<ch>.<pitch>``
(velocity 0..1, 0 at release); channels 1..16 as the performer counts them.

In listen mode the notes someone plays are fed to a voice with ``Voice.observe`` once
each has ended (the model takes pitch, step, duration and velocity), in the order they
began, so the model answers or continues the phrase it just heard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mido

from livernn.controls.bus import ControlBus
from livernn.errors import LivernnError


def mido_backend() -> tuple[Any, str]:
    """mido's rtmidi backend on the API the outputs use; returns (backend, API name)."""
    import rtmidi

    from livernn.outputs.midi import API_NAMES, choose_api

    api = choose_api()
    names = {getattr(rtmidi, n): n.removeprefix("API_") for n in dir(rtmidi) if n.startswith("API_")}
    return mido.Backend(f"mido.backends.rtmidi/{names[api]}", load=True), API_NAMES.get(api, names[api])


@dataclass
class _Held:
    pitch: int
    velocity: int
    onset: float
    end: float | None = None


class NoteListener:
    """Turns note-on/off pairs into ``observe(pitch, step_s, dur_s, velocity)`` calls.

    Notes are reported in onset order once ended (a held note holds back the ones after
    it, up to ``max_hold`` seconds), with the step measured from the previous onset.
    """

    def __init__(self, observe: Callable[[int, float, float, int], None], max_hold: float = 4.0) -> None:
        self._observe = observe
        self.max_hold = max_hold
        self._queue: list[_Held] = []
        self._last_onset: float | None = None
        self._lock = threading.Lock()

    def note_on(self, pitch: int, velocity: int, t: float) -> None:
        with self._lock:
            self._queue.append(_Held(pitch, velocity, t))

    def note_off(self, pitch: int, t: float) -> None:
        with self._lock:
            for held in self._queue:
                if held.pitch == pitch and held.end is None:
                    held.end = t
                    break
        self.flush(t)

    def flush(self, now: float) -> None:
        ready = []
        with self._lock:
            while self._queue:
                head = self._queue[0]
                if head.end is None and now - head.onset < self.max_hold:
                    break
                self._queue.pop(0)
                end = head.end if head.end is not None else now
                step = 0.0 if self._last_onset is None else max(0.0, head.onset - self._last_onset)
                self._last_onset = head.onset
                ready.append((head.pitch, step, max(1e-3, end - head.onset), head.velocity))
        for note in ready:
            self._observe(*note)


class MidiIn:
    """One MIDI input port (found by part of its name, else a new virtual port)."""

    def __init__(self, bus: ControlBus, port: str, listener: NoteListener | None = None,
                 listen_channel: int = 0) -> None:
        if not port:
            raise LivernnError("MIDI input: give a port name (or part of one)")
        self.bus = bus
        self.listener = listener
        self.listen_channel = listen_channel
        self.received = 0
        backend, self.api_name = mido_backend()
        names = backend.get_input_names()
        match = next((n for n in names if port.lower() in n.lower()), None)
        try:
            if match is not None:
                self.port = backend.open_input(match, callback=self._on_message)
            else:
                self.port = backend.open_input(port, virtual=True, callback=self._on_message)
        except (OSError, NotImplementedError) as exc:
            raise LivernnError(
                f"MIDI input {port!r}: cannot open ({exc}); inputs: {', '.join(names) or 'none'}"
            ) from None
        self.name = match or port

    def _on_message(self, msg: mido.Message) -> None:
        now = time.monotonic()
        self.received += 1
        kind = msg.type
        if kind == "control_change":
            self.bus.publish(f"midi.cc.{msg.channel + 1}.{msg.control}", msg.value / 127.0, now)
        elif kind == "pitchwheel":
            self.bus.publish(f"midi.bend.{msg.channel + 1}", msg.pitch / 8192.0, now)
        elif kind in ("note_on", "note_off"):
            velocity = msg.velocity if kind == "note_on" else 0
            self.bus.publish(f"midi.note.{msg.channel + 1}.{msg.note}", velocity / 127.0, now)
            listener = self.listener
            if listener is None or self.listen_channel not in (0, msg.channel + 1):
                return
            if velocity > 0:
                listener.note_on(msg.note, velocity, now)
            else:
                listener.note_off(msg.note, now)

    def close(self) -> None:
        self.port.close()

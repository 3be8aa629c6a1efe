"""MIDI input: controllers onto the bus, and a player's notes into a voice (listen mode).

python-rtmidi on the same API the outputs chose (``livernn.midi_system.choose_api``:
ALSA, CoreMIDI, WinMM, or JACK where there is no sequencer), mido to parse messages. Bus names:
``midi.cc.<ch>.<num>`` (0..1), ``midi.bend.<ch>`` (-1..1), ``midi.note.<ch>.<pitch>``
(velocity 0..1, 0 at release); channels 1..16 as the performer counts them.

In listen mode the notes someone plays are fed to a voice with ``Voice.observe`` once
each has ended (the model takes pitch, step, duration and velocity), in the order they
began, so the model answers or continues the phrase it just heard.

Listening policies (answer / follow / accompany, livernn.engine.listen) hear a note at
its note-on instead: ``MidiIn(..., feed=PlayerFeed())`` hands every note and CC to the
feed's thread (livernn.controls.player) as it arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mido

from livernn.controls.bus import ControlBus
from livernn.controls.midi_in_check import EVERY as CHECK_EVERY
from livernn.controls.midi_in_check import CheckedInput, sources
from livernn.errors import LivernnError

log = logging.getLogger(__name__)


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


class MidiIn(CheckedInput):
    """One MIDI input port (found by part of its name, else a new virtual port).

    Driven through python-rtmidi directly, one client for the port's life: mido's rtmidi
    backend opens a second, short-lived client just to list names, and a JACK client
    closed beside a live one is what silenced shows (``livernn.midi_system.api_works``).
    On JACK it follows a restarted server as the outputs do: a watcher sees the server's
    socket change, leaves the dead client alone and opens the port again.

    On JACK the watcher also checks that the server runs our client (``midi_in_check``: a
    client opened beside a polling patchbay can come up deaf). When it does not, the input
    opens a new client, moves the old port's connections to the new port, keeps the old
    client unclosed, and says so once (``healed`` counts it). ``LIVERNN_MIDI_HEAL=0``
    reports without replacing; ``LIVERNN_MIDI_CHECK=0`` turns the check off.
    ``LIVERNN_MIDI_IN_FAULT=deaf`` (tests) makes each input's first client drop all it
    hears, as one the server never runs."""

    WATCH_EVERY = 0.5  # seconds between looks at the JACK server

    def __init__(self, bus: ControlBus, port: str, listener: NoteListener | None = None,
                 listen_channel: int = 0, feed: Any = None) -> None:
        import rtmidi

        from livernn.midi_system import API_NAMES, choose_api, match_port

        if not port:
            raise LivernnError("MIDI input: give a port name (or part of one)")
        self.bus = bus
        self.listener = listener
        self.listen_channel = listen_channel
        self.feed = feed  # a livernn.controls.player.PlayerFeed, or None
        self.received = 0
        self.reopened = 0  # clients opened again for a restarted JACK server
        self.api = choose_api()
        self.api_name = API_NAMES.get(self.api, str(self.api))
        names = sources(self.api)
        index = match_port(names, port, "MIDI input")  # synth is synth:out, beside synth2:out
        match = None if index is None else names[index]
        self.name = match or port
        self.label = f"MIDI input {self.name}"
        self._virtual = match is None
        self._lock = threading.Lock()
        self.jack_port: str | None = None  # our port's full JACK name
        self._init_check()  # healed, pings, last_error: see midi_in_check.CheckedInput
        try:
            self._rt = self._open()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError, OSError, ValueError) as exc:
            raise LivernnError(
                f"MIDI input {port!r}: cannot open ({exc}); inputs: {', '.join(names) or 'none'}"
            ) from None
        self._start_check()
        self._stop = threading.Event()
        self._watcher = None
        if self._jack is not None:
            self._watcher = threading.Thread(target=self._watch, name="livernn-midi-in", daemon=True)
            self._watcher.start()

    def _open(self):
        """A new client with our port (virtual, or connected to the named source), listening;
        on JACK ``jack_port`` becomes its port's full name."""
        rt = self._new_client("livernn-in", self.name, "in", sysex=True)
        self._listen(rt, self._on_raw)
        return rt

    def _say(self, message: str) -> None:
        """One line to the performer (the log's last resort prints it on stderr)."""
        self.last_error = message
        log.warning("%s", message)

    def _on_raw(self, event, _data=None) -> None:
        if self._heard(event[0]):
            return  # our run check's ping: not the performer's
        try:
            msg = mido.Message.from_bytes(event[0])
        except ValueError:
            return
        self._on_message(msg)

    def _watch(self) -> None:
        import rtmidi

        from livernn.midi_system import DEAD_CLIENTS, jack_server_id

        every = CHECK_EVERY if self._check is not None else self.WATCH_EVERY
        while not self._stop.wait(every):
            server = jack_server_id()
            with self._lock:
                if server == self._jack:
                    self._look(time.monotonic())
                    continue
                if self._check is not None:
                    self._check.retire()
                    self._check = None
                if self._rt is not None:
                    DEAD_CLIENTS.append(self._rt)  # its server is gone: closing it would crash us
                    self._rt = None
                self._retired.clear()
                if server is None:
                    self._jack = None
                    continue
                try:
                    self._rt = self._open()
                except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError, ValueError):
                    continue  # the server is still starting, or the named port is not back yet
                self._jack = server
                self.reopened += 1
                self._start_check()

    def _on_message(self, msg: mido.Message) -> None:
        now = time.monotonic()
        self.received += 1
        kind = msg.type
        feed = self.feed
        if feed is not None:  # the player's notes first: a companion waits for nothing else
            if kind in ("note_on", "note_off"):
                feed.note(msg.channel + 1, msg.note, msg.velocity if kind == "note_on" else 0, now)
            elif kind == "control_change":
                feed.control(msg.channel + 1, msg.control, msg.value, now)
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
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(2)
        self._close_clients()

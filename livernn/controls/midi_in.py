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
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mido

from livernn.controls.bus import ControlBus
from livernn.controls.midi_in_check import CLIENT as CHECK_CLIENT
from livernn.controls.midi_in_check import EVERY as CHECK_EVERY
from livernn.controls.midi_in_check import PING, InputCheck
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


class MidiIn:
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

        from livernn.midi_system import API_NAMES, choose_api, jack_server_id, list_ports

        if not port:
            raise LivernnError("MIDI input: give a port name (or part of one)")
        self.bus = bus
        self.listener = listener
        self.listen_channel = listen_channel
        self.feed = feed  # a livernn.controls.player.PlayerFeed, or None
        self.received = 0
        self.reopened = 0  # clients opened again for a restarted JACK server
        self.healed = 0  # clients replaced because the server did not run them
        self.last_error: str | None = None
        self.pings = 0  # the run check's pings heard (midi_in_check)
        self._events = 0  # everything the client handed us, pings included: proof that it runs
        self.api = choose_api()
        self.api_name = API_NAMES.get(self.api, str(self.api))
        names = [n for n in list_ports(self.api, outputs=False) if not n.startswith(CHECK_CLIENT)]
        match = next((n for n in names if port.lower() in n.lower()), None)
        self.name = match or port
        self._virtual = match is None
        self._lock = threading.Lock()
        self._jack = jack_server_id() if self.api == rtmidi.API_UNIX_JACK else None
        self.jack_port: str | None = None  # our port's full JACK name
        self._retired: list[str] = []  # ports of clients replaced while their server ran
        self._deaf = self._jack is not None and os.environ.get("LIVERNN_MIDI_IN_FAULT", "") == "deaf"
        try:
            self._rt = self._open()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError, OSError, ValueError) as exc:
            raise LivernnError(
                f"MIDI input {port!r}: cannot open ({exc}); inputs: {', '.join(names) or 'none'}"
            ) from None
        self._check: InputCheck | None = None
        self._heal = os.environ.get("LIVERNN_MIDI_HEAL", "1") != "0"
        if self._jack is not None and os.environ.get("LIVERNN_MIDI_CHECK", "1") != "0":
            self._check = self._new_check()
        self._stop = threading.Event()
        self._watcher = None
        if self._jack is not None:
            self._watcher = threading.Thread(target=self._watch, name="livernn-midi-in", daemon=True)
            self._watcher.start()

    def _open(self):
        """A new client with our port (virtual, or connected to the named source); on JACK
        ``jack_port`` becomes its port's full name."""
        import rtmidi

        from livernn.midi_system import list_ports, quiet_stderr

        jack = self.api == rtmidi.API_UNIX_JACK
        before = set(list_ports(self.api, outputs=True)) if jack else set()
        with quiet_stderr():
            rt = rtmidi.MidiIn(self.api, name="livernn-in")
        rt.ignore_types(sysex=False, timing=False, active_sense=True)
        label = self.name if self._virtual else "in"
        if self._virtual:
            rt.open_virtual_port(self.name)
        else:
            ports = rt.get_ports()
            if self.name not in ports:
                raise ValueError(f"{self.name!r} is gone")
            rt.open_port(ports.index(self.name), name=label)
        if self._deaf:
            self._deaf = False
            rt.set_callback(_drop)  # tests: as if the server never ran this client
        else:
            rt.set_callback(self._on_raw)
        if jack:
            new = [p for p in list_ports(self.api, outputs=True)
                   if p not in before and p.startswith("livernn-in") and p.split(":", 1)[-1] == label]
            self.jack_port = new[0] if len(new) == 1 else None
        return rt

    def _new_check(self) -> InputCheck | None:
        import rtmidi

        if self.jack_port is None:
            return None
        try:
            return InputCheck(self.api, self.jack_port)
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError) as exc:
            self._say(f"MIDI input {self.name}: run check unavailable: {exc}")
            return None

    def _say(self, message: str) -> None:
        """One line to the performer (the log's last resort prints it on stderr)."""
        self.last_error = message
        log.warning("%s", message)

    def _on_raw(self, event, _data=None) -> None:
        self._events += 1
        if event[0] == PING:
            self.pings += 1  # our run check's ping: not the performer's
            return
        try:
            msg = mido.Message.from_bytes(event[0])
        except ValueError:
            return
        self._on_message(msg)

    def _watch(self) -> None:
        import rtmidi

        from livernn.midi_system import DEAD_CLIENTS, jack_server_id

        every = CHECK_EVERY if self._check is not None else self.WATCH_EVERY
        next_move = 0.0
        while not self._stop.wait(every):
            server = jack_server_id()
            with self._lock:
                if server == self._jack:
                    now = time.monotonic()
                    if self._rt is not None and self._check is not None:
                        self._run_check(now)
                    if self._retired and now >= next_move:
                        self._move_retired_links()
                        next_move = now + self.WATCH_EVERY
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
                if os.environ.get("LIVERNN_MIDI_CHECK", "1") != "0":
                    self._check = self._new_check()

    def _run_check(self, now: float) -> None:
        check = self._check
        if check is None or (not self._heal and self.last_error is not None):
            return  # healing off and the performer told: no more check clients replaced
        if check.step(self._events, now) != "input":
            return
        if not self._heal:
            self._say(f"MIDI input {self.name}: its JACK client is not running (LIVERNN_MIDI_HEAL=0: not replaced)")
            return
        if self._replace_client(leave=check.mine):
            check.follow(self.jack_port or "")
            self._say(f"MIDI input {self.name}: its JACK client was not running; opened a new one")

    def _replace_client(self, leave: str) -> bool:
        """Open a new client for our port and retire the old one (never closed: closing a client
        the server does not run is not known to be safe). The old port's sources are
        connected to the new one (a named source is connected by the new client itself),
        then taken off the old; ``leave`` (the run check's port) is only taken off. JACK
        names the new client ``livernn-in-01``. True when the new port is up."""
        import rtmidi

        from livernn.midi_system import DEAD_CLIENTS, jack_connect, jack_connections, jack_disconnect

        old, old_port = self._rt, self.jack_port
        links = jack_connections(old_port) if old_port else []
        try:
            rt = self._open()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError, ValueError):
            self.jack_port = old_port
            return False
        if self.jack_port is None:
            DEAD_CLIENTS.append(rt)
            self.jack_port = old_port
            return False
        self._rt = rt
        DEAD_CLIENTS.append(old)
        for source in links:
            if source != leave:
                jack_connect(source, self.jack_port)  # before the old is left: nothing played is lost
            if old_port:
                jack_disconnect(source, old_port)
        if old_port:
            self._retired.append(old_port)
        self.healed += 1
        return True

    def _move_retired_links(self) -> None:
        """A patchbay that connects by name connects a retired port again (it keeps the name
        the input had): move each such connection to the port in use."""
        from livernn.midi_system import jack_connect, jack_connections, jack_disconnect

        own = self.jack_port
        for old in self._retired:
            for source in jack_connections(old):
                if own and not source.startswith(CHECK_CLIENT):
                    jack_connect(source, own)
                jack_disconnect(source, old)

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
        from livernn.midi_system import DEAD_CLIENTS, jack_server_id

        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(2)
        with self._lock:
            rt, self._rt = self._rt, None
            check, self._check = self._check, None
        gone = self._jack is not None and jack_server_id() != self._jack
        if check is not None and gone:
            check.retire()
        elif check is not None:
            check.close()
        if rt is None:
            return
        if gone:
            DEAD_CLIENTS.append(rt)
            return
        rt.cancel_callback()
        rt.close_port()
        del rt


def _drop(_event, _data=None) -> None:
    """The callback of a client made deaf on purpose (``LIVERNN_MIDI_IN_FAULT=deaf``)."""

"""Whether JACK runs a MIDI input's client: a ping looped into the input's own port.

A JACK client opened while another process opens and closes short-lived clients (a
patchbay polling with ``jack_lsp``) now and then comes up deaf: registered, its port
there and connected, and never run by the server, so the performer's controller or
keyboard silently does nothing. The outputs' sender finds this by listening to its own
port (``livernn.outputs.midi_sender.DeliveryCheck``); an input is checked the other way
round. A second client of this process (``livernn-ping``) sends ``PING`` into the
input's own port; the input's callback counts what comes back (``MidiIn._on_raw``) and
drops it. ``PING`` is an undefined MIDI real-time byte: MIDI receivers ignore it, mido
refuses to parse it, and it goes only to our own port, never into the performer's stream
or to a synth.

Anything the input hears proves that its client runs, so a ping is sent only after a
look (every ``EVERY`` s) that found nothing heard since the one before: while the
performer plays there are no pings, and one meets a played message in a JACK period only
when playing starts right after a silence (python-rtmidi's JACK callback has been seen
to garble bursts in a busy process, see tests/peers.py ``ProcessMidiProbe``).

A ping not back within ``WITHIN`` seconds while the server runs (its frame time moved
since the ping and since the previous look) is a verdict. Either client may be the deaf
one, so the first verdict replaces the check's client, and only a second one, about a
ping from that new client, replaces the input's (``MidiIn``): one deaf check client
does not cost the performer a reopened input (two in a row would).

``CheckedInput`` is the check and heal an input runs with it: both JACK inputs of a session,
the performer's (``livernn.controls.midi_in.MidiIn``) and the band's clock
(``livernn.sync.midi_clock.MidiClockIn``), are one."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

PING = [0xFD]  # undefined system real-time: receivers ignore it
CLIENT = "livernn-ping"
EVERY = 0.1  # seconds between looks (and pings)
MOVE_EVERY = 0.5  # seconds between looks at a replaced port's connections
WITHIN = 0.3  # seconds in which a ping must come back through JACK
HEAL_FIRST = 1.0  # seconds after replacing the input's client before another may follow
HEAL_MOST = 30.0  # ... doubling while replacements do not help, up to this


class InputCheck:
    """Pings one input port through its own JACK client and says when the input is not run.

    ``step`` is called every ``EVERY`` seconds from the input's watcher thread with the
    number of messages the input has heard so far, pings included; it returns None, ``"check"`` (the check's
    client was replaced: nothing to do) or ``"input"`` (replace the input's client now)."""

    def __init__(self, api: int, port: str) -> None:
        self.api = api
        self.port = port  # the input's own JACK port, full name
        self.verdicts = 0  # in a row, since a ping last came back
        self.replaced = 0  # the check's own clients replaced
        self._out, self.mine = self._open()
        self._heard = 0
        self._sent_at: float | None = None  # the unanswered ping's send time
        self._sent_frame: int | None = None  # the server's frame time then
        self._last_frame: int | None = None  # the server's frame time at the previous look
        self._wait = HEAL_FIRST
        self._next_heal = 0.0

    def _open(self):
        """A client sending into ``self.port``, and its port's full JACK name (found as the one
        new ``livernn-ping[-NN]:ping``; raises rtmidi's errors, or RuntimeError)."""
        import rtmidi

        from livernn.midi_system import free_client, list_ports, quiet_stderr

        before = set(list_ports(self.api, outputs=False))
        with quiet_stderr():
            out = rtmidi.MidiOut(self.api, name=CLIENT)
            ports = out.get_ports()
            if self.port not in ports:
                free_client(out)
                raise RuntimeError(f"{self.port} is not visible to the check's client")
            out.open_port(ports.index(self.port), name="ping")
        return out, new_port(self.api, False, before, CLIENT, "ping") or ""

    def follow(self, port: str) -> None:
        """The input has a new client and port: ping that one from now on."""
        from livernn.midi_system import jack_connect

        self.port = port
        if self.mine:
            jack_connect(self.mine, port)
        self._sent_at = None

    def step(self, heard: int, now: float) -> str | None:
        from livernn.midi_system import jack_last_frame

        frame = jack_last_frame()
        last, self._last_frame = self._last_frame, frame
        if heard != self._heard:  # the input heard something since the last look: it runs
            self._heard, self._sent_at, self.verdicts = heard, None, 0
            if now >= self._next_heal + 10 * self._wait:
                self._wait = HEAL_FIRST  # delivering for a while: the next stall starts afresh
            return None  # no ping while the performer plays (see the module's docstring)
        if self._sent_at is None:
            self._send(now, frame)
            return None
        running = frame is not None and frame != last and frame != self._sent_frame
        if now - self._sent_at <= WITHIN or not running:
            return None  # not overdue, or the server itself is stopped: no client of it runs
        if self.verdicts % 2 == 0:  # the first verdict of a pair: suspect our own client first
            self.verdicts += 1
            self._replace()
            self._send(now, frame)
            return "check"
        if now < self._next_heal:
            self._send(now, frame)  # the input was replaced a moment ago: wait, pinging
            return None
        self.verdicts += 1
        self._next_heal = now + self._wait
        self._wait = min(2 * self._wait, HEAL_MOST)
        self._sent_at = None  # the next look pings the input's new client
        return "input"

    def _send(self, now: float, frame: int | None) -> None:
        self._sent_at, self._sent_frame = now, frame
        self._out.send_message(PING)

    def _replace(self) -> None:
        """Retire the check's client (never closed, as a deaf client may not be) and open another."""
        import rtmidi

        from livernn.midi_system import DEAD_CLIENTS, jack_disconnect

        old, old_port = self._out, self.mine
        try:
            self._out, self.mine = self._open()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            return  # keep the old one: try again at the next verdict
        DEAD_CLIENTS.append(old)
        if old_port and old_port != self.mine:
            jack_disconnect(old_port, self.port)
        self.replaced += 1

    def retire(self) -> None:
        """The server is gone (or the input closes on a dead one): drop the client unclosed."""
        from livernn.midi_system import DEAD_CLIENTS

        DEAD_CLIENTS.append(self._out)

    def close(self) -> None:
        from livernn.midi_system import free_client

        free_client(self._out)


def new_port(api: int, outputs: bool, before: set[str], client: str, label: str) -> str | None:
    """The full JACK name of the one port ``client[-NN]:label`` not in ``before`` (the port list
    of that direction taken before the client opened it), or None."""
    from livernn.midi_system import list_ports

    new = [p for p in list_ports(api, outputs=outputs)
           if p not in before and p.startswith(client) and p.split(":", 1)[-1] == label]
    return new[0] if len(new) == 1 else None


def sources(api: int) -> list[str]:
    """The ports an input can receive from, less the run checks' own."""
    from livernn.midi_system import list_ports

    return [n for n in list_ports(api, outputs=False) if not n.startswith(CLIENT)]


class CheckedInput(ABC):
    """A JACK MIDI input that is checked and healed: its part of the work.

    The input has ``api``, ``_rt`` (its rtmidi client), ``jack_port`` (that client's port,
    full name), ``_lock`` and ``label`` (who it is in a line to the performer), and makes
    ``_open()`` (a new client with its port, listening through ``_listen``; sets
    ``jack_port``) and ``_say(line)``. It calls ``_init_check()`` before its first client
    opens and ``_start_check()`` once that one listens, ``_heard(message)`` from its
    callback for everything its current client hands it (True: our ping, drop it),
    ``_look(now)`` every ``EVERY`` s from its own thread while its server is the one it
    opened on (``_jack``), and ``_close_clients()`` at the end. ``_use(rt)`` puts a new client
    in place of a deaf one; an input that built something up from the old one's messages
    starts afresh there.

    Switches: ``LIVERNN_MIDI_CHECK=0`` opens no ping client; ``LIVERNN_MIDI_HEAL=0`` says a
    deaf client once and keeps it; ``LIVERNN_MIDI_IN_FAULT=deaf`` (tests) makes the input's
    first client drop everything it hears, as one the server never runs."""

    api: int
    _virtual: bool  # our own port, not connected to a source
    _lock: Any  # a threading.Lock
    _rt: Any  # rtmidi.MidiIn, or None once closed or its server gone
    jack_port: str | None
    label: str

    @abstractmethod
    def _open(self) -> Any:
        """A new client with its port, listening; sets ``jack_port``."""

    @abstractmethod
    def _say(self, message: str) -> None:
        """One line to the performer."""

    def _init_check(self) -> None:
        import rtmidi

        from livernn.midi_system import jack_server_id

        self.healed = 0  # clients replaced because the server did not run them
        self.last_error: str | None = None
        self.pings = 0  # the run check's pings heard
        self._events = 0  # everything the current client handed us, pings included: proof that it runs
        self._jack = jack_server_id() if self.api == rtmidi.API_UNIX_JACK else None
        self._retired: list[str] = []  # ports of clients replaced while their server ran
        self._next_move = 0.0
        self._check: InputCheck | None = None
        self._heal = os.environ.get("LIVERNN_MIDI_HEAL", "1") != "0"
        self._deaf = self._jack is not None and os.environ.get("LIVERNN_MIDI_IN_FAULT", "") == "deaf"

    def _start_check(self) -> None:
        """Open the run check (on JACK, unless ``LIVERNN_MIDI_CHECK=0``)."""
        import rtmidi

        if self._jack is None or os.environ.get("LIVERNN_MIDI_CHECK", "1") == "0" or self.jack_port is None:
            return
        try:
            self._check = InputCheck(self.api, self.jack_port)
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError) as exc:
            self._say(f"{self.label}: run check unavailable: {exc}")

    def _new_client(self, client: str, target: str, short: str, sysex: bool, **options: Any) -> Any:
        """A new rtmidi input client named ``client`` with our port: a virtual one called
        ``target`` (``_virtual``), else one called ``short`` connected to the source
        ``target`` (ValueError when it is gone). Keeps what ``sysex`` says, timing messages,
        never active sensing; on JACK ``jack_port`` becomes the port's full name. Not yet
        listening (``_listen``)."""
        import rtmidi

        from livernn.midi_system import list_ports, quiet_stderr

        jack = self.api == rtmidi.API_UNIX_JACK
        before = set(list_ports(self.api, outputs=True)) if jack else set()
        with quiet_stderr():
            rt = rtmidi.MidiIn(self.api, name=client, **options)
        rt.ignore_types(sysex=not sysex, timing=False, active_sense=True)
        label = target if self._virtual else short
        if self._virtual:
            rt.open_virtual_port(target)
        else:
            ports = rt.get_ports()
            if target not in ports:
                raise ValueError(f"{target!r} is gone")
            rt.open_port(ports.index(target), name=label)
        if jack:
            self.jack_port = new_port(self.api, True, before, client, label)
        return rt

    def _listen(self, rt: Any, callback: Any, data: Any = None) -> None:
        """``rt`` hands what it hears to ``callback`` (rtmidi's ``data`` with it); the first
        client under ``LIVERNN_MIDI_IN_FAULT=deaf`` drops it instead."""
        if self._deaf:
            self._deaf = False
            rt.set_callback(_drop)
        else:
            rt.set_callback(callback, data)

    def _heard(self, message: list[int]) -> bool:
        """Count a message of the current client; True when it is the run check's ping."""
        self._events += 1
        if message == PING:
            self.pings += 1
            return True
        return False

    def _look(self, now: float) -> None:
        if self._rt is not None and self._check is not None:
            self._run_check(now)
        if self._retired and now >= self._next_move:
            self._move_retired_links()
            self._next_move = now + MOVE_EVERY

    def _run_check(self, now: float) -> None:
        check = self._check
        if check is None or (not self._heal and self.last_error is not None):
            return  # healing off and the performer told: no more check clients replaced
        if check.step(self._events, now) != "input":
            return
        if not self._heal:
            self._say(f"{self.label}: its JACK client is not running (LIVERNN_MIDI_HEAL=0: not replaced)")
            return
        if self._replace_client(leave=check.mine):
            check.follow(self.jack_port or "")
            self._say(f"{self.label}: its JACK client was not running; opened a new one")

    def _use(self, rt: Any) -> None:
        self._rt = rt

    def _replace_client(self, leave: str) -> bool:
        """Open a new client for our port and retire the old one (never closed: closing a client
        the server does not run is not known to be safe). The old port's sources are
        connected to the new one (a named source is connected by the new client itself),
        then taken off the old; ``leave`` (the run check's port) is only taken off. JACK
        names the new client ``<name>-01``. True when the new port is up."""
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
        self._use(rt)
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
                if own and not source.startswith(CLIENT):
                    jack_connect(source, own)
                jack_disconnect(source, old)

    def _close_clients(self) -> None:
        """Close the input's client and its check's; on a server that is gone, keep them unclosed
        (closing a client of a dead server crashes the process)."""
        from livernn.midi_system import DEAD_CLIENTS, free_client, jack_server_id

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
        free_client(rt)


def _drop(_event, _data=None) -> None:
    """The callback of a client made deaf on purpose (``LIVERNN_MIDI_IN_FAULT=deaf``)."""

"""MIDI out from this process through python-rtmidi, on whichever of its APIs works here.

rtmidi is driven directly (raw three-byte messages) on the hot path: building a
``mido.Message`` and going through mido's port lock costs tens of microseconds per event
for nothing (mido is used for files, in the recorder). Which API (ALSA, JACK, CoreMIDI,
WinMM) is chosen in ``livernn.midi_system``, and every output says which.

A port opened by name is watched from ``maintain()`` (off the clock, listed through the
process's control client, so the sender's own client never waits on a port listing): if it
disappears, sends go nowhere harmlessly, and when it comes back it is reconnected. Each
output is one MIDI client, opened once and closed at the end; nothing here opens a client
just to look (see ``livernn.midi_system.api_works``).

This is the port the sender process (``midi_sender``) owns, and the in-process path
(``livernn.outputs.midi(name, process=False)``).
"""

from __future__ import annotations

import threading
import time

import rtmidi

from livernn.errors import LivernnError
from livernn.midi_system import (
    API_NAMES,
    CLIENT_NAME,
    DEAD_CLIENTS,
    choose_api,
    free_client,
    jack_connect,
    jack_connections,
    jack_disconnect,
    jack_server_id,
    list_ports,
    match_port,
    quiet_stderr,
)
from livernn.outputs.base import MidiBytesOutput, Output, OutputKind

JACK_DRAIN = 0.05  # seconds: several JACK periods, even at 1024 frames
JACK_SETTLE = 0.5  # seconds a restarted JACK server runs before we open clients on it


class MidiOutput(MidiBytesOutput):
    """A MIDI port: an existing one found by (part of) its name, or a new virtual one."""

    kind = "midi"

    def __init__(self, name: str, create: bool = True, api: int | None = None,
                 client_name: str = CLIENT_NAME) -> None:
        super().__init__()
        if not name or not isinstance(name, str):
            raise LivernnError(f"a MIDI port name is needed, got {name!r}")
        self.api = choose_api() if api is None else api
        self.api_name = API_NAMES.get(self.api, str(self.api))
        self.name = name
        self._client_name = client_name
        self._closed = False
        self._jack = jack_server_id() if self.api == rtmidi.API_UNIX_JACK else None
        self._follow_jack = self._jack is not None  # reopen on a restarted JACK server
        self._pending: tuple[int, int] | None = None  # a new server seen, and since when
        self._pending_at = 0.0
        self._lock = threading.Lock()  # taken by send and by reconnect, never while listing
        with quiet_stderr():
            self._out = rtmidi.MidiOut(self.api, name=client_name)
        ports = self._out.get_ports()
        try:
            match = match_port(ports, name)
        except LivernnError:  # two ports fit the name: say which, pick none
            free_client(self._out)
            raise
        self.target: str | None = None
        self.connected = True
        before = self._sources()
        if match is not None:
            self.target = ports[match]
            self._out.open_port(match, name=_port_label(name))
        elif create:
            try:
                self._out.open_virtual_port(name)
            except (rtmidi.RtMidiError, NotImplementedError):
                # python-rtmidi raises NotImplementedError on Windows MultiMedia ("Virtual ports
                # are not supported by the Windows MultiMedia API"), RtMidiError where the API
                # fails to make one: either way the name matched nothing we can open.
                free_client(self._out)
                raise LivernnError(
                    f"MIDI port {name!r} not found and {self.api_name} cannot create virtual ports; "
                    f"ports: {', '.join(ports) or 'none'}"
                ) from None
        else:
            free_client(self._out)
            raise LivernnError(
                f"no MIDI port matches {name!r} ({self.api_name}); ports: {', '.join(ports) or 'none'}"
            )
        self.reconnects = 0
        self.reopens = 0  # JACK clients replaced on the same server (``replace_client``)
        self._retired: list[str] = []  # ports of those clients, kept off every connection
        self.jack_port = self._own_port(before)

    def _sources(self) -> list[str]:
        return list_ports(self.api, outputs=False) if self.api == rtmidi.API_UNIX_JACK else []

    def _own_port(self, before: list[str]) -> str | None:
        """The full JACK name of the port this output sends from (None elsewhere, or unknown).

        Found as the one new source port with our port's name: JACK renames a second client
        called ``livernn`` to ``livernn-01``, so the name alone does not tell which is ours.
        The sender process connects its delivery check to it (midi_sender.py)."""
        if self.api != rtmidi.API_UNIX_JACK:
            return None
        short = self.name if self.target is None else _port_label(self.name)
        new = [p for p in self._sources() if p not in before and p.split(":", 1)[-1] == short]
        return new[0] if len(new) == 1 else None

    def describe(self) -> str:
        where = f"-> {self.target}" if self.target else f"virtual port {self.name!r}"
        state = "" if self.connected else " (port gone, waiting for it)"
        return f"MIDI {where} via {self.api_name}{state}"

    def _send(self, data: list[int], t: float) -> None:
        """Out at once (``t`` is when it was due: this output sends at the deadline)."""
        with self._lock:
            out = self._out
            if out is None:
                return
            try:
                out.send_message(data)
                self.sent += 1
            except Exception as exc:  # a vanished device: count it, keep the show going
                self.errors += 1
                self.last_error = str(exc)

    def maintain(self) -> None:
        """Reconnect to a watched port that went away and came back; reopen on a restarted JACK."""
        if self._follow_jack and self._follow_server():
            return
        if self._retired:
            self._move_retired_links()
        if self.target is None or self._out is None:
            return
        ports = list_ports(self.api)
        present = _find(ports, self.target)
        if present is None:
            self.connected = False
            return
        if self.connected:
            return
        with self._lock:
            if self._out is None:
                return
            self._out.close_port()
            current = self._out.get_ports()
            index = _find(current, self.target)
            if index is not None:
                before = self._sources()
                self._out.open_port(index, name=_port_label(self.name))
                self.jack_port = self._own_port(before) or self.jack_port
                self.connected = True
                self.reconnects += 1

    def _follow_server(self) -> bool:
        """Follow the JACK server under our name; True while our client is not (yet) on it.

        When the server our client lived on is gone, the client is dropped (never closed:
        libjack would crash us) and sends go nowhere. A new server is joined once it has
        been up for ``JACK_SETTLE`` seconds: rtmidi only warns when it cannot open its
        client, so a client made while the server was still starting was an object with no
        JACK client at all, silent for the rest of the show. Joining is checked: the port
        must be seen on the server, else it is tried again on a later pass."""
        server = jack_server_id()
        if self._out is not None and server == self._jack:
            return False
        with self._lock:
            if self._closed:
                return True
            self._retired = []  # (ports of the old server: the names may be ours again)
            if self._out is not None:  # our server is gone
                DEAD_CLIENTS.append(self._out)
                self._out, self.connected, self._jack = None, False, None
        if server is None:
            self._pending = None
            return True
        now = time.monotonic()
        if server != self._pending:
            self._pending, self._pending_at = server, now
            return True
        if now - self._pending_at < JACK_SETTLE:
            return True
        if self.target is not None and _find(list_ports(self.api), self.target) is None:
            return True  # the synth's port is not back yet: join when it is
        before = self._sources()
        try:
            out = self._new_client()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            return True  # (a client that failed half-way is left alone: try again later)
        own = self._own_port(before)
        if own is None:
            DEAD_CLIENTS.append(out)  # made while the server was not ready: try again later
            return True
        with self._lock:
            self._out, self._jack, self.jack_port, self.connected = out, server, own, True
        self.reconnects += 1
        return False

    def _new_client(self) -> rtmidi.MidiOut:
        """A fresh client with our port: virtual, or connected to the named target (raises
        rtmidi's errors, or RuntimeError when the target is not visible to it)."""
        with quiet_stderr():
            out = rtmidi.MidiOut(self.api, name=self._client_name)
            if self.target is None:
                out.open_virtual_port(self.name)
            else:
                index = _find(out.get_ports(), self.target)
                if index is None:
                    raise RuntimeError(f"{self.target} is not visible to the new client")
                out.open_port(index, name=_port_label(self.name))
        return out

    def replace_client(self, leave: tuple[str, ...] = ()) -> bool:
        """Open a new JACK client for this output on the server it is on, and retire the old one.

        For a client the server registered but never runs (deaf: opened while another process
        opened and closed short-lived clients, a polling patchbay; ``midi_sender.Healer``
        decides). The old client is kept in ``DEAD_CLIENTS``, never closed: closing a client
        the server does not run is not known to be safe. So a virtual port's new client is
        named like the old one with JACK's ``-01`` suffix; the old port's connections are
        made again from the new one (a named target is connected by the new client itself).
        Ports in ``leave`` (the retired delivery check's) are disconnected, not connected
        again. True when the new client's port is up."""
        if self.api != rtmidi.API_UNIX_JACK or self._closed or self._out is None:
            return False
        links = jack_connections(self.jack_port) if self.jack_port else []
        before = self._sources()
        try:
            out = self._new_client()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            return False
        own = self._own_port(before)
        if own is None:
            DEAD_CLIENTS.append(out)
            return False
        with self._lock:
            if self._closed or self._out is None:
                DEAD_CLIENTS.append(out)
                return False
            old, old_port = self._out, self.jack_port
            self._out, self.jack_port, self.connected = out, own, True
        DEAD_CLIENTS.append(old)
        if old_port:
            self._retired.append(old_port)
        for dest in links:
            # Off the old port first: a port the server never runs held up what it fed (the
            # synth heard nothing from the new client while the deaf one stayed connected).
            if old_port:
                jack_disconnect(old_port, dest)
            if dest != self.target and dest not in leave:
                jack_connect(own, dest)
        self.reopens += 1
        return True

    def _move_retired_links(self) -> None:
        """A patchbay that connects by name connects a retired port again (it keeps the name
        the output had): move each such connection to the port in use. A deaf port connected
        to a synth held the synth up (see ``replace_client``)."""
        own = self.jack_port
        check = f"{self._client_name}-check"
        for old in self._retired:
            if old == own:
                continue
            for dest in jack_connections(old):
                jack_disconnect(old, dest)
                if own and not dest.split(":", 1)[0].startswith(check):
                    jack_connect(own, dest)

    def close(self) -> None:
        with self._lock:
            out, self._out = self._out, None
            self._closed = True
        if out is not None and self._follow_jack and jack_server_id() != self._jack:
            DEAD_CLIENTS.append(out)  # its server is gone: closing the port would crash us
            return
        if out is not None:
            if self.api == rtmidi.API_UNIX_JACK:
                time.sleep(JACK_DRAIN)  # JACK sends from a ringbuffer once per period: let it empty
            free_client(out)


def _port_label(name: str) -> str:
    return "out-" + "".join(ch if ch.isalnum() else "_" for ch in name)[:24]


def _find(ports: list[str], name: str) -> int | None:
    return ports.index(name) if name in ports else None


def _build(name: str, options: dict, bpm: float) -> Output:
    from livernn.outputs import midi  # the sender process by default: see ``midi``

    return midi(options.get("port", name), create=options.get("create", True))


def _check_spec(rest: str) -> str:
    if not rest.strip():
        raise LivernnError(f"--out 'midi:{rest}': give a port name, e.g. midi:livernn")
    return rest


def _from_spec(rest: str) -> Output:
    from livernn.outputs import midi

    return midi(_check_spec(rest))


KIND = OutputKind("midi", {"port": str, "create": bool}, _build, ":NAME", _from_spec, _check_spec)

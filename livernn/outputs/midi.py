"""MIDI out through python-rtmidi, on whichever of its APIs works on this machine.

rtmidi is driven directly (raw three-byte messages) on the hot path: building a
``mido.Message`` and going through mido's port lock costs tens of microseconds per event
for nothing (mido is used for files, in the recorder). Linux offers ALSA (needs
``/dev/snd/seq``) and JACK (needs a running JACK server); macOS CoreMIDI; Windows WinMM.
``choose_api`` tries them in that order, or the one named by ``LIVERNN_MIDI_API``, and
every output says which it chose.

A port opened by name is watched from ``maintain()`` (off the clock, listed through the
process's control client, so the sender's own client never waits on a port listing): if it
disappears, sends go nowhere harmlessly, and when it comes back it is reconnected. Each
output is one MIDI client, opened once and closed at the end; nothing here opens a client
just to look (see ``api_works``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import rtmidi

from livernn.errors import LivernnError
from livernn.outputs.base import Output

API_NAMES = {
    rtmidi.API_LINUX_ALSA: "ALSA",
    rtmidi.API_UNIX_JACK: "JACK",
    rtmidi.API_MACOSX_CORE: "CoreMIDI",
    rtmidi.API_WINDOWS_MM: "WinMM",
}
_PREFERENCE = [rtmidi.API_LINUX_ALSA, rtmidi.API_MACOSX_CORE, rtmidi.API_WINDOWS_MM, rtmidi.API_UNIX_JACK]
CLIENT_NAME = "livernn"
_DEAD_CLIENTS: list = []  # clients of a JACK server that died: never closed (libjack would crash us)
JACK_DRAIN = 0.05  # seconds: several JACK periods, even at 1024 frames
JACK_SETTLE = 0.5  # seconds a restarted JACK server runs before we open clients on it


@contextlib.contextmanager
def quiet_stderr():
    """Hide what C libraries print while probing (JACK and ALSA complain on stderr)."""
    fd = 2
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def api_works(api: int) -> bool:
    """True if ``api`` can be used here, decided without opening a MIDI client.

    Opening and dropping a probe client is what livernn did before, in the REPL and in the
    sender process, at the moment the real client activated: a JACK server closing a client
    while it waited on it lost a notification to the real one ("ClientNotify fails ...
    Broken pipe" in jackd's log), whose process thread then never ran again: a show that
    looked fine and sent nothing. JACK works when its server socket is there (jack2), or
    when this process's one control client could be opened (``_JackControl``); ALSA when
    its sequencer device is there; CoreMIDI and WinMM whenever they are compiled in."""
    if api not in rtmidi.get_compiled_api():
        return False
    if api == rtmidi.API_UNIX_JACK:
        return jack_server_id() is not None or _CONTROL.client() is not None
    if api == rtmidi.API_LINUX_ALSA:
        return os.access("/dev/snd/seq", os.R_OK | os.W_OK)
    return True


def working_apis() -> list[int]:
    return [api for api in _PREFERENCE if api_works(api)]


def choose_api() -> int:
    """The rtmidi API to use: ``LIVERNN_MIDI_API`` (alsa/jack/coremidi/winmm) or the first that works."""
    wanted = os.environ.get("LIVERNN_MIDI_API", "").strip().lower()
    if wanted:
        by_name = {v.lower(): k for k, v in API_NAMES.items()}
        api = by_name.get(wanted)
        if api is None:
            raise LivernnError(f"LIVERNN_MIDI_API={wanted!r}: use one of {', '.join(by_name)}")
        if not api_works(api):
            raise LivernnError(f"MIDI API {API_NAMES[api]} (from LIVERNN_MIDI_API) does not work here")
        return api
    apis = working_apis()
    if not apis:
        raise LivernnError(
            "no MIDI system works here: ALSA needs /dev/snd/seq, JACK needs a running server "
            "(e.g. jackd -d dummy)"
        )
    return apis[0]


_LISTERS: dict[tuple[int, bool], object] = {}
_LISTERS_LOCK = threading.Lock()


def list_ports(api: int, outputs: bool = True) -> list[str]:
    """Names of the ports we could send to (``outputs``) or receive from.

    JACK: through this process's control client (never a client of its own, see
    ``api_works``). Other APIs: one lister client per process and direction, kept."""
    if api == rtmidi.API_UNIX_JACK:
        return _CONTROL.ports(outputs)
    with _LISTERS_LOCK:
        client = _LISTERS.get((api, outputs))
        if client is None:
            with quiet_stderr():
                client = (rtmidi.MidiOut if outputs else rtmidi.MidiIn)(api, name=f"{CLIENT_NAME}-list")
            _LISTERS[(api, outputs)] = client
        return list(client.get_ports())


def jack_period() -> float | None:
    """The running JACK server's period in seconds (None without JACK).

    Needed because JACK MIDI hands each client one port buffer per period, sized like an
    audio buffer (32 frames -> 128 bytes, room for about eight events): a burst larger than
    that in one period is dropped by rtmidi without a word, so the sender paces bursts.
    """
    return _CONTROL.period()


def jack_server_id() -> tuple[int, int] | None:
    """Which JACK server runs now under our server name: its socket's (device, inode), or None.

    A server started again under the same name makes a new socket, so a change means every
    client we had is dead (jack2 keeps its sockets in /dev/shm; elsewhere this finds nothing
    and restarts are not followed)."""
    name = os.environ.get("JACK_DEFAULT_SERVER", "default")
    try:
        st = os.stat(f"/dev/shm/jack_{name}_{os.getuid()}_0")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _JackControl:
    """This process's one helper JACK client: lists ports and reads the period.

    Made lazily, never activated (so the server never waits on it in its cycle), made again
    when the server is restarted, and never closed while its server lives: a JACK client
    opened and closed beside the real one is what silenced shows (see ``api_works``). It
    goes through the libjack that python-rtmidi loaded (the wheel bundles its own), so this
    process holds one libjack, not two with separate global state."""

    NO_START_SERVER = 1
    PORT_IS_INPUT, PORT_IS_OUTPUT = 1, 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lib = None
        self._client = None
        self._server: tuple[int, int] | None = None

    def _load(self):
        import ctypes
        import ctypes.util

        if self._lib is None:
            path = next((line.split()[-1] for line in _maps() if "libjack" in line.rsplit("/", 1)[-1]
                         and "libjackserver" not in line), None) or ctypes.util.find_library("jack")
            if path is None:
                return None
            lib = ctypes.CDLL(path)
            lib.jack_client_open.restype = ctypes.c_void_p
            lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
            lib.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
            lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
            lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
            lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
            lib.jack_free.argtypes = [ctypes.c_void_p]
            self._lib = lib
        return self._lib

    def client(self):
        """The control client of the server running now, or None (no server, no libjack)."""
        with self._lock:
            server = jack_server_id()
            if self._client is not None and server == self._server:
                return self._client
            if self._client is not None:
                _DEAD_CLIENTS.append(self._client)  # its server is gone: closing it would crash us
                self._client = None
            lib = self._load()
            if lib is None:
                return None
            with quiet_stderr():
                client = lib.jack_client_open(f"{CLIENT_NAME}-ctl".encode(), self.NO_START_SERVER, None)
            if client:
                self._client, self._server = client, server
            return self._client

    def period(self) -> float | None:
        client = self.client()
        if client is None:
            return None
        rate = self._lib.jack_get_sample_rate(client)
        return self._lib.jack_get_buffer_size(client) / rate if rate else None

    def ports(self, outputs: bool) -> list[str]:
        """MIDI ports we could send to (their inputs) or receive from, in rtmidi's order."""
        import ctypes

        client = self.client()
        if client is None:
            return []
        flags = self.PORT_IS_INPUT if outputs else self.PORT_IS_OUTPUT
        names = self._lib.jack_get_ports(client, None, b"8 bit raw midi", flags)
        if not names:
            return []
        try:
            found, i = [], 0
            while names[i] is not None:
                found.append(names[i].decode(errors="replace"))
                i += 1
            return found
        finally:
            self._lib.jack_free(ctypes.cast(names, ctypes.c_void_p))


def _maps() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            return [line.strip() for line in f if ".so" in line]
    except OSError:
        return []


_CONTROL = _JackControl()


class MidiOutput(Output):
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
        match = _find(ports, name)
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
                raise LivernnError(
                    f"MIDI port {name!r} not found and {self.api_name} cannot create virtual ports; "
                    f"ports: {', '.join(ports) or 'none'}"
                ) from None
        else:
            del self._out
            raise LivernnError(
                f"no MIDI port matches {name!r} ({self.api_name}); ports: {', '.join(ports) or 'none'}"
            )
        self.reconnects = 0
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

    def _send(self, message: list[int]) -> None:
        with self._lock:
            out = self._out
            if out is None:
                return
            try:
                out.send_message(message)
                self.sent += 1
            except Exception as exc:  # a vanished device: count it, keep the show going
                self.errors += 1
                self.last_error = str(exc)

    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        self._send([0x90 | (channel - 1), pitch, velocity])

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._send([0x80 | (channel - 1), pitch, 0])

    def control(self, channel: int, cc: int, value: int, t: float) -> None:
        self._send([0xB0 | (channel - 1), cc, value])

    def all_notes_off(self) -> None:
        for ch in range(16):
            self._send([0xB0 | ch, 123, 0])
            self._send([0xB0 | ch, 120, 0])

    def maintain(self) -> None:
        """Reconnect to a watched port that went away and came back; reopen on a restarted JACK."""
        if self._follow_jack and self._follow_server():
            return
        if self.target is None or self._out is None:
            return
        ports = list_ports(self.api)
        present = _find(ports, self.target, exact=True)
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
            index = _find(current, self.target, exact=True)
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
            if self._out is not None:  # our server is gone
                _DEAD_CLIENTS.append(self._out)
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
        if self.target is not None and _find(list_ports(self.api), self.target, exact=True) is None:
            return True  # the synth's port is not back yet: join when it is
        before = self._sources()
        try:
            with quiet_stderr():
                out = rtmidi.MidiOut(self.api, name=self._client_name)
                if self.target is None:
                    out.open_virtual_port(self.name)
                else:
                    index = _find(out.get_ports(), self.target, exact=True)
                    if index is None:
                        raise RuntimeError(f"{self.target} is not visible to the new client")
                    out.open_port(index, name=_port_label(self.name))
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            return True  # (a client that failed half-way is left alone: try again later)
        own = self._own_port(before)
        if own is None:
            _DEAD_CLIENTS.append(out)  # made while the server was not ready: try again later
            return True
        with self._lock:
            self._out, self._jack, self.jack_port, self.connected = out, server, own, True
        self.reconnects += 1
        return False

    def close(self) -> None:
        with self._lock:
            out, self._out = self._out, None
            self._closed = True
        if out is not None and self._follow_jack and jack_server_id() != self._jack:
            _DEAD_CLIENTS.append(out)  # its server is gone: closing the port would crash us
            return
        if out is not None:
            if self.api == rtmidi.API_UNIX_JACK:
                time.sleep(JACK_DRAIN)  # JACK sends from a ringbuffer once per period: let it empty
            out.close_port()
            del out


def _port_label(name: str) -> str:
    return "out-" + "".join(ch if ch.isalnum() else "_" for ch in name)[:24]


def _find(ports: list[str], name: str, exact: bool = False) -> int | None:
    for i, port in enumerate(ports):
        if (port == name) if exact else (name.lower() in port.lower()):
            return i
    return None

"""MIDI out through python-rtmidi, on whichever of its APIs works on this machine.

rtmidi is driven directly (raw three-byte messages) on the hot path: building a
``mido.Message`` and going through mido's port lock costs tens of microseconds per event
for nothing (mido is used for files, in the recorder). Linux offers ALSA (needs
``/dev/snd/seq``) and JACK (needs a running JACK server); macOS CoreMIDI; Windows WinMM.
``choose_api`` tries them in that order, or the one named by ``LIVERNN_MIDI_API``, and
every output says which it chose.

A port opened by name is watched from ``maintain()`` (off the clock, with a separate
client so the sender never waits on a port listing): if it disappears, sends go nowhere
harmlessly, and when it comes back it is reconnected.
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


def api_works(api: int, tries: int = 2) -> bool:
    """True if an rtmidi client can be made on ``api`` right now (a busy JACK server can
    refuse one client and take the next, so try twice)."""
    for attempt in range(tries):
        try:
            with quiet_stderr():
                probe = rtmidi.MidiOut(api, name=f"{CLIENT_NAME}-probe")
                probe.get_port_count()
            del probe
            return True
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            if attempt + 1 < tries:
                time.sleep(0.2)
    return False


def working_apis() -> list[int]:
    compiled = rtmidi.get_compiled_api()
    return [api for api in _PREFERENCE if api in compiled and api_works(api)]


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


def list_ports(api: int, outputs: bool = True) -> list[str]:
    """Names of the ports we could send to (``outputs``) or receive from."""
    with quiet_stderr():
        client = (rtmidi.MidiOut if outputs else rtmidi.MidiIn)(api, name=f"{CLIENT_NAME}-list")
    try:
        return list(client.get_ports())
    finally:
        del client


def jack_period() -> float | None:
    """The running JACK server's period in seconds (None without JACK).

    Needed because JACK MIDI hands each client one port buffer per period, sized like an
    audio buffer (32 frames -> 128 bytes, room for about eight events): a burst larger than
    that in one period is dropped by rtmidi without a word, so the sender paces bursts.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("jack")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.jack_client_open.restype = ctypes.c_void_p
    lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    lib.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
    lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
    lib.jack_client_close.argtypes = [ctypes.c_void_p]
    with quiet_stderr():
        client = lib.jack_client_open(f"{CLIENT_NAME}-period".encode(), 1, None)  # 1: JackNoStartServer
    if not client:
        return None
    try:
        return lib.jack_get_buffer_size(client) / lib.jack_get_sample_rate(client)
    finally:
        lib.jack_client_close(client)


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
        self._lock = threading.Lock()  # taken by send and by reconnect, never while listing
        with quiet_stderr():
            self._out = rtmidi.MidiOut(self.api, name=client_name)
        ports = self._out.get_ports()
        match = _find(ports, name)
        self._watch: rtmidi.MidiOut | None = None
        self.target: str | None = None
        self.connected = True
        if match is not None:
            self.target = ports[match]
            self._out.open_port(match, name=_port_label(name))
            with quiet_stderr():
                self._watch = rtmidi.MidiOut(self.api, name=f"{client_name}-watch")
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
        if self._follow_jack and jack_server_id() != self._jack:
            self._jack_restarted()
            return
        if self._watch is None or self.target is None:
            return
        ports = self._watch.get_ports()
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
                self._out.open_port(index, name=_port_label(self.name))
                self.connected = True
                self.reconnects += 1

    def _jack_restarted(self) -> None:
        """The JACK server went away (and may be back): drop the dead clients, open new ones."""
        server = jack_server_id()
        with self._lock:
            if self._closed:
                return
            _DEAD_CLIENTS.extend(c for c in (self._out, self._watch) if c is not None)
            self._out = self._watch = None
            self.connected = False
            self._jack = server
        if server is None:
            return  # no server: sends go nowhere until one is back
        index = None
        try:
            with quiet_stderr():
                out = rtmidi.MidiOut(self.api, name=self._client_name)
                watch = rtmidi.MidiOut(self.api, name=f"{self._client_name}-watch") if self.target else None
            if self.target is None:
                out.open_virtual_port(self.name)
            else:
                index = _find(out.get_ports(), self.target, exact=True)
                if index is not None:  # else the watch reconnects it when it appears
                    out.open_port(index, name=_port_label(self.name))
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            self._jack = None  # the server is still starting: try again next time
            return
        with self._lock:
            self._out, self._watch = out, watch
            self.connected = self.target is None or index is not None
        self.reconnects += 1

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
        self._watch = None


def _port_label(name: str) -> str:
    return "out-" + "".join(ch if ch.isalnum() else "_" for ch in name)[:24]


def _find(ports: list[str], name: str, exact: bool = False) -> int | None:
    for i, port in enumerate(ports):
        if (port == name) if exact else (name.lower() in port.lower()):
            return i
    return None

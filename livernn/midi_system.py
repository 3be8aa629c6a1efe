"""Which MIDI system works here, its ports, and the JACK control client: shared by MIDI in and out.

python-rtmidi offers ALSA (needs ``/dev/snd/seq``) and JACK (needs a running JACK server)
on Linux, CoreMIDI on macOS, WinMM on Windows. ``choose_api`` tries them in that order, or
the one named by ``LIVERNN_MIDI_API``. Nothing here opens a client just to look (see
``api_works``): ports are listed through one kept client per process and direction, or
through the process's one JACK control client.

A neutral module: the MIDI outputs (``livernn.outputs.midi_port``, the sender process)
and the MIDI input (``livernn.controls.midi_in``) both use it, and neither layer may import
the other (tests/test_layers.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

import rtmidi

from livernn.errors import LivernnError

if TYPE_CHECKING:
    import ctypes

API_NAMES = {
    rtmidi.API_LINUX_ALSA: "ALSA",
    rtmidi.API_UNIX_JACK: "JACK",
    rtmidi.API_MACOSX_CORE: "CoreMIDI",
    rtmidi.API_WINDOWS_MM: "WinMM",
}
_PREFERENCE = [rtmidi.API_LINUX_ALSA, rtmidi.API_MACOSX_CORE, rtmidi.API_WINDOWS_MM, rtmidi.API_UNIX_JACK]
CLIENT_NAME = "livernn"
DEAD_CLIENTS: list = []  # clients of a JACK server that died: never closed (libjack would crash us)


def free_client(client: Any) -> None:
    """Close an rtmidi client for good: its port and (JACK) its client. ``del`` does not: a
    python-rtmidi object holds its default error callback, a bound method of itself, from C++,
    so neither ``del`` nor the garbage collector ever frees it, and its JACK client stays
    active, run by the server every period, for the rest of the process (10 such clients
    took 10 % of a CPU in our process and 6 % more in jackd at 0.67 ms periods; every MIDI
    input closed, by a reload that changes the patch's [midi] table or another
    ``listen_midi``, left two). Only for a client of a server that still runs (see DEAD_CLIENTS)."""
    try:
        client.close_port()
    finally:
        client.delete()


_OWN_HELPERS = re.compile(rf"{CLIENT_NAME}-(check|list|first|ping)(-\d+)?")  # JACK numbers a second one
_ALSA_NUMBERS = re.compile(r" \d+:\d+$")  # ALSA lists 'synth:synth 130:0'


def match_port(ports: list[str], name: str, what: str = "MIDI port") -> int | None:
    """The index in ``ports`` of the one port ``name`` means, or None if none matches.

    First the whole name (``synth:in``), then a whole client or port name, any case
    (``synth`` is ``synth:in``, even beside ``synth2:in``), then part of a name (``fluid``).
    Two or more at the first level that has any is a one-line LivernnError naming them,
    never a silent pick. livernn's own helper clients (its delivery checks and listers)
    are nothing a performer means by part of a name."""
    if name in ports:
        return ports.index(name)
    want = name.strip().lower()

    def names(port: str) -> set[str]:
        client, _, short = _ALSA_NUMBERS.sub("", port).partition(":")
        return {client.strip().lower(), short.strip().lower()}

    found = [i for i, port in enumerate(ports) if want in names(port)]
    if not found:
        found = [i for i, port in enumerate(ports)
                 if want in port.lower() and not _OWN_HELPERS.fullmatch(port.partition(":")[0])]
    if len(found) > 1:
        listed = ", ".join(repr(ports[i]) for i in found[:6]) + (", ..." if len(found) > 6 else "")
        raise LivernnError(f"{what} {name!r} matches {len(found)} ports: {listed}; give the whole name")
    return found[0] if found else None


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


_LISTERS: dict[tuple[int, bool], Any] = {}  # rtmidi.MidiIn/MidiOut (untyped)
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


def jack_last_frame() -> int | None:
    """The running JACK server's frame time at its current cycle's start: it advances while the
    server runs (None without JACK). Tells a frozen server from one client of ours not run."""
    return _CONTROL.last_frame()


def jack_connections(port: str) -> list[str]:
    """The ports a JACK port (full name) is connected to, through the control client."""
    return _CONTROL.connections(port)


def jack_connect(source: str, dest: str) -> bool:
    """Connect two JACK ports (full names) through the control client; True when connected."""
    return _CONTROL.connect(source, dest)


def jack_disconnect(source: str, dest: str) -> bool:
    """Disconnect two JACK ports (full names) through the control client; True when done."""
    return _CONTROL.disconnect(source, dest)


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
        self._lib: ctypes.CDLL | None = None
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
            lib.jack_last_frame_time.restype = ctypes.c_uint32
            lib.jack_last_frame_time.argtypes = [ctypes.c_void_p]
            lib.jack_port_by_name.restype = ctypes.c_void_p
            lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
            lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
            lib.jack_disconnect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
            self._lib = lib
        return self._lib

    def client(self):
        """The control client of the server running now, or None (no server, no libjack)."""
        with self._lock:
            server = jack_server_id()
            if self._client is not None and server == self._server:
                return self._client
            if self._client is not None:
                DEAD_CLIENTS.append(self._client)  # its server is gone: closing it would crash us
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
        client, lib = self.client(), self._lib
        if client is None or lib is None:
            return None
        rate = lib.jack_get_sample_rate(client)
        return lib.jack_get_buffer_size(client) / rate if rate else None

    def last_frame(self) -> int | None:
        """The frame time at the start of the server's current cycle (None without JACK).

        Read from the server's shared memory: it advances while the server runs its cycles
        and stands still while the whole server is stopped, whatever our own clients do."""
        client, lib = self.client(), self._lib
        if client is None or lib is None:
            return None
        return int(lib.jack_last_frame_time(client))

    def connections(self, port: str) -> list[str]:
        """The ports ``port`` (a full JACK name) is connected to."""
        client, lib = self.client(), self._lib
        if client is None or lib is None:
            return []
        handle = lib.jack_port_by_name(client, port.encode())
        return _take_names(lib, lib.jack_port_get_all_connections(client, handle) if handle else None)

    def connect(self, source: str, dest: str) -> bool:
        """Connect two ports by full name; True when connected (or already were)."""
        client, lib = self.client(), self._lib
        if client is None or lib is None:
            return False
        return lib.jack_connect(client, source.encode(), dest.encode()) in (0, 17)  # 17: EEXIST

    def disconnect(self, source: str, dest: str) -> bool:
        """Disconnect two ports by full name; True when done."""
        client, lib = self.client(), self._lib
        if client is None or lib is None:
            return False
        return lib.jack_disconnect(client, source.encode(), dest.encode()) == 0

    def ports(self, outputs: bool) -> list[str]:
        """MIDI ports we could send to (their inputs) or receive from, in rtmidi's order."""
        client, lib = self.client(), self._lib
        if client is None or lib is None:
            return []
        flags = self.PORT_IS_INPUT if outputs else self.PORT_IS_OUTPUT
        return _take_names(lib, lib.jack_get_ports(client, None, b"8 bit raw midi", flags))


def _take_names(lib, names) -> list[str]:
    """A JACK NULL-terminated array of port names as a list; frees the array."""
    import ctypes

    if not names:
        return []
    try:
        found, i = [], 0
        while names[i] is not None:
            found.append(names[i].decode(errors="replace"))
            i += 1
        return found
    finally:
        lib.jack_free(ctypes.cast(names, ctypes.c_void_p))


def _maps() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            return [line.strip() for line in f if ".so" in line]
    except OSError:
        return []


_CONTROL = _JackControl()

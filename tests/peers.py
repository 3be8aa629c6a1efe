"""Real peers for integration tests: JACK, scsynth, FluidSynth, and a MIDI probe.

Each peer is a real process started on free ports with a unique JACK server name, and
stopped by process id. A missing program is a test failure, never a skip: the README's
test command installs them, and CI must notice when it did not.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
JACK_RATE = 48000
JACK_PERIOD = 32


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: run ./run-tests.sh, which installs the test peers")
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


PR_SET_PDEATHSIG = 1
# Looked up here, not in the forked child: a child of a threaded process should only call.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with(parent: int) -> None:
    """In a peer's child, before its program starts: the kernel sends it SIGTERM when the
    test process dies, however it dies (a killed pytest run left jackd, scsynth and
    FluidSynth running as orphans). SIGTERM lets jackd remove its shared memory. Should the
    test process already be gone, the child ends here. Linux only; elsewhere a no-op.

    The kernel watches the *thread* that started the peer: start peers from the main
    thread (fixtures and tests do), not from a thread that ends before the peer should."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:
        os._exit(1)


def start_peer(args: list[str], **kwargs) -> subprocess.Popen:
    """Start a peer program in a session of its own that dies with the test process."""
    return subprocess.Popen(args, start_new_session=True, preexec_fn=functools.partial(_die_with, os.getpid()),
                            **kwargs)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


_JACK_ASKER = r"""
import ctypes, ctypes.util, sys
import rtmidi  # loads the libjack python-rtmidi bundles: the same one livernn uses
path = next((line.split()[-1] for line in open("/proc/self/maps") if "libjack" in line.rsplit("/", 1)[-1]
             and "libjackserver" not in line), None)
lib = ctypes.CDLL(path or ctypes.util.find_library("jack"))
lib.jack_client_open.restype = ctypes.c_void_p  # variadic: name, options, status, server name
lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
lib.jack_free.argtypes = [ctypes.c_void_p]
client = None
for line in sys.stdin:
    command, *args = line.rstrip("\n").split("\t")
    if not client:  # NoStartServer | ServerName; never activated, never closed
        client = lib.jack_client_open(b"peers", 0x05, None, sys.argv[1].encode())
    if not client:
        print("down", flush=True)
    elif command == "ports":
        names, found = lib.jack_get_ports(client, None, None, 0), []
        i = 0
        while names and names[i] is not None:
            found.append(names[i].decode(errors="replace"))
            i += 1
        if names:
            lib.jack_free(ctypes.cast(names, ctypes.c_void_p))
        print("\t".join(["ok", *found]), flush=True)
    elif command == "connect":
        print("ok\t%d" % lib.jack_connect(client, args[0].encode(), args[1].encode()), flush=True)
"""


class _Asker:
    """One JACK client, kept in a process of its own, that lists a server's ports and connects
    them for the tests.

    ``jack_lsp`` and ``jack_connect`` are each a JACK client opened and closed for one
    question. Polled every 50 ms (``wait_port``) while a process under test opened its own
    clients, they left that process deaf now and then: the server loses a notification to a
    new client while another closes, and the new one's process thread never runs (see
    ``livernn.midi_system.api_works``). Measured: a process opening a JACK MIDI input and
    output, then sent 20 notes, heard none in 3 of 15 starts beside one such poller, 0 of 12
    without it, 0 of 15 beside this one; the calibrate and ``play --sync`` tests' rare
    "nothing came back" and missing tempo lines. The client is never activated and never
    closed; it lives in its own process because a client in the test process crashed it
    (SIGSEGV) when its server quit (tests stop their own servers)."""

    TIMEOUT = 10.0

    def __init__(self, server: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _JACK_ASKER, server], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, start_new_session=True)
        self._buffer = b""
        self._lock = threading.Lock()

    def ask(self, *words: str) -> list[str] | None:
        """The answer's fields, or None when the server cannot be reached."""
        import select

        with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            try:
                self.proc.stdin.write(("\t".join(words) + "\n").encode())
                self.proc.stdin.flush()
            except BrokenPipeError:
                return None
            deadline = time.monotonic() + self.TIMEOUT
            fd = self.proc.stdout.fileno()
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise TimeoutError(f"JACK did not answer {words[0]} within {self.TIMEOUT:g} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
        fields = line.decode().split("\t")
        return fields[1:] if fields[0] == "ok" else None

    def close(self) -> None:
        stop_process(self.proc)


@dataclass
class JackServer:
    name: str
    proc: subprocess.Popen
    log: Path
    _asker: _Asker | None = field(default=None, repr=False)

    def _ask(self, *words: str) -> list[str] | None:
        if self.proc.poll() is not None:  # the server is gone: so is what asked it
            if self._asker is not None:
                self._asker.close()
                self._asker = None
            return None
        if self._asker is None or self._asker.proc.poll() is not None:
            self._asker = _Asker(self.name)
        return self._asker.ask(*words)

    def ports(self) -> list[str]:
        """Every port of this server (asked through one kept client: ``_Asker``)."""
        return self._ask("ports") or []

    def connect(self, source: str, dest: str) -> None:
        answer = self._ask("connect", source, dest)
        if answer is None or int(answer[0]) not in (0, 17):  # 17: EEXIST, connected already
            raise RuntimeError(f"cannot connect JACK port {source} to {dest} on {self.name}: {answer}")

    def wait_port(self, name: str, timeout: float = 10.0) -> str:
        return wait_for(
            lambda: next((p for p in self.ports() if name in p), None), timeout, f"JACK port {name}"
        )

    def alive(self) -> bool:
        return self.proc.poll() is None


def _live_jackd() -> bool:
    """Is any jackd process running (not a zombie) on this machine?"""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ", 1)
        except OSError:
            continue
        if len(fields) == 2 and fields[0].endswith("(jackd") and not fields[1].startswith("Z"):
            return True
    return False


def clear_stale_jack_registry() -> bool:
    """Remove JACK's shared-memory registry when no jackd runs at all.

    A jackd killed by SIGKILL keeps its slot in /dev/shm/jack-shm-registry, which holds 8
    servers per machine; after eight such deaths every new server fails with "Too many
    servers already active". With no server alive the registry and its segments describe
    nothing, and jackd recreates them on start. While other servers run, or a process still
    maps the registry, it stays and only the slots of dead servers are freed
    (``_free_dead_server_slots``)."""
    if _live_jackd() or _registry_mapped():
        _free_dead_server_slots()
        return False
    shm = Path("/dev/shm")
    for entry in [*shm.glob("jack-shm-registry"), *shm.glob("jack_*"), *shm.glob("jack-*")]:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return True


_JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")
_JACK_SEMAPHORE_KEY = 0x282929  # the SysV semaphore that locks the registry (jack2 common/shm.c)
_JACK_MAX_SERVERS = 8
_JACK_HEADER = 24  # magic, protocol, type, size, hdr_len, entry_len: then the server slots


def _free_dead_server_slots() -> int:
    """Free the registry's server slots whose jackd is gone; returns how many were freed.

    jackd reclaims a dead server's slot only for a server of the same name, and these tests
    name servers uniquely, so each jackd that dies without unregistering (SIGKILL, a test
    run cut short) keeps one of the 8 slots for good. Once the suite's servers run beside
    the registry no process may remove, the 9th such death made every later start fail
    with "Too many servers already active" (the restarted server of the JACK-restart test
    first). The slots are cleared as jackd itself clears a dead one: under the registry's
    lock, a slot whose pid no longer exists is zeroed."""
    import ctypes
    import mmap
    import struct

    try:
        fd = os.open(_JACK_REGISTRY, os.O_RDWR)
    except OSError:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    semid = libc.semget(_JACK_SEMAPHORE_KEY, 0, 0)
    freed = 0
    try:
        size = os.fstat(fd).st_size
        if size < _JACK_HEADER:
            return 0
        with mmap.mmap(fd, size) as reg:
            hdr_len = struct.unpack_from("<I", reg, 16)[0]
            slot = (hdr_len - _JACK_HEADER) // _JACK_MAX_SERVERS
            if reg[:4] != b"KCAJ" or slot < 4 or hdr_len > size:
                return 0  # not the registry layout this code knows: leave it alone
            locked = semid != -1 and _semop(libc, semid, -1)
            if semid != -1 and not locked:
                return 0
            try:
                for i in range(_JACK_MAX_SERVERS):
                    at = _JACK_HEADER + i * slot
                    pid = struct.unpack_from("<i", reg, at)[0]
                    if pid > 0 and not Path(f"/proc/{pid}").exists():
                        reg[at:at + slot] = bytes(slot)
                        freed += 1
            finally:
                if locked:
                    _semop(libc, semid, 1)
    finally:
        os.close(fd)
    return freed


def _semop(libc, semid: int, op: int) -> bool:
    """One ``semop`` on JACK's registry lock, undone by the kernel if this process dies;
    taking it gives up after 5 s (a lock never released is not worth hanging a test on)."""
    import ctypes

    class SemBuf(ctypes.Structure):
        _fields_ = [("sem_num", ctypes.c_ushort), ("sem_op", ctypes.c_short), ("sem_flg", ctypes.c_short)]

    class TimeSpec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    buf = SemBuf(0, op, 0x1000)  # SEM_UNDO
    return libc.semtimedop(semid, ctypes.byref(buf), 1, ctypes.byref(TimeSpec(5, 0))) == 0


def _registry_mapped() -> bool:
    """Whether any process (this one included) still has JACK's registry mapped.

    libjack maps /dev/shm/jack-shm-registry once per process and never maps it again: a
    registry removed and recreated under a live JACK client leaves that process unable to
    open any client ("Cannot open shm segment"), or crashes it. So a registry stays while
    any process holds it, even with no jackd running (the gap of a JACK restart test)."""
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            if "jack-shm-registry" in maps.read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False


@contextlib.contextmanager
def jack_env() -> Iterator[None]:
    """Give back the session's JACK server settings that ``start_jack`` changes for a private one."""
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_jack(tmpdir: Path, name: str | None = None, period: int = JACK_PERIOD) -> JackServer:
    """Start ``jackd -d dummy`` under a unique server name and make it this process's default.

    A longer ``period`` keeps the graph free of xruns (and of the MIDI events an xrun drops)
    on a loaded machine, where timing precision is not what a test measures."""
    require("jackd")
    require("jack_lsp")
    clear_stale_jack_registry()
    # Keep server names short: jackd 1.9.21 clients abort (glibc malloc assertion) when the
    # server name reaches 24 characters, which "livernn-test-<5-digit pid>-<5 digits>" did.
    name = name or f"lrt{os.getpid()}-{time.monotonic_ns() % 100000}"
    log = tmpdir / f"{name}.log"
    proc = start_peer(
        # -S (synchronous): the server waits for every client each period. In the default
        # asynchronous mode a client that misses a period on a loaded machine loses that
        # period's MIDI or replays its stale buffer (dropped and doubled note-ons/offs).
        ["jackd", "-S", "-n", name, "-d", "dummy", "-r", str(JACK_RATE), "-p", str(period)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = JackServer(name, proc, log)
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"

    def up() -> bool:
        # A short-lived jack_lsp, not the kept asker: a client opened while the server is
        # still starting can be left half-made, and the kept one would stay so for the whole
        # session (a clean-clone run had its session server time out on a client every
        # period from the start: "ProcessWriteSlaves error", 13.5 ms xruns). Nothing else
        # opens clients on a server this new, so the churn _Asker avoids does not arise.
        if proc.poll() is not None:
            pytest.fail(f"jackd exited: {log.read_text()[-500:]}")
        out = subprocess.run(["jack_lsp", "-s", name], capture_output=True, text=True, timeout=10)
        return bool(out.stdout.strip())

    try:
        wait_for(up, 15, "jackd to start")
        time.sleep(0.3)  # settle: the kept asker's first client opens on a server that runs
        server.ports()
    except BaseException:
        stop_process(proc)  # never leave a half-started server behind
        raise
    return server


@dataclass
class Scsynth:
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> None:
        """Stop the server and remove the 8 MB shared-memory file scsynth leaves behind."""
        stop_process(self.proc)
        Path(f"/dev/shm/SuperColliderServer_{self.port}").unlink(missing_ok=True)


def start_scsynth(tmpdir: Path, jack: JackServer, port: int | None = None) -> Scsynth:
    """Start scsynth on ``port`` (default: a free one; the same port again plays a restart)."""
    require("scsynth")
    port = port or free_udp_port()
    log = tmpdir / f"scsynth-{port}.log"
    env = dict(os.environ, JACK_DEFAULT_SERVER=jack.name, SC_JACK_DEFAULT_OUTPUTS="")
    proc = start_peer(
        # -z: control block = JACK period. With the default 64-sample block on 32-frame JACK
        # periods scsynth never runs timestamped bundles (only immediate commands work).
        ["scsynth", "-u", str(port), "-B", "127.0.0.1", "-i", "0", "-o", "2", "-R", "0",
         "-z", str(JACK_PERIOD)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"scsynth exited: {log.read_text()[-500:]}")
        return "server ready" in log.read_text()

    wait_for(ready, 20, "scsynth to start")
    return Scsynth(port, proc, log)


@dataclass
class FluidSynth:
    """FluidSynth reading JACK MIDI and writing raw 44.1 kHz stereo s16 to a file."""

    midi_port: str
    raw: Path
    proc: subprocess.Popen

    def stop(self) -> Path:
        stop_process(self.proc)
        return self.raw


def start_fluidsynth(tmpdir: Path, jack: JackServer) -> FluidSynth:
    require("fluidsynth")
    if not SOUNDFONT.is_file():
        pytest.fail(f"{SOUNDFONT} missing: install timgm6mb-soundfont (./run-tests.sh does)")
    ident = f"fsynth{time.monotonic_ns() % 100000}"
    raw = tmpdir / f"{ident}.raw"
    proc = start_peer(
        ["fluidsynth", "-q", "-i", "-s", "-a", "file", "-m", "jack",
         "-o", f"audio.file.name={raw}", "-o", "audio.file.type=raw",
         "-o", f"midi.jack.id={ident}", "-o", f"midi.jack.server={jack.name}",
         "-g", "1.0", str(SOUNDFONT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    port = jack.wait_port(f"{ident}:", timeout=15)
    return FluidSynth(port, raw, proc)


def raw_rms(raw: Path, start_s: float = 0.0, length_s: float | None = None) -> float:
    """RMS amplitude (0..1) of a raw s16 stereo 44.1 kHz file, measured by sox."""
    require("sox")
    args = ["sox", "-t", "raw", "-r", "44100", "-e", "signed", "-b", "16", "-c", "2", str(raw), "-n"]
    if start_s or length_s is not None:
        args += ["trim", str(start_s)] + ([str(length_s)] if length_s is not None else [])
    out = subprocess.run([*args, "stat"], capture_output=True, text=True, timeout=60)
    for line in out.stderr.splitlines():
        if line.startswith("RMS     amplitude"):
            return float(line.split(":")[1])
    raise AssertionError(f"sox gave no RMS: {out.stderr[-300:]}")


@dataclass
class MidiProbe:
    """A JACK MIDI input that records (monotonic arrival time, message bytes)."""

    client: str
    received: list[tuple[float, list[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import rtmidi

        self._lock = threading.Lock()
        self._in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=self.client)
        self._in.ignore_types(sysex=False, timing=True, active_sense=True)
        self._in.open_virtual_port("in")
        self._in.set_callback(self._on_message)

    @property
    def port(self) -> str:
        return f"{self.client}:in"

    def _on_message(self, event, _data=None) -> None:
        message, _delta = event
        with self._lock:
            self.received.append((time.monotonic(), list(message)))

    def messages(self) -> list[list[int]]:
        with self._lock:
            return [m for _, m in self.received]

    def of(self, status: int) -> list[float]:
        """Arrival times of the messages whose status byte is ``status``."""
        with self._lock:
            return [t for t, m in self.received if m and m[0] == status]

    def note_balance(self) -> dict[tuple[int, int], int]:
        """Open notes per (channel, pitch): note-ons minus note-offs; all zero = none stuck."""
        open_: dict[tuple[int, int], int] = {}
        for m in self.messages():
            kind, ch = m[0] & 0xF0, m[0] & 0x0F
            if kind == 0x90 and len(m) == 3 and m[2] > 0:
                open_[(ch, m[1])] = open_.get((ch, m[1]), 0) + 1
            elif (kind == 0x80 or (kind == 0x90 and len(m) == 3 and m[2] == 0)) and open_.get((ch, m[1]), 0) > 0:
                open_[(ch, m[1])] -= 1
        return {k: v for k, v in open_.items() if v}

    def close(self) -> None:
        from livernn.midi_system import free_client  # ``del`` never frees an rtmidi client

        self._in.cancel_callback()
        free_client(self._in)


_PROBE_SCRIPT = r"""
import sys, time, rtmidi
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=sys.argv[1])
inp.ignore_types(sysex=False, timing=sys.argv[2] == "0", active_sense=True)
inp.open_virtual_port("in")
def on_message(event, data=None):
    sys.stdout.write("%.7f %s\n" % (time.monotonic(), " ".join(map(str, event[0]))))
    sys.stdout.flush()
inp.set_callback(on_message)
print("ready", flush=True)
sys.stdin.read()
"""


@dataclass
class ProcessMidiProbe(MidiProbe):
    """A MidiProbe that listens in a separate Python process (same interface).

    Use it to test a sender that runs busy Python threads: python-rtmidi's JACK input
    callback delivers corrupted bursts (the later messages of a burst arrive as copies of
    the first) when the *receiving* process has a busy Python thread, so an in-process
    probe would measure that bug, not the sender. Arrival times are the probe process's
    ``time.monotonic()``, the same clock as the test's. ``timing`` keeps MIDI clock and
    transport messages (0xF8, Start, Stop...), which a probe drops by default.
    """

    timing: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE_SCRIPT, self.client, "1" if self.timing else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            stop_process(self.proc)
            pytest.fail(f"MIDI probe process {self.client} did not start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            t, *data = line.split()
            with self._lock:
                self.received.append((float(t), [int(x) for x in data]))

    def close(self) -> None:
        stop_process(self.proc)

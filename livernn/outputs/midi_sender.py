"""The MIDI sender process: owns one MIDI port and sends each message at its deadline.

Started by ``MidiProcessOutput`` as ``python -m livernn.outputs.midi_sender``. It is one
thread in its own interpreter, so nothing holds a GIL it needs: a REPL user's busy code,
or a thread of the parent that the OS has preempted while holding the parent's GIL, cannot
delay it. It asks for SCHED_FIFO where allowed, sleeps (select on stdin) until just before
the next deadline, then spins to it.

JACK delivers MIDI at the start of the period after the one it was written in, so a
message arrives between 0 and one period late (0.67 ms at 32 frames). The process sends
``ahead`` = half a period (plus the ~0.05 ms a receiving client takes to run) early, which
centres the arrival on the logical time instead of trailing it; measured with
bench/bench_timing.py (``LIVERNN_MIDI_AHEAD`` in seconds overrides, 0 turns it off).

Protocol, one line each way. In: ``at <monotonic time> <hex bytes>`` (send then) and
``quit`` (send what is pending, close); ``clock``/``cstart``/``cstop`` for MIDI clock out
(``midi_clock_out``). Out: ``ok <description>`` once the port is
open, ``error <message>`` (the parent shows it), ``alive`` every ``HEARTBEAT`` seconds
(the parent takes silence as a stopped or stuck sender), ``late <p50> <p99> <max> <n>``
every ``LATE_EVERY`` seconds (ms by which sends missed their own deadlines, over the last
``n`` messages: the timing this process promises, measured where it is kept), ``stalled <reason>`` when what it
sends stops reaching its port and ``flowing`` when it does again, ``reopened <n>`` after it
replaced a JACK client the server did not run (``Healer``; an ``error`` line says so). ``time.monotonic()`` is
the same clock in both processes (CLOCK_MONOTONIC).

Delivery check (JACK): a second client of this process listens to our own output port and
every message sent must come back within ``CHECK_WITHIN`` seconds. A show was seen silent
while everything else looked well: the sender alive, its lateness normal, and its JACK
client no longer processing (see ``livernn.midi_system.api_works``). Only what comes back
through JACK proves that JACK runs our client.
"""

from __future__ import annotations

import heapq
import os
import select
import sys
import time
from collections import deque
from collections.abc import Callable

from livernn.outputs.midi_clock_out import ClockOut

SPIN = 0.0015
MAINTAIN_EVERY = 0.5
RECEIVER_DELAY = 0.00005  # seconds from a JACK period's start to a receiving client's callback
BURST = 6  # messages per JACK period, at most (JACK MIDI drops what does not fit)
HEARTBEAT = 0.1  # seconds between "alive" lines
LATE_EVERY = 1.0  # seconds between "late" figures
CHECK_WITHIN = 0.3  # seconds in which a message sent must come back through JACK
HEAL_FIRST = 1.0  # seconds after one replacement of our JACK clients before another may follow
HEAL_MOST = 30.0  # ... doubling while replacements do not help, up to this


class DeliveryCheck:
    """Our own output port, listened to by a second JACK client of this process.

    RtMidi queues what arrives in C++ (no Python in JACK's thread); ``poll`` takes it off
    between sends. Each message sent is owed back; a debt older than ``CHECK_WITHIN`` means
    the port is not delivering. Messages lost while stalled never come back, so the debts
    are dropped when a stall is declared and the next messages decide recovery."""

    def __init__(self, port) -> None:
        self.port = port
        self._open()

    def _open(self) -> None:
        """Open a fresh JACK check client and start with no debts (also after a JACK restart)."""
        import rtmidi

        from livernn.midi_system import jack_server_id

        port = self.port
        self._rtmidi = rtmidi
        self.server = jack_server_id()
        self._in = rtmidi.MidiIn(port.api, name=f"{port._client_name}-check", queue_size_limit=8192)
        self._in.ignore_types(sysex=False, timing=False, active_sense=False)
        self._connected_to: str | None = None
        self._reconnects = -1
        self.owed: deque[float] = deque()
        self.stalled: str | None = None
        self._made_at = time.monotonic()

    def _connect(self) -> None:
        target = self.port.jack_port
        if (target, self.port.reconnects) == (self._connected_to, self._reconnects):
            return
        self._reconnects = self.port.reconnects
        self.owed.clear()
        try:
            if self._connected_to is not None:
                self._in.close_port()
            self._connected_to = None
            ports = self._in.get_ports()
            if target in ports:
                self._in.open_port(ports.index(target), name="check")
                self._connected_to = target
            elif target is not None and not ports:
                # rtmidi only warns when its client cannot open (a server still starting):
                # this one sees nothing, so make another on a later pass.
                self._reconnects = -1
                if time.monotonic() - self._made_at > 1.0:
                    self.replace_dead()
        except (self._rtmidi.SystemError, self._rtmidi.RtMidiError, RuntimeError):
            self._connected_to = None

    def sent(self, now: float) -> None:
        if self._connected_to is not None:
            self.owed.append(now)

    def poll(self, now: float) -> str | None:
        """Take what came back; returns "stalled <why>" or "flowing" when the state changes."""
        self._connect()
        get = self._in.get_message
        while get() is not None:
            if self.owed:
                self.owed.popleft()
            if self.stalled is not None:
                self.stalled = None
                return "flowing"
        if self.owed and now - self.owed[0] > CHECK_WITHIN and self.stalled is None:
            self.stalled = (f"{len(self.owed)} message(s) sent to {self._connected_to} did not come back "
                            f"through JACK within {1000 * CHECK_WITHIN:.0f} ms: its JACK client is not running")
            self.owed.clear()
            return f"stalled {self.stalled}"
        return None

    def replace_dead(self) -> None:
        """After a JACK restart, or a deaf client: retire the old client (never closed), open a new one.

        A declared stall stays declared: "flowing" is said once messages come back through
        the new client."""
        from livernn.midi_system import DEAD_CLIENTS

        stalled = self.stalled
        DEAD_CLIENTS.append(self._in)
        self._open()
        self.stalled = stalled


class Healer:
    """Replaces our JACK clients when the server runs but does not run them (a deaf client).

    A client opened while another process opens and closes short-lived JACK clients (a
    patchbay polling with ``jack_lsp``) now and then is registered but never processed: every
    message sent into it is lost, for good. When the delivery check says stalled, the server
    is the one our port was opened on (a restart is ``MidiOutput.maintain``'s), and the
    server's frame time advanced since the stall was seen (a frozen server runs no client:
    a new one would not help, and opening it would wait on the frozen server), the output's
    client and the check's are replaced (``MidiOutput.replace_client``: the old port is
    taken off its connections, since a deaf client held up the synth it fed, which heard
    nothing from the new client while the deaf one stayed connected). Messages sent into
    the deaf client are not sent again (the parent's note-offs follow; a note-off for a lost
    note-on is harmless). At most once per ``HEAL_FIRST`` s, doubling while stalls persist;
    ``LIVERNN_MIDI_HEAL=0`` turns it off."""

    def __init__(self, port, check: DeliveryCheck) -> None:
        self.port, self.check = port, check
        self.wait = HEAL_FIRST
        self.next_at = 0.0
        self._frame: int | None = None  # the server's frame time when the stall was seen
        self._running_since: float | None = None  # when it was seen to move since

    def due(self, now: float, gone: bool) -> bool:
        """Whether to replace the clients now (called with each heartbeat).

        Only when a message sent after the server was seen running (its frame time moved
        while we were stalled) has not come back within ``CHECK_WITHIN``: a server thawed
        from a freeze delivers again within a period, and is not healed."""
        from livernn.midi_system import jack_last_frame, jack_server_id

        check = self.check
        if check.stalled is None or gone:
            self._frame = self._running_since = None
            if check.stalled is None and now >= self.next_at + 10 * self.wait:
                self.wait = HEAL_FIRST  # delivering for a while: the next stall starts afresh
            return False
        if self.port._jack is None or jack_server_id() != self.port._jack or check.server != self.port._jack:
            return False
        frame = jack_last_frame()
        if frame is None:
            return False
        if self._running_since is None:
            if self._frame is not None and frame != self._frame:
                self._running_since = now
            self._frame = frame
            return False
        if now < self.next_at:
            return False
        since = self._running_since
        sent = next((t for t in check.owed if t >= since), None)  # owed is in send order
        return sent is not None and now - sent > CHECK_WITHIN

    def heal(self, now: float) -> bool:
        """Replace the output's client, then the check's; True when the output has a new one."""
        from livernn.midi_system import jack_connections

        self._frame = self._running_since = None
        self.next_at = now + self.wait
        self.wait = min(2 * self.wait, HEAL_MOST)
        check_client = f"{self.port._client_name}-check"
        checks = tuple(p for p in jack_connections(self.port.jack_port or "")
                       if p.split(":", 1)[0].startswith(check_client))
        if not self.port.replace_client(leave=checks):
            return False
        self.check.replace_dead()
        return True


class _DeafClient:
    """A client whose sends go nowhere, as into one JACK registered and never runs (a test fault,
    ``LIVERNN_MIDI_FAULT=deaf``: the real deafness comes by chance, see ``Healer``)."""

    def __init__(self, client) -> None:
        self._client = client

    def send_message(self, data) -> None:
        pass

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies, however it dies.

    A sender outliving a crashed show was seen spinning at full CPU (a real-time process
    blocked in a dead JACK client); end-of-input on stdin alone does not cover that."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def main(argv: list[str]) -> int:
    _die_with_parent()
    import rtmidi

    from livernn.errors import LivernnError
    from livernn.midi_system import CLIENT_NAME, jack_period
    from livernn.outputs.midi_port import MidiOutput
    from livernn.realtime import REALTIME_PRIORITY, make_realtime

    name, create = argv[0], argv[1] == "1"
    api = int(argv[2]) if len(argv) > 2 and argv[2] != "-" else None
    out_fd = sys.stdout
    fault = os.environ.get("LIVERNN_MIDI_FAULT", "")
    if fault == "second":  # tests: our port's client is this process's second, as after a reopen
        first = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=f"{CLIENT_NAME}-first")
        first.open_virtual_port("first")
    try:
        port = MidiOutput(name, create=create, api=api)
    except LivernnError as exc:
        print(f"error {exc}", file=out_fd, flush=True)
        return 2
    if fault == "deaf":
        port._out = _DeafClient(port._out)  # tests: as if the server never ran our first client
    period = jack_period() if port.api == rtmidi.API_UNIX_JACK else None
    ahead = float(os.environ.get("LIVERNN_MIDI_AHEAD", period / 2 + RECEIVER_DELAY if period else 0.0))
    recent: list[float] = []  # send times of the last BURST messages, for pacing
    check: DeliveryCheck | None = None
    healer: Healer | None = None
    check_error = None
    if port.api == rtmidi.API_UNIX_JACK and os.environ.get("LIVERNN_MIDI_CHECK", "1") != "0":
        try:
            check = DeliveryCheck(port)
            if os.environ.get("LIVERNN_MIDI_HEAL", "1") != "0":
                healer = Healer(port, check)
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError) as exc:
            check_error = f"delivery check unavailable: {exc}"
    make_realtime(REALTIME_PRIORITY)
    # The first line is "ok" or the fatal "error": a check that could not start is told
    # after it (the port works without it), never in its place.
    print(f"ok {port.describe()}", file=out_fd, flush=True)
    if check_error is not None:
        print(f"error {check_error}", file=out_fd, flush=True)
    heap: list[tuple[float, int, bytes]] = []
    seq = 0
    buffer = b""
    stdin = sys.stdin.fileno()
    next_maintain = time.monotonic() + MAINTAIN_EVERY
    next_beat = time.monotonic()
    next_late = next_beat + LATE_EVERY
    lateness: deque[float] = deque(maxlen=2048)  # send time - deadline, seconds
    errors = port.errors
    gone = False  # whether the named port we send to has disappeared
    clock_out = ClockOut(ahead)  # MIDI clock ticks, timed here (livernn/outputs/midi_clock_out.py)
    while True:
        now = time.monotonic()
        if now >= next_beat:
            state = check.poll(now) if check is not None else None
            if state == "flowing" and gone:
                state = None  # our own port delivers, but the synth's port is still gone
            print("alive" if state is None else f"{state}\nalive", file=out_fd, flush=True)
            if healer is not None and healer.due(now, gone):
                if healer.heal(now):
                    print(f"error {port.describe()}: its JACK client was not running; opened a new one\n"
                          f"reopened {port.reopens}", file=out_fd, flush=True)
                now = time.monotonic()
            next_beat = now + (CHECK_WITHIN / 3 if check is not None and check.owed else HEARTBEAT)
            if now >= next_late and lateness:
                ordered = sorted(lateness)
                p50, p99, worst = (1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]
                                   for q in (0.5, 0.99, 1.0))
                print(f"late {p50:.3f} {p99:.3f} {worst:.3f} {len(ordered)}", file=out_fd, flush=True)
                next_late = now + LATE_EVERY
        wake = min(next_beat, next_maintain) - now
        soonest = heap[0][0] if heap else None
        tick_due = clock_out.due()
        if tick_due is not None and (soonest is None or tick_due < soonest):
            soonest = tick_due
        timeout = wake if soonest is None else min(max(soonest - now - SPIN, 0.0), wake)
        ready, _, _ = select.select([stdin], [], [], max(timeout, 0.0))
        if ready:
            chunk = os.read(stdin, 65536)
            if not chunk:
                break  # the parent is gone: nothing more will come
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                kind, _, rest = line.partition(b" ")
                if kind == b"at":
                    when, data = rest.split(b" ")
                    heapq.heappush(heap, (float(when) - ahead, seq, bytes.fromhex(data.decode())))
                    seq += 1
                elif kind in (b"clock", b"cstart", b"cstop"):
                    for at, tick in clock_out.command(kind, rest):
                        heapq.heappush(heap, (at - ahead, seq, tick))
                        seq += 1
                elif kind == b"quit":
                    _drain(port, heap, period)
                    port.close()
                    _leave_dead_clients()
                    return 0
            continue
        if soonest is not None and soonest - time.monotonic() <= SPIN:
            due = soonest
            while time.monotonic() < due:
                pass
            now = time.monotonic()
            for data in onsets_first(due_batch(heap, tick_due, now, clock_out.take)):
                if period and len(recent) >= BURST:
                    wait_until = recent[-BURST] + period  # a full period's buffer: wait a period
                    while time.monotonic() < wait_until:
                        pass
                    del recent[:-BURST]
                port.send(data, due)
                sent_at = time.monotonic()
                lateness.append(sent_at - due)
                if check is not None:
                    check.sent(sent_at)
                if period:
                    recent.append(sent_at)
        if time.monotonic() >= next_maintain:
            port.maintain()
            next_maintain = time.monotonic() + MAINTAIN_EVERY
            if check is not None and port._jack is not None and port._jack != check.server:
                check.replace_dead()  # a restarted server: the old check client is dead too
            if port.errors != errors:
                errors = port.errors
                print(f"error {port.describe()}: {port.last_error}", file=out_fd, flush=True)
            if port.target is not None and port.connected == gone:  # the synth's port left or came back
                gone = not port.connected
                if gone:
                    print(f"stalled {port.target} is gone; sends go nowhere until it is back", file=out_fd, flush=True)
                elif check is None or check.stalled is None:
                    print("flowing", file=out_fd, flush=True)
    _drain(port, heap, period)
    port.close()
    _leave_dead_clients()
    return 0


def _leave_dead_clients() -> None:
    """Exit now if clients were retired: the interpreter's teardown would close them."""
    from livernn.midi_system import DEAD_CLIENTS

    if DEAD_CLIENTS:
        sys.stdout.flush()
        os._exit(0)


def due_batch(heap: list[tuple[float, int, bytes]], tick_due: float | None, now: float,
              take: Callable[[], bytes]) -> list[bytes]:
    """What is due at ``now``, in deadline order: the heap's messages and, when ``tick_due``
    has come, one clock tick (``take``) among them at its own deadline, ahead of messages due
    at the same instant (a realtime message carries the time). A sender running late has
    several deadlines behind it at once; putting the tick first regardless sent the first
    tick before the Song Position Pointer and Start due 1 ms before it (seen once in CI)."""
    batch: list[bytes] = []
    tick = tick_due is not None and tick_due <= now
    while heap and heap[0][0] <= now and not (tick and tick_due is not None and heap[0][0] >= tick_due):
        batch.append(heapq.heappop(heap)[2])
    if tick:
        batch.append(take())
    while heap and heap[0][0] <= now:
        batch.append(heapq.heappop(heap)[2])
    return batch


def onsets_first(batch: list[bytes]) -> list[bytes]:
    """Messages due together, note-ons first: what the ear times is the onset.

    A chord landing where the previous one ends is 2 x N messages at one instant; sent in
    order, the note-offs filled the period's buffer (``BURST``) and pushed the last note-ons
    a period or two late (1.5 ms seen at the probe). Everything that must precede a note-on
    still does (an earlier message for the same pitch, a controller sent before it), and
    messages of one pitch keep their order, so no note is ended by the wrong note-off. A
    clock tick keeps its place."""
    if len(batch) < 2:
        return batch
    last_on: dict[tuple[int, int], int] = {}
    first_on = len(batch)
    for i, data in enumerate(batch):
        if data[0] & 0xF0 == 0x90 and len(data) > 2 and data[2] > 0:
            last_on[(data[0] & 0x0F, data[1])] = i
            first_on = min(first_on, i)

    def urgent(item: tuple[int, bytes]) -> int:
        i, data = item
        if data[0] == 0xF8:
            return 0  # a clock tick carries the time: never behind the note-ons
        if data[0] & 0xF0 in (0x80, 0x90) and len(data) > 1:
            return 0 if i <= last_on.get((data[0] & 0x0F, data[1]), -1) else 1
        return 0 if i < first_on else 1

    return [data for _, data in sorted(enumerate(batch), key=urgent)]


def _drain(port, heap, period: float | None) -> None:
    """Send what is still pending (note-offs, mostly) before the port closes, paced."""
    while heap:
        due, _, data = heapq.heappop(heap)
        delay = max(due - time.monotonic(), period / BURST if period else 0.0)
        time.sleep(min(delay, 0.5))
        port.send(data, due)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

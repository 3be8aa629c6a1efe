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
``quit`` (send what is pending, close). Out: ``ok <description>`` once the port is
open, ``error <message>`` (the parent shows it). ``time.monotonic()`` is the same clock
in both processes (CLOCK_MONOTONIC).
"""

from __future__ import annotations

import heapq
import os
import select
import sys
import time

SPIN = 0.0015
MAINTAIN_EVERY = 0.5
RECEIVER_DELAY = 0.00005  # seconds from a JACK period's start to a receiving client's callback
BURST = 6  # messages per JACK period, at most (JACK MIDI drops what does not fit)


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
    from livernn.engine.scheduler import REALTIME_PRIORITY, make_realtime
    from livernn.errors import LivernnError
    import rtmidi

    from livernn.outputs.midi import MidiOutput, jack_period

    name, create = argv[0], argv[1] == "1"
    api = int(argv[2]) if len(argv) > 2 and argv[2] != "-" else None
    out_fd = sys.stdout
    try:
        port = MidiOutput(name, create=create, api=api)
    except LivernnError as exc:
        print(f"error {exc}", file=out_fd, flush=True)
        return 2
    period = jack_period() if port.api == rtmidi.API_UNIX_JACK else None
    ahead = float(os.environ.get("LIVERNN_MIDI_AHEAD", period / 2 + RECEIVER_DELAY if period else 0.0))
    recent: list[float] = []  # send times of the last BURST messages, for pacing
    make_realtime(REALTIME_PRIORITY)
    print(f"ok {port.describe()}", file=out_fd, flush=True)
    heap: list[tuple[float, int, bytes]] = []
    seq = 0
    buffer = b""
    stdin = sys.stdin.fileno()
    next_maintain = time.monotonic() + MAINTAIN_EVERY
    errors = port.errors
    while True:
        now = time.monotonic()
        timeout = MAINTAIN_EVERY if not heap else max(heap[0][0] - now - SPIN, 0.0)
        ready, _, _ = select.select([stdin], [], [], min(timeout, MAINTAIN_EVERY))
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
                elif kind == b"quit":
                    _drain(port, heap, period)
                    port.close()
                    return 0
            continue
        if heap:
            due = heap[0][0]
            while time.monotonic() < due:
                pass
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                if period and len(recent) >= BURST:
                    wait_until = recent[-BURST] + period  # a full period's buffer: wait a period
                    while time.monotonic() < wait_until:
                        pass
                    del recent[:-BURST]
                port._send(list(heapq.heappop(heap)[2]))
                if period:
                    recent.append(time.monotonic())
        if time.monotonic() >= next_maintain:
            port.maintain()
            next_maintain = time.monotonic() + MAINTAIN_EVERY
            if port.errors != errors:
                errors = port.errors
                print(f"error {port.describe()}: {port.last_error}", file=out_fd, flush=True)
    _drain(port, heap, period)
    port.close()
    return 0


def _drain(port, heap, period: float | None) -> None:
    """Send what is still pending (note-offs, mostly) before the port closes, paced."""
    while heap:
        due, _, data = heapq.heappop(heap)
        delay = max(due - time.monotonic(), period / BURST if period else 0.0)
        time.sleep(min(delay, 0.5))
        port._send(list(data))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

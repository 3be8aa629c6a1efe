"""The MIDI sender's batch of due messages is in deadline order, a clock tick included.

A sender that runs late has several deadlines behind it at once. CI once saw the first tick
arrive before Start: the tick was put at the head of every batch. These drive the sender's
own pieces (``ClockOut`` and ``due_batch``) with a late ``now``.
"""

from __future__ import annotations

import heapq

from livernn.outputs.midi_clock_out import ClockOut
from livernn.outputs.midi_sender import due_batch, onsets_first

AHEAD = 0.1


def push(heap: list, messages, seq: list[int]) -> None:
    for at, data in messages:
        heapq.heappush(heap, (at - AHEAD, seq[0], data))
        seq[0] += 1


def drain(clock: ClockOut, heap: list, now: float) -> list[bytes]:
    """Everything due at ``now``, the way the sender's loop takes it, one tick per pass."""
    sent: list[bytes] = []
    while True:
        tick_due = clock.due()
        if not ((tick_due is not None and tick_due <= now) or (heap and heap[0][0] <= now)):
            return sent
        sent += onsets_first(due_batch(heap, tick_due, now, clock.take))


def test_a_late_start_sends_spp_and_start_before_the_first_tick():
    clock, heap, seq = ClockOut(AHEAD), [], [0]
    clock.command(b"clock", b"10.0 8.0 120")
    push(heap, clock.command(b"cstart", b"10.0 8.0"), seq)
    late = 10.0 - AHEAD + 0.005  # 5 ms after the first tick's send time
    sent = drain(clock, heap, late)
    assert [m[0] for m in sent] == [0xF2, 0xFB, 0xF8]
    assert sent[0] == bytes([0xF2, 32, 0])  # beat 8 = 16th 32


def test_a_tick_goes_before_a_note_due_at_the_same_instant_and_after_an_earlier_one():
    clock, heap, seq = ClockOut(AHEAD), [], [0]
    clock.command(b"clock", b"10.0 0.0 120")
    push(heap, clock.command(b"cstart", b"10.0 0.0"), seq)
    push(heap, [(10.0, b"\x90\x3c\x64"), (9.9995, b"\x90\x40\x64")], seq)
    sent = drain(clock, heap, 10.0 - AHEAD + 0.01)
    assert [m.hex() for m in sent[:5]] == ["f20000", "fa", "904064", "f8", "903c64"]


def test_a_late_relocation_keeps_stop_spp_continue_then_ticks():
    clock, heap, seq = ClockOut(AHEAD), [], [0]
    clock.command(b"clock", b"10.0 0.0 120")
    push(heap, clock.command(b"cstart", b"10.0 0.0"), seq)
    sent = drain(clock, heap, 10.0 - AHEAD + 0.2)  # ticks through beat 0.4
    assert sent.count(b"\xf8") == 10
    # The beat jumps forward by 4 at t=10.3 (a transport event of the clock source).
    push(heap, clock.command(b"clock", b"10.3 4.6 120"), seq)
    assert clock.relocated == 1
    sent = drain(clock, heap, 10.3 - AHEAD + 0.1)
    kinds = [m[0] for m in sent]
    assert kinds[:3] == [0xFC, 0xF2, 0xFB] and set(kinds[3:]) == {0xF8}

"""A MIDI input whose JACK client comes up deaf is found and replaced (livernn.controls.midi_in_check).

A client opened beside a polling patchbay can be registered and never run by the server
(tests/test_deaf_client.py shows it for the sender): for an input, the performer's
controller or keyboard silently does nothing. ``LIVERNN_MIDI_IN_FAULT=deaf`` makes an
input's first client drop everything it hears, as such a client does; the run check's
ping then never comes back, and the input opens a new client. A player process plays
numbered notes into it throughout; what the input hears is compared with what was sent."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from livernn.controls.bus import ControlBus
from livernn.controls.midi_in import MidiIn
from peers import stop_process, wait_for
from test_duet_jack import Player

pytestmark = pytest.mark.integration

EVERY = 0.05  # seconds between the player's notes
NOTES = 36  # 1.8 s of notes
HEAL_WITHIN = 1.5  # seconds from the open by which a deaf input has a new client
SETTLE = 0.05  # seconds after the heal from which every note sent must arrive


@pytest.fixture(autouse=True, scope="module")
def _close_retired_clients(jack):
    """Close the clients this module's heals retired. The input retires a replaced client
    unclosed (a client the server does not run is not known to close safely), but here the
    deafness is simulated and the clients run on the session's live server, which they
    would keep busy every 0.67 ms period for the rest of the suite: 7 of them took about a
    third of a CPU, in real-time threads, through the soak test. (A module server of its
    own is no way out: libjack in one process with clients of two servers crashed.)"""
    from livernn.midi_system import DEAD_CLIENTS, free_client

    before = len(DEAD_CLIENTS)
    yield
    retired, DEAD_CLIENTS[before:] = DEAD_CLIENTS[before:], []
    for client in retired:
        free_client(client)


class Heard:
    """A feed for ``MidiIn``: what arrives, with its arrival time."""

    def __init__(self) -> None:
        self.notes: list[tuple[float, int, int]] = []  # (time, pitch, velocity; 0 = off)
        self.controls: list[tuple[int, int]] = []

    def note(self, _channel: int, pitch: int, velocity: int, t: float) -> None:
        self.notes.append((t, pitch, velocity))

    def control(self, _channel: int, cc: int, value: int, _t: float) -> None:
        self.controls.append((cc, value))


def _score() -> list[tuple[float, int, int, int]]:
    """NOTES short notes, each its own (pitch, velocity), so each can be told apart."""
    score = []
    for k in range(NOTES):
        pitch, velocity = 30 + k % 60, 1 + k // 60 + 10 * (k % 3)
        score.append((k * EVERY, 0x90, pitch, velocity))
        score.append((k * EVERY + 0.02, 0x80, pitch, 0))
    return score


def _play(jack, player: Player, midi_in: MidiIn, virtual: bool) -> tuple[float, list[tuple[float, int, int]]]:
    """Play the score into the input; returns when the player started and what it sent
    (its send time, pitch, velocity of each note-on)."""
    if virtual:
        jack.connect(f"{player.client}:out", jack.wait_port(f":{midi_in.name}"))
    started = time.monotonic()
    player.play(_score())
    assert player.done.wait(NOTES * EVERY + 5), "the player did not finish"
    time.sleep(0.2)
    ons = [(t, m[1], m[2]) for t, m in player.sent if m[0] == 0x90]
    return started, ons


def _paired(heard: Heard) -> tuple[dict[int, int], list[float]]:
    """Each note-on heard against the note-off that follows it, per pitch: the pitches left
    open, and the times of note-offs heard without their note-on (one whose note-on went
    into a deaf client)."""
    open_: dict[int, int] = {}
    orphans = []
    for t, pitch, velocity in heard.notes:
        if velocity:
            open_[pitch] = open_.get(pitch, 0) + 1
        elif open_.get(pitch):
            open_[pitch] -= 1
        else:
            orphans.append(t)
    return {p: n for p, n in open_.items() if n}, orphans


@pytest.mark.parametrize("virtual", [False, True], ids=["named", "virtual"])
def test_a_deaf_input_is_replaced_and_the_notes_after_arrive(jack, monkeypatch, caplog, virtual):
    """The input's first client deaf: within HEAL_WITHIN s it has a new one (said once, in
    one line), the first notes were lost, and every note sent from the heal on arrives
    once, its note-off with it; the run check's pings never reach the feed."""
    monkeypatch.setenv("LIVERNN_MIDI_IN_FAULT", "deaf")
    tag = f"{int(virtual)}{time.monotonic_ns() % 10000}"
    player = Player(f"deafkeys{tag}")
    heard = Heard()
    caplog.set_level(logging.WARNING, logger="livernn.controls.midi_in")
    midi_in = MidiIn(ControlBus(), f"lvdeafin{tag}" if virtual else player.client, feed=heard)
    opened = time.monotonic()
    deaf = midi_in._rt
    try:
        assert midi_in._virtual == virtual
        old_port = midi_in.jack_port
        _started, ons = _play(jack, player, midi_in, virtual)
        healed_at = next((r.created for r in caplog.records if "opened a new one" in r.getMessage()), None)
        assert midi_in.healed == 1 and healed_at is not None, (midi_in.healed, midi_in.last_error)
        healed_at += time.monotonic() - time.time()  # log records carry wall-clock times
        assert healed_at - opened < HEAL_WITHIN, healed_at - opened
        lines = [r.getMessage() for r in caplog.records]
        assert lines == [f"MIDI input {midi_in.name}: its JACK client was not running; opened a new one"], lines
        got = [(pitch, velocity) for _, pitch, velocity in heard.notes if velocity]
        lost = [at for at, pitch, velocity in ons if (pitch, velocity) not in got]
        print(f"healed {healed_at - opened:.2f} s after the open; lost {len(lost)} notes, the last sent "
              f"{max(lost, default=0) - opened:.2f} s after it")
        assert lost and min(lost) - opened < 0.2, "the first notes went into the deaf client"
        after = [(pitch, velocity) for at, pitch, velocity in ons if at >= healed_at + SETTLE]
        assert len(after) >= NOTES // 3, (len(after), healed_at - opened)
        assert all(got.count(key) == 1 for key in after), [k for k in after if got.count(k) != 1]
        assert len(got) == len(set(got)), "a note heard twice"
        left_open, orphans = _paired(heard)
        assert left_open == {} and len(orphans) <= 1, (left_open, orphans)
        assert all(t < healed_at + SETTLE for t in orphans), "a note-off heard without its note-on"
        assert heard.controls == []
        # The new port took the old one's place: the source plays into it alone.
        from livernn.midi_system import jack_connections

        assert midi_in.jack_port != old_port and old_port is not None
        assert jack_connections(old_port) == [], jack_connections(old_port)
        assert f"{player.client}:out" in jack_connections(midi_in.jack_port)
        if virtual:  # a patchbay connecting by name connects the old port again: moved within 0.5 s
            jack.connect(f"{player.client}:out", old_port)
            wait_for(lambda: not jack_connections(old_port), 2, "the old port's new connection to be moved")
            assert f"{player.client}:out" in jack_connections(midi_in.jack_port)
        pings = midi_in.pings
        wait_for(lambda: midi_in.pings > pings, 1, "the new client to hear the run check's pings")
    finally:
        midi_in.close()
        # The retired client is kept (a real deaf one is never closed); this one the fault
        # made deaf is a working client: its port leaves the session's server.
        deaf.close_port()
        player.close()


def test_a_healthy_input_is_never_replaced(jack, caplog):
    """No false heal: a hearing input keeps its client and its ping client through a
    silence, a play and a silence, and every note arrives once. The pings come back in
    the silences and stop while the player plays (what it hears proves the client runs)."""
    player = Player(f"calmkeys{time.monotonic_ns() % 10000}")
    heard = Heard()
    caplog.set_level(logging.WARNING, logger="livernn.controls.midi_in")
    midi_in = MidiIn(ControlBus(), player.client, feed=heard)
    try:
        time.sleep(0.6)
        before = midi_in.pings
        player.play(_score())
        assert player.done.wait(NOTES * EVERY + 5), "the player did not finish"
        during = midi_in.pings - before
        time.sleep(0.6)
        after = midi_in.pings - before - during
        assert before >= 3 and after >= 3 and during <= 2, (before, during, after)  # a ping a 0.1 s look
        assert midi_in.healed == 0 and midi_in._check is not None and midi_in._check.replaced == 0
        assert caplog.records == [], [r.getMessage() for r in caplog.records]
        ons = [(t, m[1], m[2]) for t, m in player.sent if m[0] == 0x90]
        got = [(pitch, velocity) for _, pitch, velocity in heard.notes if velocity]
        assert sorted(got) == sorted((p, v) for _, p, v in ons) and len(got) == NOTES
        assert _paired(heard) == ({}, [])
    finally:
        midi_in.close()
        player.close()


def test_with_heal_off_a_deaf_input_is_reported_once_and_kept(jack, monkeypatch, caplog):
    """``LIVERNN_MIDI_HEAL=0``: the deaf input is said once, not replaced."""
    monkeypatch.setenv("LIVERNN_MIDI_IN_FAULT", "deaf")
    monkeypatch.setenv("LIVERNN_MIDI_HEAL", "0")
    caplog.set_level(logging.WARNING, logger="livernn.controls.midi_in")
    midi_in = MidiIn(ControlBus(), f"lvkeptdeaf{time.monotonic_ns() % 10000}")
    try:
        wait_for(lambda: midi_in.last_error is not None, HEAL_WITHIN, "the deaf input to be reported")
        time.sleep(1.0)
        assert midi_in.healed == 0
        assert [r.getMessage() for r in caplog.records] == [
            f"MIDI input {midi_in.name}: its JACK client is not running (LIVERNN_MIDI_HEAL=0: not replaced)"]
    finally:
        midi_in.close()


# -- the MIDI clock in (livernn.sync.midi_clock.MidiClockIn): the same check and heal ----------
CLOCK_BPM = 133  # the source's tempo (tests/test_sync_midi.py's): a tick every 18.8 ms
BAR = 96  # ticks in a bar of 4/4: the clock-in tests' lock bound (tests/test_sync_midi.py)


def test_a_deaf_clock_input_is_replaced_and_locks_to_the_tempo(jack, monkeypatch):
    """The clock input's first client deaf while a source ticks into its virtual port: within
    HEAL_WITHIN s of the open it has a new client (one line), the source's connection moved
    to it, and from one bar after the heal the session's tempo is the source's within 0.05 BPM."""
    from livernn.engine import Session
    from livernn.midi_system import jack_connections
    from test_sync_midi import play_source, start_source

    monkeypatch.setenv("LIVERNN_MIDI_IN_FAULT", "deaf")
    tag = time.monotonic_ns() % 10000
    proc = start_source(f"deafclk{tag}", f"{CLOCK_BPM}:12")
    opened = time.monotonic()
    session = Session(bpm=100, clock=f"midi:lvdeafclk{tag}")
    try:
        with session:
            source = session.band.source
            old_port = source.jack_port
            said: list[tuple[float, str]] = []
            session.on("error", lambda line: said.append((time.monotonic(), line)))
            jack.connect(jack.wait_port(f"deafclk{tag}:out"), jack.wait_port(f":lvdeafclk{tag}"))
            ticks, samples, _ = play_source(proc, session, wait=False)
            status = session.status()["clock"]
            links = jack_connections(old_port), jack_connections(source.jack_port), source._check.mine
    finally:
        stop_process(proc)
    assert source.healed == 1 and said, (source.healed, source.last_error)
    lines = [line for _, line in said]
    assert lines == [f"MIDI clock in lvdeafclk{tag}: its JACK client was not running; opened a new one"], lines
    healed_at = said[0][0]
    print(f"healed {healed_at - opened:.2f} s after the open; heard {source.ticks} of {len(ticks)} ticks")
    assert healed_at - opened < HEAL_WITHIN, healed_at - opened
    # The first ticks went into the deaf client (the new one follows from before the line is
    # said: 250 ms for its connections at load 6), and every tick sent from the heal on was heard.
    sent_after = [sum(t >= healed_at + dt for t, _ in ticks) for dt in (-0.25, SETTLE)]
    assert sent_after[1] <= source.ticks <= sent_after[0] < len(ticks), (source.ticks, sent_after, len(ticks))
    k = next(i for i, (t, _) in enumerate(ticks) if t >= healed_at)
    after = [bpm for _, bpm in samples[k + BAR:]]
    error = max(abs(b - CLOCK_BPM) for b in after)
    print(f"tempo from a bar after the heal: {len(after)} ticks, off by {error:.4f} BPM at most")
    assert len(after) >= BAR and error < 0.05, (len(after), error, healed_at - opened)
    assert status["tempo"] is not None and abs(status["tempo"] - CLOCK_BPM) < 0.05, status
    # The new port took the old one's place: the source (and the ping client) feed it alone.
    assert source.jack_port != old_port and old_port is not None
    assert links[0] == [] and sorted(links[1]) == sorted([f"deafclk{tag}:out", links[2]]), links


def test_a_healthy_clock_input_is_never_replaced_and_0xfd_leaves_the_tempo(jack):
    """No false heal: a clock input on a named source keeps its client and ping client through
    a silence, the clock and a silence; the pings come back in the silences only. The source
    sends 0xFD halfway between its ticks (what a ping looks like; none in a JACK period with a
    tick, see SOURCE): every tick is heard, the
    tempo is the source's within 0.05 BPM from bar 2 and its beats land on whole engine beats
    (p99 under 2 ms), as in tests/test_sync_midi.py."""
    from livernn.engine import Session
    from test_sync_midi import phase_ms, play_source, start_source

    name = f"calmclk{time.monotonic_ns() % 10000}"
    proc = start_source(name, f"{CLOCK_BPM}:8", "fd")
    session = Session(bpm=100, clock=f"midi:{name}")
    try:
        with session:
            source = session.band.source
            time.sleep(0.7)
            before = source.pings
            ticks, samples, fds = play_source(proc, session)
            time.sleep(0.05)  # the last 0xFD, sent after the last tick
            during = source.pings - before
            time.sleep(0.7)
            after = source.pings - before - during
            errors = list(session.errors)
            check = source._check
    finally:
        stop_process(proc)
    assert before >= 3 and after >= 3, (before, after)  # a ping a 0.1 s look in the silences
    assert fds >= len(ticks) * 0.9 and 0 <= during - fds <= 2, (during, fds)  # the source's 0xFD, hardly a ping
    assert source.healed == 0 and check is not None and check.replaced == 0
    assert errors == [], errors
    assert source.ticks == len(ticks)
    tempo = [bpm for _, bpm in samples[BAR:]]
    assert max(abs(b - CLOCK_BPM) for b in tempo) < 0.05, max(abs(b - CLOCK_BPM) for b in tempo)
    phase = phase_ms(samples[BAR::24], CLOCK_BPM)
    print(f"pings {before}/{during}/{after}, 0xFD sent {fds} for {len(ticks)} ticks; "
          f"phase p99 {np.percentile(phase, 99):.3f} ms")
    assert np.percentile(phase, 99) < 2.0, phase


def test_the_clock_input_keeps_the_switches(jack, monkeypatch):
    """``LIVERNN_MIDI_HEAL=0``: a deaf clock input is said once and kept;
    ``LIVERNN_MIDI_CHECK=0``: no ping client at all."""
    from livernn.engine import Session
    from livernn.midi_system import list_ports

    monkeypatch.setenv("LIVERNN_MIDI_IN_FAULT", "deaf")
    monkeypatch.setenv("LIVERNN_MIDI_HEAL", "0")
    name = f"lvkeptclk{time.monotonic_ns() % 10000}"
    with Session(bpm=100, clock=f"midi:{name}") as session:
        source = session.band.source
        wait_for(lambda: source.last_error is not None, HEAL_WITHIN, "the deaf clock input to be reported")
        time.sleep(1.0)
        assert source.healed == 0
        assert session.errors == [
            f"MIDI clock in {name}: its JACK client is not running (LIVERNN_MIDI_HEAL=0: not replaced)"]
    monkeypatch.setenv("LIVERNN_MIDI_CHECK", "0")
    pings = set(list_ports(source.api, outputs=False))
    with Session(bpm=100, clock=f"midi:{name}x") as session:
        source = session.band.source
        time.sleep(0.3)
        assert source._check is None and source.pings == 0
        assert set(list_ports(source.api, outputs=False)) == pings

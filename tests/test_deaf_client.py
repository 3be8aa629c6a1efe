"""A JACK client opened beside a polling patchbay can come up deaf; the sender heals it.

A patchbay (qjackctl, Catia) or a script that runs ``jack_lsp`` every few tens of
milliseconds opens and closes a JACK client each time. A client being opened meanwhile now
and then ends up registered but never run by the server (issue 12, "silent MIDI"): sends
into it go nowhere. The sender process's delivery check sees this within a second; the
sender then replaces its JACK clients (``midi_sender.Healer``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from livernn.outputs import midi
from peers import ProcessMidiProbe, jack_env, start_jack, stop_process, wait_for

pytestmark = pytest.mark.integration

STARTS = int(os.environ.get("LIVERNN_TEST_DEAF_STARTS", "16"))
PLAY = 3.0  # seconds each start sends notes for
EVERY = 0.05  # seconds between notes
BOUND = 2.5  # seconds from a start after which every note sent must arrive (a heal at ~0.9 s, one more at ~1.9 s)

_POLLER = r"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # subprocess.run then kills its jack_lsp
while True:
    try:
        subprocess.run(["jack_lsp", "-s", sys.argv[1]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=5)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(float(sys.argv[2]))
"""


def _poller(server: str, every: float) -> subprocess.Popen:
    """A process asking the server for its ports through a new ``jack_lsp`` client each time."""
    return subprocess.Popen([sys.executable, "-c", _POLLER, server, str(every)], start_new_session=True)


def _one_start(probe: ProcessMidiProbe, channel: int) -> tuple[list[float], list[float], int, int]:
    """Open an output to the probe, send a note every EVERY s for PLAY s, close it.

    Returns the send times (from the start) of the notes that arrived and of those lost,
    and how often the sender replaced its JACK client."""
    before = len(probe.received)
    out = midi(probe.client, create=False)
    start = time.monotonic()  # the output is open (its sender process said "ok")
    sent: list[tuple[int, float]] = []
    try:
        k = 0
        while time.monotonic() - start < PLAY:
            now = time.monotonic()
            pitch = 20 + k % 100
            out.note_on(channel + 1, pitch, 1 + k // 100, now)
            out.note_off(channel + 1, pitch, now + 0.02)
            sent.append((pitch * 1000 + 1 + k // 100, now - start))
            k += 1
            time.sleep(EVERY)
        time.sleep(0.3)
        reopens = getattr(out, "reopens", 0)
        stalls = out.errors
        print(f"  {out.describe()} | last error: {out.last_error}")
    finally:
        out.close()
    with probe._lock:
        got = {m[1] * 1000 + m[2] for _, m in probe.received[before:]
               if len(m) == 3 and m[0] == 0x90 + channel and m[2] > 0}
    heard = [at for key, at in sent if key in got]
    lost = [at for key, at in sent if key not in got]
    return heard, lost, reopens, stalls


def test_outputs_opened_beside_a_polling_patchbay_all_deliver(tmp_path, monkeypatch):
    """STARTS outputs opened one after another while ``jack_lsp`` polls the server every
    20 ms: every note sent BOUND s or more after a start arrives at the probe, in every start
    (a deaf client is replaced within a second or two). Before the heal a few starts in 16
    heard nothing at all."""
    monkeypatch.setenv("LIVERNN_MIDI_FAULT", "second")
    with jack_env():
        jack = start_jack(tmp_path, name=f"lvdeaf{os.getpid() % 100000}")
        probe = ProcessMidiProbe("deafprobe")
        pollers = [_poller(jack.name, 0.02) for _ in range(2)]
        rows = []
        try:
            for i in range(STARTS):
                heard, lost, reopens, _ = _one_start(probe, i % 16)
                rows.append((i, len(heard), len(lost), reopens,
                             max(lost, default=None), [at for at in lost if at >= BOUND]))
        finally:
            for poller in pollers:
                stop_process(poller)
            probe.close()
            stop_process(jack.proc)
    for i, n_heard, n_lost, reopens, last_lost, _late in rows:
        print(f"start {i:2d}: heard {n_heard:3d} lost {n_lost:3d} reopens {reopens} "
              f"last lost at {last_lost if last_lost is None else round(last_lost, 2)} s")
    deaf = [row[0] for row in rows if row[1] == 0]
    print(f"starts that heard nothing: {len(deaf)} of {STARTS}; "
          f"starts healed: {sum(1 for row in rows if row[3])}")
    assert all(not row[5] for row in rows), [row for row in rows if row[5]]


def _play(out, seconds: float, channel: int = 0) -> list[tuple[int, float]]:
    """A short note every EVERY s for ``seconds``: (pitch, send time from now) each."""
    start, sent, k = time.monotonic(), [], 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        out.note_on(channel + 1, 30 + k, 90, now)
        out.note_off(channel + 1, 30 + k, now + 0.02)
        sent.append((30 + k, now - start))
        k += 1
        time.sleep(EVERY)
    return sent


@pytest.mark.parametrize("virtual", [False, True], ids=["named", "virtual"])
def test_a_deaf_client_is_replaced_and_what_follows_arrives(jack, monkeypatch, virtual):
    """The sender's first JACK client made deaf on purpose (``LIVERNN_MIDI_FAULT=deaf``: its
    sends are dropped, as by a client the server never runs): the delivery check says
    stalled, the sender opens a new client (a virtual port's connections made again from
    it), says so once, and every note sent BOUND s after the start arrives; no note stuck."""
    monkeypatch.setenv("LIVERNN_MIDI_FAULT", "deaf")
    probe = ProcessMidiProbe(f"healprobe{int(virtual)}")
    out = midi("lvhealed") if virtual else midi(probe.client, create=False)
    try:
        if virtual:
            old = jack.wait_port(":lvhealed")
            jack.connect(old, probe.port)
            time.sleep(0.1)
        sent = _play(out, PLAY)
        time.sleep(0.3)
        heard = {m[1] for m in probe.messages() if m[0] == 0x90}
        lost = [at for pitch, at in sent if pitch not in heard]
        assert lost and min(lost) < 0.1, (lost, "the first notes went into the deaf client")
        assert max(lost) < BOUND, lost
        assert out.reopens == 1 and out.problem is None, (out.reopens, out.problem)
        assert "its JACK client was not running; opened a new one" in (out.last_error or "")
        assert "reopened 1x" in out.describe()
        assert probe.note_balance() == {}
        if virtual:
            from livernn.midi_system import jack_connections

            # A patchbay connecting by name connects the old port again: the connection is
            # moved to the new port within a maintain pass, and what follows arrives.
            new = [p for p in jack.ports() if p.endswith(":lvhealed") and p != old]
            assert len(new) == 1, jack.ports()
            jack.connect(old, probe.port)
            wait_for(lambda: not jack_connections(old), 2, "the old port's new connection to be moved")
            before = len(probe.messages())
            sent = _play(out, 0.5, channel=1)
            time.sleep(0.3)
            heard = {m[1] for m in probe.messages()[before:] if m[0] == 0x91}
            assert heard == {pitch for pitch, _ in sent}, (sorted(heard), len(sent))
            assert len([m for m in probe.messages()[before:] if m[0] == 0x91]) == len(sent)  # once each
    finally:
        out.close()
        probe.close()


def test_a_healthy_output_never_replaces_its_client(jack):
    """No false heal: a delivering output with its delivery check on keeps its one client."""
    probe = ProcessMidiProbe("calmprobe")
    out = midi(probe.client, create=False)
    try:
        sent = _play(out, PLAY)
        time.sleep(0.3)
        assert len({m[1] for m in probe.messages() if m[0] == 0x90}) == len(sent)
        assert out.reopens == 0 and out.errors == 0 and out.problem is None, out.last_error
    finally:
        out.close()
        probe.close()

"""A player over OSC, from the REPL's vocabulary: ``listen(v, listen_osc(), mode="follow")``
and ``/livernn/note pitch velocity`` give each note its companion, ended at the release;
a malformed message is refused with a logged line; ``listen(v, None)`` stops listening."""

from __future__ import annotations

import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livernn import api
from livernn.engine import Session
from livernn.errors import LivernnError
from peers import free_udp_port, wait_for


@pytest.fixture
def show():
    s = Session(bpm=120)
    api.use(s)
    yield s
    api.close()


def test_follow_over_osc_from_the_api(show):
    v = show.add_voice("harm", "bach", outputs=[], pitch_min=48, pitch_max=84, scale="major")
    notes = []
    show.on("note", lambda voice, pitch, vel, t_on, t_off: notes.append((voice, pitch, t_on, t_off)))
    show.start()
    port = free_udp_port()
    osc = api.listen_osc(port)
    policy = api.listen(v, osc, mode="follow", intervals=[-4, -3])
    client = SimpleUDPClient("127.0.0.1", port)
    client.send_message("/livernn/note", [64, 100])
    wait_for(lambda: len(notes) == 1, 3, "a companion")
    assert notes[0][1] == 60  # 61 is not in C major
    assert notes[0][3] - notes[0][2] > 1.0  # held until the player lets go
    client.send_message("/livernn/note", [64, 0])
    wait_for(lambda: show.scheduler.open_notes() == [], 3, "the companion ended at the release")
    client.send_message("/livernn/note", ["sixty-four", 100])  # refused, logged
    client.send_message("/livernn/note", [300, 100])
    time.sleep(0.3)
    assert len(notes) == 1  # neither made a note
    assert policy.status()["companions"] == 1
    assert api.listen(v, None) is None and v.listening is None
    with pytest.raises(LivernnError, match="did you mean 'accompany'"):
        api.listen(v, osc, mode="acompany")

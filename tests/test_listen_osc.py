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
    port = free_udp_port()
    osc = api.listen_osc(port)
    policy = api.listen(v, osc, mode="follow", intervals=[-4, -3])
    show.start()  # after listen: started first, the voice played notes of its own until then
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


def test_accompany_with_passing_tones_from_the_api(show):
    """``listen(v, osc, mode="accompany", passing="scale")``: a chord sent over OSC, and the
    voice's non-chord tones keep to the passing-tone rules (test_duet_jack.passing_check);
    a misspelt value is one line naming the nearest."""
    from test_duet_jack import passing_check

    v = show.add_voice("comp", "bach", outputs=[], pitch_min=48, pitch_max=84, density=2.0, quantize=0.25,
                       scale="major", seed=5)
    notes: list[tuple[float, int]] = []
    show.on("note", lambda _voice, pitch, _vel, t_on, _t_off: notes.append((t_on, pitch)))
    port = free_udp_port()
    osc = api.listen_osc(port)
    with pytest.raises(LivernnError, match="no listen passing 'scal'; did you mean 'scale'"):
        api.listen(v, osc, mode="accompany", passing="scal")
    policy = api.listen(v, osc, mode="accompany", passing="scale", passing_max=0.25)
    assert policy.options.passing == "scale"
    show.start()
    client = SimpleUDPClient("127.0.0.1", port)
    for pitch in (48, 52, 55):
        client.send_message("/livernn/note", [pitch, 80])
    wait_for(lambda: policy.chord == frozenset({0, 4, 7}), 3, "the chord")
    held = time.monotonic() + v.horizon() + 0.02
    time.sleep(6.0)
    cutoff = time.monotonic()
    show.stop()
    flags, problems = passing_check(notes, show.clock, lambda t: {0, 4, 7} if held <= t <= cutoff else None, "scale")
    assert not problems, problems
    known = [f for f in flags if f is not None]
    print(f"accompany over OSC: {len(known)} notes under the chord, {sum(known)} passing tones")
    assert len(known) >= 30 and sum(known) <= policy.status()["passing"], len(known)

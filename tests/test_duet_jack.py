"""Playing with a human through real JACK: a scripted player process plays into livernn's
MIDI input, a probe process captures livernn's output, both on the monotonic clock, so
what is measured is end to end (two JACK hops included). One test per mode, each also
swapping the model, panicking and stopping with notes held: no note may stay open.

bench/bench_duet.py runs the same harness longer and prints the figures.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest

from livernn.controls.bus import ControlBus
from livernn.controls.midi_in import MidiIn
from livernn.controls.player import PlayerFeed
from livernn.engine import Session
from livernn.engine.listen import attach, listen_options
from livernn.outputs import midi
from peers import ProcessMidiProbe, stop_process, wait_for

# The player: plays each score it is given (one JSON line of (seconds from its start, status,
# data1, data2)) on a JACK port, spinning to each deadline, and prints the monotonic time it
# sent each message, then "done".
PLAYER_SCRIPT = r"""
import json, sys, time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=sys.argv[1])
out.open_virtual_port("out")
print("ready", flush=True)
for line in sys.stdin:
    t0 = time.monotonic() + 0.05
    for at, *msg in json.loads(line):
        due = t0 + at
        while time.monotonic() < due - 0.002:
            time.sleep(0.0005)
        while time.monotonic() < due:
            pass
        out.send_message(msg)
        print("%.7f %s" % (time.monotonic(), " ".join(map(str, msg))), flush=True)
    print("done", flush=True)
"""


@dataclass
class Player:
    """The scripted player process (see PLAYER_SCRIPT)."""

    client: str
    sent: list[tuple[float, list[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PLAYER_SCRIPT, self.client], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self.proc.stdout.readline().strip() != "ready":
            stop_process(self.proc)
            raise AssertionError(f"player process {self.client} did not start")
        self.done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip() == "done":
                self.done.set()
                continue
            t, *data = line.split()
            self.sent.append((float(t), [int(x) for x in data]))

    def play(self, score: list[tuple[float, int, int, int]]) -> None:
        self.done.clear()
        self.proc.stdin.write(json.dumps(score) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        stop_process(self.proc)


def phrase(start: float, pitches: list[int], spacing: float = 0.25, length: float = 0.2,
           channel: int = 1, velocity: int = 90) -> list[tuple[float, int, int, int]]:
    score = []
    for i, p in enumerate(pitches):
        score.append((start + i * spacing, 0x90 | (channel - 1), p, velocity))
        score.append((start + i * spacing + length, 0x80 | (channel - 1), p, 0))
    return score


def note_ons(messages: list[tuple[float, list[int]]], channel: int | None = None) -> list[tuple[float, int]]:
    return [(t, m[1]) for t, m in messages
            if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0 and (channel is None or (m[0] & 0x0F) == channel - 1)]


class Duet:
    """livernn listening to a player process, played into a probe process."""

    def __init__(self, jack, tag: str, bpm: float = 120.0) -> None:
        self.player = Player(f"player{tag}")
        self.probe = ProcessMidiProbe(f"probe{tag}")
        self.session = Session(bpm=bpm)
        self.session.add_output("out", midi(self.probe.client, create=False))
        self.feed = PlayerFeed()
        self.input = MidiIn(ControlBus(), f"player{tag}", feed=self.feed)
        self.policies = []

    def voice(self, name: str, mode: str, channel: int = 2, options: dict | None = None, **params):
        v = self.session.add_voice(name, "bach", outputs=["out"], channel=channel, seed=7, **params)
        policy = attach(v, listen_options(mode, **(options or {})))
        self.feed.add(policy, 1)
        self.policies.append(policy)
        return v, policy

    def close(self) -> None:
        self.input.close()
        self.feed.close()
        self.session.stop()
        time.sleep(0.3)
        self.player.close()
        self.probe.close()


@pytest.fixture
def duet(jack, request):
    made = []

    def make(bpm: float = 120.0) -> Duet:
        d = Duet(jack, f"{abs(hash(request.node.nodeid)) % 100000}", bpm)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def _stuck_after_stop(d: Duet) -> dict:
    d.session.stop()
    time.sleep(0.4)
    return d.probe.note_balance()


C_MAJOR = {0, 2, 4, 5, 7, 9, 11}


def test_follow_every_player_note_gets_a_companion_at_once_inside_the_constraints(duet):
    d = duet()
    v, policy = d.voice("harm", "follow", pitch_min=48, pitch_max=84, scale="major", root=0)
    d.session.start()
    melody = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64] * 2
    d.player.play(phrase(0.2, melody, spacing=0.2, length=0.15))
    assert d.player.done.wait(30)
    wait_for(lambda: len(note_ons(d.probe.received, 2)) >= len(melody), 3, "companions at the probe")
    time.sleep(0.3)
    played = note_ons(d.player.sent)
    heard = note_ons(d.probe.received, 2)
    assert len(played) == len(melody) and len(heard) == len(melody), (len(played), len(heard))
    latencies = []
    for (t_play, p), (t_heard, c) in zip(played, heard):
        assert c != p and c - p in policy.options.intervals, (p, c)
        assert c % 12 in C_MAJOR and 48 <= c <= 84
        latencies.append(t_heard - t_play)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"follow: player note-on -> companion note-on at the probe, ms: p50 "
          f"{1000 * latencies[len(latencies) // 2]:.2f} p99 {1000 * p99:.2f} max {1000 * latencies[-1]:.2f}")
    # A fixed suite bound a 2-core machine holds with the whole suite beside it (11.3 ms seen
    # there: with ~40 notes the p99 is the slowest note); the issue's 5 ms p99 target is
    # bench/bench_duet.py's figure (3.3 ms on a quiet machine, 5.2-6.4 ms beside other JACK tests).
    assert p99 <= 0.015
    assert d.probe.note_balance() == {}  # every companion ended with its player note
    # held notes through a swap and a panic, then a stop: nothing stuck
    d.player.play([(0.0, 0x90, 60, 90), (0.1, 0x90, 64, 90)])
    wait_for(lambda: len(note_ons(d.probe.received, 2)) >= len(melody) + 2, 3, "held companions")
    d.session.swap(v, "folk").result(10)
    d.session.panic()
    d.player.play([(0.0, 0x90, 67, 90)])
    wait_for(lambda: len(note_ons(d.probe.received, 2)) >= len(melody) + 3, 3, "a companion after the swap")
    assert _stuck_after_stop(d) == {}


def test_answer_is_silent_during_the_call_and_answers_on_time(duet):
    d = duet()
    v, policy = d.voice("resp", "answer", options={"ratio": 1.0})
    d.session.start()
    call = [60, 62, 64, 67, 65, 64, 62, 60]
    second = [67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 59]
    score = phrase(0.5, call) + phrase(4.8, second)
    d.player.play(score)
    assert d.player.done.wait(30)
    time.sleep(1.5)
    played = note_ons(d.player.sent)
    voice = note_ons(d.probe.received, 2)
    first_call = (played[0][0], played[len(call) - 1][0] + 0.2)
    second_call = (played[len(call)][0], played[-1][0] + 0.2)
    for start, end in (first_call, second_call):
        inside = [t for t, _ in voice if start + 0.6 <= t <= end]
        assert not inside, f"the voice played {len(inside)} notes during the call"
    answer = [t for t, _ in voice if first_call[1] < t < second_call[0]]
    assert answer, "no answer after the call"
    delay = answer[0] - played[len(call) - 1][0]
    print(f"answer: first note {delay:.3f} s after the call's last note-on; {len(answer)} notes; "
          f"gap {policy.gap_seconds():.3f} s")
    assert delay <= 1.5
    assert policy.answers >= 2  # the second call was answered too
    d.session.swap(v, "folk", at="beat").result(10)
    d.player.play(phrase(0.0, [60, 64]))
    time.sleep(1.5)
    d.session.panic()
    assert _stuck_after_stop(d) == {}


def test_accompany_keeps_to_the_held_chord_and_follows_a_change(duet):
    d = duet()
    v, _policy = d.voice("comp", "accompany", options={"split": 60}, pitch_min=48, pitch_max=84, density=2.0)
    d.session.start()
    chords = [(0.2, (48, 52, 55)), (2.7, (53, 57, 41)), (5.2, (43, 47, 50))]  # C, F, G
    score = []
    for at, notes in chords:
        for p in notes:
            score.append((at, 0x90, p, 80))
            score.append((at + 2.3, 0x80, p, 0))
    score += phrase(0.3, [72, 74, 76, 77, 79, 77, 76, 74] * 3, spacing=0.3)
    d.player.play(sorted(score))
    assert d.player.done.wait(30)
    played = note_ons(d.player.sent)
    changes = []
    for _at, notes in chords:
        t = min(t for t, p in played if p == notes[0])
        changes.append((t, {p % 12 for p in notes}))
    voice = note_ons(d.probe.received, 2)
    horizon = d.session.lookahead + max(o.latency for o in v.outputs) + 0.02
    checked = 0
    for t, p in voice:
        current = [pcs for at, pcs in changes if at <= t]
        if not current:
            continue
        allowed = current[-1] | (current[-2] if len(current) > 1 and t < changes[len(current) - 1][0] + horizon
                                 else set())
        assert p % 12 in allowed, (t, p, current[-1])
        checked += 1
    print(f"accompany: {checked} notes checked against the held chord, horizon {horizon:.3f} s")
    assert checked >= 10
    d.session.swap(v, "folk", at="bar").result(10)
    d.player.play([(0.0, 0x90, 48, 80)])
    time.sleep(2.5)
    d.session.panic()
    assert _stuck_after_stop(d) == {}


def test_the_duet_patch_listens_through_its_listen_table(jack, repo, tmp_path):
    """patches/duet.toml, its keyboard and synth named for this test: a note played gets its
    companion from `harm` (channel 2) and the lead stays silent while the player plays."""
    import asyncio

    from livernn.patch import open_show

    tag = f"{abs(hash(tmp_path)) % 100000}"
    player, probe = Player(f"keys{tag}"), ProcessMidiProbe(f"synth{tag}")
    text = (repo / "patches" / "duet.toml").read_text()
    text = text.replace('input = "keys"', f'input = "keys{tag}"').replace('port = "livernn"', f'port = "synth{tag}"')
    (tmp_path / "duet.toml").write_text(text)

    async def play() -> dict:
        show = await open_show(tmp_path / "duet.toml", report=print)
        try:
            player.play(phrase(0.3, [64, 65, 67, 72], spacing=0.3, length=0.25))
            assert player.done.wait(10)
            await asyncio.sleep(0.5)
            return show.session.status()
        finally:
            await show.close()
            show.session.stop()

    try:
        status = asyncio.run(play())
        time.sleep(0.3)
        played = note_ons(player.sent)
        companions = note_ons(probe.received, 2)
        assert len(companions) == len(played) == 4
        for (_, p), (_, c) in zip(played, companions):
            assert p - c in (3, 4, 5, 8, 9) and c % 12 in C_MAJOR
        lead = [t for t, _ in note_ons(probe.received, 1) if played[0][0] + 0.6 <= t <= played[-1][0] + 0.25]
        assert not lead
        assert status["voices"]["comp"]["listening"]["chord"] == []  # no chord played
        assert probe.note_balance() == {}
    finally:
        player.close()
        probe.close()


# How late a message may reach the probe in these checks: the engine's bound (RELIABILITY.md:
# no event sent later than the lookahead), fixed, whatever the load.
LATE = 0.1


def _paired(d: Duet, events: list[tuple[float, int]], channel: int, bound: float = LATE) -> None:
    """Every note the voice scheduled (the session's "note" events) arrived at the probe:
    the same pitch within ``bound`` seconds of its onset. A missing one is a failure."""
    arrivals = note_ons(d.probe.received, channel)
    used = [False] * len(arrivals)
    for t_on, pitch in events:
        match = next((i for i, (t, p) in enumerate(arrivals)
                      if not used[i] and p == pitch and abs(t - t_on) <= bound), None)
        assert match is not None, f"note {pitch} scheduled for {t_on:.4f} never arrived at the probe"
        used[match] = True


def passing_check(events: list[tuple[float, int]], clock, chord_at, passing: str, scale=C_MAJOR,
                  share: float = 0.25) -> tuple[list[bool | None], list[str]]:
    """The rules of accompany's passing tones over a voice's notes (its "note" events,
    (onset, pitch) in the order played, quantized to 16ths): ``chord_at(t)`` is the held
    chord's pitch classes at onset t, or None where unsure (a change's horizon: skipped).
    A non-chord tone must be: allowed (passing not off), the first note of its onset, on a
    weak 16th, inside ``scale`` unless chromatic, a step (1-2 semitones) from a chord tone
    at the onset before, and followed at the next onset (the same chord held) by the chord
    tone a step further the same way; at most ``share`` of any 16 consecutive notes.
    Returns a flag per note (non-chord, or None when skipped) and the problems found."""
    groups: list[tuple[int, list[int]]] = []  # (16th index, pitches in the order played)
    problems: list[str] = []
    for t, p in events:
        sixteenth = clock.beat(t) * 4
        if abs(sixteenth - round(sixteenth)) >= 0.01:
            problems.append(f"onset {t:.4f} is not on a 16th")
        if groups and groups[-1][0] == round(sixteenth):
            groups[-1][1].append(p)
        else:
            groups.append((round(sixteenth), [p]))
    flags: list[bool | None] = []
    for i, (k, pitches) in enumerate(groups):
        chord = chord_at(clock.time_of(k / 4))
        for j, r in enumerate(pitches):
            outside = None if chord is None else r % 12 not in chord
            flags.append(outside)
            if not outside:
                continue
            where = f"non-chord tone {r} at 16th {k}"
            ways = {(1 if r > p else -1) for p in (groups[i - 1][1] if i else [])
                    if p % 12 in chord and 1 <= abs(r - p) <= 2}
            if passing == "off":
                problems.append(f"{where} with passing off")
            elif j:
                problems.append(f"{where} is not the first note of its onset")
            elif k % 2 == 0:
                problems.append(f"{where} is not on a weak 16th")
            elif passing != "chromatic" and r % 12 not in scale:
                problems.append(f"{where} is outside the scale")
            elif not ways:
                problems.append(f"{where} is not a step from a chord tone at the onset before {groups[i - 1]}")
            elif i + 1 < len(groups) and chord_at(clock.time_of(groups[i + 1][0] / 4)) == chord:
                q = groups[i + 1][1][0]
                if not (q % 12 in chord and 1 <= abs(q - r) <= 2 and (1 if q > r else -1) in ways):
                    problems.append(f"{where} does not resolve by step the same way: next onset {groups[i + 1]}")
    for start in range(max(len(flags) - 15, 0)):
        window = flags[start:start + 16]
        if None not in window and sum(map(bool, window)) > share * 16:
            problems.append(f"more than {share} of 16 notes pass: {window}")
    return flags, problems


@pytest.mark.parametrize("passing", ["off", "scale", "chromatic"])
def test_accompany_passing_tones_play_only_where_configured(duet, passing):
    """One C major chord held under a melody. Passing off: every pitch class of the voice is
    the chord's. Passing on: a non-chord tone is the first note of an onset on a weak 16th,
    a step (1-2 semitones) from a chord tone at the onset before, and the next onset starts
    with the chord tone a step further the same way; at most passing_max (0.25) of any 16
    consecutive notes; inside C major for "scale". Anything else is a failure."""
    d = duet()
    options = {"split": 60} if passing == "off" else {"split": 60, "passing": passing}
    v, policy = d.voice("comp", "accompany", options=options, pitch_min=48, pitch_max=84, density=2.0,
                        quantize=0.25, scale="major", root=0)
    events: list[tuple[float, int]] = []
    d.session.on("note", lambda name, pitch, _vel, t_on, _t_off: events.append((t_on, pitch)) if name == "comp"
                 else None)
    d.session.start()
    score = [(0.2, 0x90, p, 80) for p in (48, 52, 55)] + [(8.6, 0x80, p, 0) for p in (48, 52, 55)]
    score += phrase(0.4, [72, 74, 76, 77, 79, 77, 76, 74] * 4, spacing=0.25)
    d.player.play(sorted(score))
    time.sleep(4.0)
    d.session.swap(v, "folk", at="beat").result(10)  # a hot swap mid-way: the rules hold across it
    assert d.player.done.wait(30)
    cutoff = time.monotonic()
    time.sleep(0.5)
    chord_on = min(t for t, m in d.player.sent if m[0] == 0x90 and m[1] == 48)
    horizon = d.session.lookahead + max(o.latency for o in v.outputs) + 0.02
    d.session.panic()
    assert _stuck_after_stop(d) == {}
    assert v.late == 0
    mine = [(t, p) for t, p in events if chord_on + horizon <= t <= cutoff]
    _paired(d, mine, 2)
    chord = {0, 4, 7}
    flags, problems = passing_check(events, d.session.clock, lambda t: chord if chord_on + horizon <= t <= cutoff
                                    else None, passing)
    assert not problems, problems
    flags = [f for f in flags if f is not None]
    print(f"accompany passing={passing}: {len(flags)} notes under the chord, {sum(flags)} passing tones, "
          f"all {len(mine)} paired at the probe")
    # enough notes for the rules to mean something; how many the voice plays in 8 s is the
    # models' rhythm (34-49 in 18 runs with bach and folk as retrained for issue 14; 40 was set before)
    assert len(flags) >= 24
    if passing != "off":
        assert sum(flags) >= 1 and policy.status()["passing"] >= sum(flags)


def _note_offs(messages: list[tuple[float, list[int]]], channel: int) -> list[tuple[float, int]]:
    return [(t, m[1]) for t, m in messages if len(m) == 3 and (m[0] & 0x0F) == channel - 1
            and (m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0))]


def test_answer_end_cc_pedal_ends_the_call_and_the_answer_starts_on_the_next_beat(duet):
    """The player holds a note and presses the sustain pedal (CC 64): the call is over at
    once (the 4-beat gap, 2 s, never runs), the answer's first note is on the next beat,
    and the answer lasts ratio x the call, counted to the pedal."""
    d = duet()
    _v, policy = d.voice("lead", "answer", options={"gap": 4.0, "adapt": 0.0, "ratio": 1.0, "end_cc": 64})
    d.session.start()
    score = [*phrase(0.3, [60, 62, 64]), (1.05, 0x90, 67, 90), (1.3, 0xB0, 64, 127), (1.5, 0xB0, 64, 0),
             (1.8, 0x80, 67, 0)]
    d.player.play(sorted(score))
    assert d.player.done.wait(10)
    time.sleep(2.5)
    clock = d.session.clock
    call_start = d.player.sent[0][0]
    pedal = next(t for t, m in d.player.sent if m[0] == 0xB0 and m[2] == 127)
    answer = note_ons(d.probe.received, 2)
    assert answer, "no answer after the pedal"
    assert all(t > pedal for t, _ in answer), "the voice played during the call"
    first = answer[0][0]
    beat = clock.beat(first)
    # on the first beat after the pedal (as the engine heard it: a JACK hop later)
    assert round(beat) in {math.ceil(clock.beat(pedal)), math.ceil(clock.beat(pedal + 0.01))}
    assert -0.005 <= (beat - round(beat)) * 60.0 / clock.bpm <= LATE, f"first note {beat:.3f} is not on a beat"
    assert first - pedal <= 60.0 / clock.bpm + LATE  # the gap (2 s) was never waited for
    window_beats = (pedal - call_start) * clock.bpm / 60.0  # ratio 1: as long as the call, to the pedal
    end = clock.time_of(round(beat) + window_beats)
    assert all(t <= end + LATE for t, _ in answer), "the answer outlasted ratio x the call"
    print(f"end_cc: first answer note {first - pedal:.3f} s after the pedal, {len(answer)} notes in "
          f"{window_beats:.2f} beats; answers {policy.answers}")
    assert policy.answers == 1
    d.session.panic()
    assert _stuck_after_stop(d) == {}


def test_answer_finish_bar_lets_the_answer_sound_to_the_bar_line_when_the_player_comes_back(duet):
    """Two answering voices, one with finish_bar: the player comes back while a long answer
    note sounds. Without finish_bar the answer's notes end at the player's note; with it
    each sounding note ends at its own end or at the bar line, whichever is first, and no
    new note starts after the player's."""
    d = duet()
    options = {"gap": 1.0, "adapt": 0.0, "ratio": 2.0}
    d.voice("now", "answer", channel=2, options=options, density=0.5)
    d.voice("bar", "answer", channel=3, options={**options, "finish_bar": True}, density=0.5)
    events: list[tuple[str, int, float, float]] = []
    d.session.on("note", lambda name, pitch, _vel, t_on, t_off: events.append((name, pitch, t_on, t_off)))
    d.session.start()
    d.player.play(phrase(0.3, [60, 62, 64, 65, 67, 65, 64, 62], spacing=0.25))
    assert d.player.done.wait(10)
    clock = d.session.clock
    bar = clock.beats_per_bar

    def long_note():
        """A note of the "bar" voice just scheduled, long enough to cross the player's return
        by 0.3 s, with the bar line at least 0.35 s after that return."""
        now = time.monotonic()
        for name, _pitch, t_on, t_off in reversed(events):
            back = max(t_on + 0.05, now + 0.08)
            cut = clock.time_of(math.ceil(clock.beat(back) / bar) * bar)
            if name == "bar" and t_off >= back + 0.3 and cut >= back + 0.35 and back <= now + 0.2:
                return back
        return None

    back = wait_for(long_note, 10, "a long answer note to come back under")
    # the player holds the note past the bar line: a new call, no new answer while we look
    release = clock.time_of(math.ceil(clock.beat(back) / bar) * bar) + 0.8
    d.player.play([(back - time.monotonic() - 0.05, 0x90, 72, 90), (release - time.monotonic() - 0.05, 0x80, 72, 0)])
    assert d.player.done.wait(5)
    returned = next(t for t, m in d.player.sent if m[0] == 0x90 and m[1] == 72)
    released = next(t for t, m in d.player.sent if m[0] == 0x80 and m[1] == 72)
    cut = clock.time_of(math.ceil(clock.beat(returned + 0.002) / bar) * bar)
    assert released >= cut + 0.5
    received = [(t, m) for t, m in d.probe.received if t < released]
    # without finish_bar: silent from the player's note on (a note handed to the sender
    # process in its last 50 ms plays for 1 ms)
    late = [(t, m) for t, m in received if (m[0] & 0x0F) == 1 and t > returned + 0.05 + LATE]
    assert not late, f"the answer without finish_bar went on after the player came back: {late}"
    # with finish_bar: every note sounding at the return ends at its own end or the bar line
    offs = _note_offs(received, 3)
    checked = kept = 0
    for name, pitch, t_on, t_off in events:
        if name != "bar" or t_off <= returned or t_on > returned:
            continue
        expected = min(t_off, cut)
        arrived = [t for t, p in offs if p == pitch and t > t_on]
        assert arrived, f"note {pitch} of the finish_bar voice never ended"
        assert -0.005 <= arrived[0] - expected <= LATE, (pitch, arrived[0] - returned, expected - returned)
        checked += 1
        kept += arrived[0] >= returned + 0.25
    assert checked >= 1 and kept >= 1, (checked, kept)
    assert not [t for t, p in note_ons(received, 3) if t > returned + 0.05 + LATE], "finish_bar started new notes"
    print(f"finish_bar: {checked} notes sounding when the player came back, the bar line "
          f"{cut - returned:.3f} s later; {kept} sounded on past the player's note")
    assert _stuck_after_stop(d) == {}

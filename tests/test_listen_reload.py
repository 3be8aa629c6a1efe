"""A ``[listen]`` table across live reloads (issue 16), in-process: the patch's OSC server
takes the player's notes (``osc = true``: ``/livernn/note pitch velocity``), the show is
reloaded as ``livernn perform`` does on a save (``Show.reload``), and the companions a
follow voice plays are read from the session's "note" events.

Each case a performer meets: a reload that leaves listening alone keeps the same policy,
feed and OSC hookup (each player note heard once, one companion); a reload that rebuilds a
listening voice gives the new voice the policy and takes it off the old one (its companion
ends, the gone voice hears nothing); a mode or option change applies, removing the table
stops listening, and a bad edit is one ``file:line`` line that leaves the running
listening as it was. The MIDI input renamed on a reload: tests/test_duet_jack.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

from pythonosc.udp_client import SimpleUDPClient

from livernn.errors import LivernnError
from livernn.patch import open_show
from peers import free_udp_port

# How long after its player note a companion may start (the feed's arrival time is its
# onset; the bound is the OSC hop and the feed thread at load), and how long a wait for
# something that must happen may take on a loaded 2-core machine.
HOP = 0.1
WAIT = 5.0


def patch_text(port: int, listen: str | None, harm_channel: int = 2, harm_params: str = "") -> str:
    text = f"""version = 1
name = "reload"

[clock]
bpm = 120

[models]
bach = "default"
folk = "folk"

[outputs.rec]
type = "file"
path = "set.mid"

[osc]
port = {port}

[voices.lead]
model = "folk"
channel = 1
params = {{ pitch_min = 55, pitch_max = 84 }}

[voices.harm]
model = "bach"
channel = {harm_channel}
params = {{ pitch_min = 48, pitch_max = 84, scale = "major", root = 0{harm_params} }}
"""
    return text + (listen or "")


FOLLOW = """
[listen]
osc = true

[listen.voices.harm]
mode = "follow"
intervals = [-4, -3]
"""


class Stage:
    """A show from a patch file in ``tmp_path``, a player on its OSC port, and the notes."""

    def __init__(self, tmp_path, port: int) -> None:
        self.path = tmp_path / "reload.toml"
        self.port = port
        self.client = SimpleUDPClient("127.0.0.1", port)
        self.notes: list[tuple[str, int, int, float, float]] = []  # voice, channel, pitch, t_on, t_off
        self.reports: list[str] = []
        self._lock = threading.Lock()
        self.show = None

    async def open(self, text: str):
        self.path.write_text(text)
        self.show = await open_show(self.path, report=self.reports.append)
        session = self.show.session

        def heard(voice, pitch, _vel, t_on, t_off) -> None:
            v = session.voices.get(voice)
            with self._lock:
                self.notes.append((voice, v.channel if v is not None else 0, pitch, t_on, t_off))

        session.on("note", heard)
        return self.show

    async def reload(self, text: str) -> bool:
        self.path.write_text(text)
        return await self.show.reload()

    def companions(self, since: float, voice: str = "harm") -> list[tuple[str, int, int, float, float]]:
        with self._lock:
            return [n for n in self.notes if n[0] == voice and n[3] >= since]

    async def play(self, pitch: int, velocity: int = 90) -> float:
        """A player note; the monotonic time just before it was sent."""
        sent = time.monotonic()
        self.client.send_message("/livernn/note", [pitch, velocity])
        return sent

    async def until(self, predicate, what, timeout: float = WAIT) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
            await asyncio.sleep(0.01)

    async def follow_once(self, pitch: int, channel: int) -> tuple[str, int, int, float, float]:
        """A player note and its release: exactly one companion, at once, on ``channel``,
        a third below, ended with the release."""
        sent = await self.play(pitch)
        await self.until(lambda: self.companions(sent), f"a companion of {pitch}")
        await asyncio.sleep(0.3)  # a second companion (a duplicated feed or hookup) would be here by now
        found = self.companions(sent)
        assert len(found) == 1, found
        voice, ch, companion, t_on, _ = found[0]
        assert ch == channel and pitch - companion in (3, 4), found
        assert 0 <= t_on - sent <= HOP, (sent, t_on)  # the note paired with its player note
        released = await self.play(pitch, 0)
        session = self.show.session
        await self.until(lambda: not [n for n in session.scheduler.open_notes() if n.pitch == companion
                                      and n.voice == voice], "the companion's end")
        assert time.monotonic() - released < WAIT
        return found[0]

    async def close(self) -> None:
        self.client.close()  # a socket left to the collector would show up in another test's count
        if self.show is not None:
            await self.show.close()
            self.show.session.stop()


def run(tmp_path, body) -> Stage:
    stage = Stage(tmp_path, free_udp_port())

    async def main() -> None:
        try:
            await body(stage)
        finally:
            await stage.close()

    asyncio.run(main())
    return stage


def _hooks(show) -> int:
    """How many handlers the show's OSC server has for the player's notes (the refused-command
    catch-all leaves them alone: none of its lines for a note, checked at the end)."""
    return sum(h.callback.__name__ == "on_note" for h in show.osc.dispatcher.handlers_for_address("/livernn/note"))


def test_a_reload_that_leaves_listening_alone_keeps_the_same_listening(tmp_path):
    async def body(stage: Stage) -> None:
        show = await stage.open(patch_text(stage.port, FOLLOW))
        harm = show.session.voices["harm"]
        policy, feed = harm.listening, show.player.feed
        assert policy.mode == "follow" and _hooks(show) == 1
        await stage.follow_once(64, 2)
        # a parameter of the listening voice, another voice's, the tempo: listening untouched
        for text in (patch_text(stage.port, FOLLOW, harm_params=", temperature = 0.8"),
                     patch_text(stage.port, FOLLOW).replace("bpm = 120", "bpm = 100"),
                     patch_text(stage.port, FOLLOW)):
            assert await stage.reload(text), stage.reports
            assert show.session.voices["harm"] is harm and harm.listening is policy
            assert show.player.feed is feed and _hooks(show) == 1
        heard = policy.heard
        await stage.follow_once(67, 2)
        assert policy.heard == heard + 1  # heard once: one feed, one OSC hookup
        assert threading.active_count() < 60
        assert [t.name for t in threading.enumerate()].count("livernn-player") == 1

    run(tmp_path, body)


def test_a_rebuilt_voice_listens_again_and_the_old_one_hears_nothing(tmp_path):
    async def body(stage: Stage) -> None:
        show = await stage.open(patch_text(stage.port, FOLLOW))
        session = show.session
        old = session.voices["harm"]
        old_policy = old.listening
        sent = await stage.play(64)  # held across the reload
        await stage.until(lambda: stage.companions(sent), "the companion before the reload")
        held = stage.companions(sent)[0]
        assert held[1] == 2
        # channel 2 -> 3: apply_patch makes a new Voice for harm
        assert await stage.reload(patch_text(stage.port, FOLLOW, harm_channel=3)), stage.reports
        new = session.voices["harm"]
        assert new is not old and new.channel == 3
        assert new.listening is not None and new.listening is not old_policy
        assert new.listening.options == old_policy.options  # mode and options carried over
        assert old.listening is None and old_policy.closed
        assert not [n for n in session.scheduler.open_notes() if n.voice == "harm" and n.channel == 2]
        heard = old_policy.heard
        await stage.play(64, 0)
        await stage.follow_once(65, 3)
        assert old_policy.heard == heard  # the gone voice heard nothing
        assert [n for n in stage.companions(sent) if n[1] == 2] == [held]  # and played nothing
        assert show.player.feed.players == [new.listening]

    run(tmp_path, body)


ANSWER = """
[listen]
osc = true

[listen.voices.harm]
mode = "answer"
gap = 0.5
ratio = 1.0
"""

ACCOMPANY = """
[listen]
osc = true

[listen.voices.harm]
mode = "accompany"
split = 60
"""


def test_a_mode_or_option_change_applies_and_ends_the_old_policys_notes(tmp_path):
    async def body(stage: Stage) -> None:
        show = await stage.open(patch_text(stage.port, FOLLOW))
        session = show.session
        harm = session.voices["harm"]
        follow = harm.listening
        sent = await stage.play(64)  # held: its companion sounds as the mode changes
        await stage.until(lambda: stage.companions(sent), "the companion before the reload")
        companion = stage.companions(sent)[0][2]
        assert await stage.reload(patch_text(stage.port, ANSWER)), stage.reports
        answer = harm.listening
        assert session.voices["harm"] is harm and answer is not follow and follow.closed
        assert answer.mode == "answer" and answer.options.gap == 0.5
        await stage.until(lambda: not [n for n in session.scheduler.open_notes()
                                       if n.voice == "harm" and n.pitch == companion], "the old companion's end")
        await stage.play(64, 0)  # the release reaches a policy that never heard its note-on: nothing
        # answer: silent while the player plays, then answers after the gap
        first = await stage.play(60)
        await asyncio.sleep(0.15)
        await stage.play(60, 0)
        await asyncio.sleep(0.1)
        assert not [n for n in stage.companions(first) if n[3] <= time.monotonic() - 0.01], "played during the call"
        await stage.until(lambda: answer.answers == 1 and stage.companions(first), "an answer")
        # an option: ratio; then accompany with a split
        assert await stage.reload(patch_text(stage.port, ANSWER.replace("ratio = 1.0", "ratio = 0.5")))
        assert harm.listening.options.ratio == 0.5 and harm.listening is not answer and answer.closed
        assert await stage.reload(patch_text(stage.port, ACCOMPANY.replace("split = 60", "split = 55")))
        comp = harm.listening
        assert comp.mode == "accompany" and comp.options.split == 55
        for pitch in (48, 52, 57):  # 57 is above the split: not in the chord
            await stage.play(pitch)
        await stage.until(lambda: comp.chord == frozenset({0, 4}),
                          lambda: f"the chord below the split, not {set(comp.chord)}")
        passing = ACCOMPANY.replace("split = 60", 'split = 55\npassing = "scale"')
        assert await stage.reload(patch_text(stage.port, passing)), stage.reports
        assert harm.listening.options.passing == "scale" and harm.listening.options.split == 55
        assert show.player.feed.players == [harm.listening]

    run(tmp_path, body)


def test_removing_the_listen_table_stops_listening_and_the_voice_plays_on(tmp_path):
    async def body(stage: Stage) -> None:
        show = await stage.open(patch_text(stage.port, FOLLOW))
        session = show.session
        harm = session.voices["harm"]
        policy = harm.listening
        sent = await stage.play(64)
        await stage.until(lambda: stage.companions(sent), "a companion")
        companion = stage.companions(sent)[0][2]
        assert await stage.reload(patch_text(stage.port, None)), stage.reports
        assert session.voices["harm"] is harm and harm.listening is None and policy.closed
        assert show.player.feed is None and _hooks(show) == 0
        await stage.until(lambda: not [n for n in session.scheduler.open_notes()
                                       if n.voice == "harm" and n.pitch == companion], "the companion's end")
        after = time.monotonic()
        await stage.play(67)  # nobody listens: no companion of 67 ...
        await stage.until(lambda: len(stage.companions(after)) >= 4, "harm playing on its own")
        assert policy.heard == 1
        # ... and listening comes back with the table
        assert await stage.reload(patch_text(stage.port, FOLLOW)), stage.reports
        assert harm.listening is not None and harm.listening.mode == "follow" and _hooks(show) == 1

    run(tmp_path, body)


def test_a_bad_listen_edit_is_one_line_and_keeps_the_running_listening(tmp_path, monkeypatch):
    import livernn.controls.midi_in

    def no_port(_bus, port, **_options):
        raise LivernnError(f"MIDI input {port!r}: cannot open (busy)")

    monkeypatch.setattr(livernn.controls.midi_in, "MidiIn", no_port)  # the same on any machine

    async def body(stage: Stage) -> None:
        show = await stage.open(patch_text(stage.port, FOLLOW))
        harm = show.session.voices["harm"]
        policy, feed, patch = harm.listening, show.player.feed, show.patch
        edits = [
            (FOLLOW.replace('mode = "follow"', 'mode = "folow"'), "did you mean 'follow'"),
            (FOLLOW.replace("intervals = [-4, -3]", "intervals = [-4, 0]"), "0 would double"),
            (FOLLOW.replace("intervals = [-4, -3]", "companions = 9"), "nearest valid: 4"),
            (FOLLOW.replace("[listen.voices.harm]", "[listen.voices.harn]"), "did you mean 'harm'"),
            (FOLLOW.replace("osc = true", "osc = 1"), "must be true or false"),
            (FOLLOW.replace("osc = true", 'osc = true\ninput = "keys"'),
             "listen.input: MIDI input 'keys': cannot open"),
        ]
        lines = patch_text(stage.port, FOLLOW).count("\n")
        for listen, why in edits:
            stage.reports.clear()
            assert not await stage.reload(patch_text(stage.port, listen))
            assert len(stage.reports) == 1 and "\n" not in stage.reports[0], stage.reports
            line = stage.reports[0]
            assert why in line, line
            at = int(line.split("reload.toml:")[2].split(":")[0])
            assert lines - 8 < at <= lines + 1, line  # the line of the [listen] edit
            assert show.patch is patch and harm.listening is policy and show.player.feed is feed
            assert _hooks(show) == 1 and show.player.midi is None
        await stage.follow_once(64, 2)

    run(tmp_path, body)


def test_a_renamed_midi_input_closes_the_old_and_listens_on_the_new(jack, tmp_path):
    """Through real JACK: the [listen] input renamed from one player's port to another's on a
    reload. The old input's port leaves JACK (the first player's notes reach nobody), the new
    one hears the second player, each companion paired with its arrival at the probe; a
    reload that keeps the name keeps the very same input."""
    from peers import ProcessMidiProbe
    from test_duet_jack import LATE, Player, note_ons, phrase

    tag = f"{abs(hash(tmp_path)) % 100000}"
    first, second, probe = Player(f"keysA{tag}"), Player(f"keysB{tag}"), ProcessMidiProbe(f"synth{tag}")
    listen = FOLLOW.replace("osc = true", f'input = "keysA{tag}"')

    def text(listen: str) -> str:
        return patch_text(free_udp_port(), listen).replace('type = "file"\npath = "set.mid"',
                                                            f'type = "midi"\nport = "synth{tag}"')

    def inputs() -> list[str]:
        return [p for p in jack.ports() if p.startswith("livernn-in")]

    async def played(player: Player, pitch: int) -> list[tuple[float, int]]:
        player.play(phrase(0.0, [pitch], length=0.3))
        assert await asyncio.get_running_loop().run_in_executor(None, player.done.wait, 10)
        await asyncio.sleep(0.5)
        return [(t, m[1]) for t, m in player.sent if m[1] == pitch and m[0] == 0x90]

    async def body(stage: Stage) -> None:
        show = await stage.open(text(listen))
        session = show.session
        midi = show.player.midi
        assert len(inputs()) == 1
        sent = await played(first, 64)
        assert len(stage.companions(sent[0][0] - 0.01)) == 1
        assert await stage.reload(text(listen).replace("bpm = 120", "bpm = 110")), stage.reports
        assert show.player.midi is midi and len(inputs()) == 1  # same name: the same input
        assert await stage.reload(text(listen.replace(f"keysA{tag}", f"keysB{tag}"))), stage.reports
        assert show.player.midi is not midi and len(inputs()) == 1
        gone = await played(first, 65)
        assert not stage.companions(gone[0][0] - 0.01)  # the old input is closed
        heard = await played(second, 67)
        assert len(stage.companions(heard[0][0] - 0.01)) == 1
        session.stop()
        await asyncio.sleep(0.3)

    try:
        stage = run(tmp_path, body)
        companions = [(n[3], n[2]) for n in stage.companions(0.0)]
        arrivals = note_ons(probe.received, 2)
        assert len(companions) == len(arrivals) == 2, (companions, arrivals)
        for (t_on, pitch), (t, p) in zip(companions, arrivals):
            assert p == pitch and abs(t - t_on) <= LATE, (t_on, pitch, t, p)
        assert probe.note_balance() == {}
    finally:
        first.close()
        second.close()
        probe.close()


def test_listening_again_from_the_repl_takes_the_osc_input_once():
    """The REPL's ``listen`` asked again (another mode, a second voice on the same OSC
    input): each player note reaches each policy once, and the replaced policy is closed."""
    from livernn import api
    from livernn.engine import Session

    s = Session(bpm=120)
    api.use(s)
    try:
        harm = s.add_voice("harm", "bach", outputs=[], pitch_min=48, pitch_max=84, scale="major")
        comp = s.add_voice("comp", "bach", outputs=[], pitch_min=36, pitch_max=60)
        notes: list[tuple[str, int, float]] = []
        s.on("note", lambda voice, pitch, _vel, t_on, _t_off: notes.append((voice, pitch, t_on)))
        port = free_udp_port()
        osc = api.listen_osc(port)
        first = api.listen(harm, osc, mode="answer")
        policy = api.listen(harm, osc, mode="follow", intervals=[-4, -3])
        chords = api.listen(comp, osc, mode="accompany", split=60)
        assert first.closed and harm.listening is policy
        s.start()
        client = SimpleUDPClient("127.0.0.1", port)
        sent = time.monotonic()
        client.send_message("/livernn/note", [64, 100])
        client.send_message("/livernn/note", [48, 100])
        deadline = time.monotonic() + WAIT
        while (policy.heard, chords.heard) != (2, 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        assert (policy.heard, chords.heard, first.heard) == (2, 2, 0)
        found = [n for n in notes if n[0] == "harm" and n[2] >= sent]
        assert len(found) == 1 and 64 - found[0][1] in (3, 4), found  # 48's would be below harm's range
        assert all(0 <= t - sent <= HOP for _, _, t in found)  # each paired with its player note
        assert chords.chord == frozenset({0})
        client.close()
    finally:
        api.close()

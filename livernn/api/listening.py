"""Playing with a human (``livernn.engine.listen``): ``midi_in`` and ``listen``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livernn.api.core import _state
from livernn.api.inputs import listen_midi
from livernn.api.voices import _voice
from livernn.errors import LivernnError

if TYPE_CHECKING:  # completion and mypy see the real types; importing stays lazy
    from livernn.controls.midi_in import MidiIn
    from livernn.controls.osc_in import OscIn
    from livernn.controls.player import PlayerFeed
    from livernn.engine.listen import Listening


def midi_in(port: str) -> MidiIn:
    """A player's MIDI input for ``listen`` (part of a port's name, else a new input of that
    name): its notes reach listening voices at their note-on, its CCs as pedals. The same
    input also publishes ``midi.*`` control sources, as ``listen_midi`` does."""
    opened = listen_midi(port)
    opened.feed = _player_feed()
    return opened


def _player_feed() -> PlayerFeed:
    from livernn.controls.player import PlayerFeed

    feed = _state.get("feed")
    if feed is None:
        feed = _state["feed"] = PlayerFeed()
    return feed


def listen(v: Any, source: MidiIn | OscIn | None = None, mode: str | None = None, channel: int = 0,
           **options: Any) -> Listening | None:
    """Make a voice play with a human: ``listen(v, midi_in("keys"), mode="follow")``.

    ``mode``: ``"answer"`` (call and response: silent while the player plays, answers after
    a silence of ``gap`` beats for ``ratio`` times the call), ``"follow"`` (each player note
    gets ``companions`` notes at ``intervals`` semitones or scale ``degrees`` from it) or
    ``"accompany"`` (plays on; player notes below ``split`` set the chord it keeps to;
    ``passing="scale"`` or ``"chromatic"`` lets passing tones through on weak 16ths).
    ``channel`` is the player's (0 = any). ``source`` is a ``midi_in(...)`` or an
    ``OscIn`` (``listen_osc()``: ``/livernn/note pitch velocity``); None stops listening.
    Options: livernn.engine.listen.ListenOptions. Returns the policy (``.status()``)."""
    from livernn.engine.listen import attach, detach, listen_options

    if source is None and (mode is not None or channel or options):  # would stop listening, silently
        raise LivernnError("listen: give what to listen to, listen(v, midi_in('keys'), ...) or "
                           "listen(v, listen_osc(), ...); listen(v) alone stops listening")
    voice_ = _voice(v)
    feed = _player_feed()
    for policy in feed.players:
        if policy.voice is voice_:
            feed.remove(policy)
    if source is None:
        detach(voice_)
        return None
    if not isinstance(channel, int) or not 0 <= channel <= 16:
        raise LivernnError(f"listen channel must be 0 (any) or 1..16, got {channel!r}")
    policy = attach(voice_, listen_options(mode or "answer", **options))
    if hasattr(source, "feed"):
        source.feed = feed
    elif callable(getattr(source, "on", None)):
        feed.listen_osc(source)
    else:
        raise LivernnError(f"listen: source must be midi_in('name') or listen_osc(), got {source!r}")
    feed.add(policy, channel)
    return policy

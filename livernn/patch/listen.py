"""The ``[listen]`` table: a player's input, and how each voice plays with them.

    [listen]
    input = "keys"            # part of a MIDI input's name (a new input of that name if none)
    osc = true                # and/or /livernn/note pitch velocity on the patch's [osc] server
    channel = 0               # the player's channel, 0 = any
    [listen.voices.harm]      # a voice of this patch, and its policy (livernn.engine.listen)
    mode = "follow"
    intervals = [-9, -8, -5, -4, -3]

Registered through livernn.patch.sections for its checks (``listen_options``: the same
one-line errors as the REPL's ``listen``; a voice the patch lacks is one too), but run by
the show itself (``PlayerInput``), because a reload must diff it against the running show,
not only against the old table: a voice that apply_patch rebuilt needs its policy again even
when the table did not change, and a renamed input must be open before the old one closes.
"""

from __future__ import annotations

from typing import Any

from livernn.errors import LivernnError
from livernn.patch.sections import Problems, Section, register_section

KEYS = ("input", "osc", "channel", "voices")


def validate(table: dict[str, Any]) -> Problems:
    from livernn.engine.listen import listen_options

    problems: Problems = []
    for key in table:
        if key not in KEYS:
            problems.append(((key,), f"unknown key; allowed: {', '.join(KEYS)}"))
    port = table.get("input")
    osc = table.get("osc", False)
    if not isinstance(osc, bool):
        problems.append((("osc",), f"must be true or false, got {osc!r}"))
    if port is not None and (not isinstance(port, str) or not port):
        problems.append((("input",), "give the player's MIDI input (part of a port's name)"))
    elif port is None and osc is False:
        problems.append((("input",), "give the player's MIDI input (part of a port's name), or osc = true"))
    channel = table.get("channel", 0)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel <= 16:
        problems.append((("channel",), f"must be 0 (any) or 1..16, got {channel!r}"))
    voices = table.get("voices")
    if not isinstance(voices, dict) or not voices:
        problems.append((("voices",), "name at least one voice: [listen.voices.NAME] with a mode"))
        return problems
    for name, options in voices.items():
        if not isinstance(options, dict):
            problems.append((("voices", name), "must be a table (mode = ..., options)"))
            continue
        try:
            listen_options(**options)
        except (LivernnError, TypeError) as exc:
            problems.append((("voices", name), str(exc)))
    return problems


def voices_named(table: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """The patch's voices the table names (the loader checks each is in the patch)."""
    voices = table.get("voices")
    return [(("voices", name), name) for name in voices] if isinstance(voices, dict) else []


def wanted(table: dict[str, Any] | None) -> dict[str, tuple[Any, int]]:
    """Voice name -> (its checked ListenOptions, the player's channel) for a valid table."""
    from livernn.engine.listen import listen_options

    if not table:
        return {}
    out = {}
    for name, raw in table["voices"].items():
        options = listen_options(**raw)
        out[name] = (options, options.channel or table.get("channel", 0))
    return out


_KEEP = object()


class PlayerInput:
    """A show's ``[listen]``: one player feed for the show's life, its MIDI input, the OSC
    server it takes ``/livernn/note`` from, and the policy of each listening voice.

    ``open(table)`` opens what may fail (a new MIDI input) while the old show plays on;
    ``use(table, opened, osc)``, after the patch is applied, makes the running show listen
    as ``table`` says: a policy is kept while its voice object, options and channel are
    the same; any other is detached from its voice (its companions end at once) and the
    voice gets a new one. So nothing listens twice, nor on a voice that is gone."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.feed: Any = None  # a PlayerFeed once anything listens
        self.midi: Any = None  # MidiIn
        self.port: str | None = None  # the table's input it was opened for
        self.osc: Any = None  # the OscIn hooked to the feed
        self._unhook: Any = None
        self.policies: dict[str, tuple[Any, tuple[Any, int], Any]] = {}  # name -> (voice, key, policy)

    def open(self, table: dict[str, Any] | None) -> Any:
        """The MIDI input the table needs, opened now (LivernnError if it cannot); ``_KEEP``
        when the open one serves, None when none is needed."""
        port = table.get("input") if table else None
        if port is None:
            return None
        if self.midi is not None and port == self.port:
            return _KEEP
        from livernn.controls.midi_in import MidiIn

        return MidiIn(self.session.bus, port, feed=self._feed())

    def discard(self, opened: Any) -> None:
        """A reload failed after ``open``: close what it opened."""
        if opened is not None and opened is not _KEEP:
            opened.close()

    def use(self, table: dict[str, Any] | None, opened: Any, osc: Any) -> None:
        if opened is not _KEEP:
            if self.midi is not None:
                self.midi.close()
            self.midi, self.port = opened, (table or {}).get("input") if opened is not None else None
        hook = osc if table and table.get("osc") else None
        if hook is not self.osc:
            if self._unhook is not None:
                self._unhook()
            self._unhook = self._feed().listen_osc(hook) if hook is not None else None
            self.osc = hook
        self._policies(wanted(table))
        if not table and self.feed is not None:
            self.feed.close()
            self.feed = None

    def _policies(self, wanted: dict[str, tuple[Any, int]]) -> None:
        from livernn.engine.listen import attach, detach

        voices = self.session.voices
        for name, (voice, key, policy) in list(self.policies.items()):
            if wanted.get(name) == key and voices.get(name) is voice and voice.listening is policy:
                continue
            del self.policies[name]
            self.feed.remove(policy)
            if voice.listening is policy:
                detach(voice)
            else:
                policy.close()
        for name, key in wanted.items():
            voice = voices.get(name)
            if name in self.policies or voice is None:
                continue
            policy = attach(voice, key[0])
            self._feed().add(policy, key[1])
            self.policies[name] = (voice, key, policy)

    def _feed(self) -> Any:
        if self.feed is None:
            from livernn.controls.player import PlayerFeed

            self.feed = PlayerFeed()
        return self.feed

    def close(self) -> None:
        self.use(None, None, None)


register_section(Section("listen", validate=validate, voices=voices_named))

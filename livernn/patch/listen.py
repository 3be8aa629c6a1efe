"""The ``[listen]`` table: a player's MIDI input, and how each voice plays with them.

    [listen]
    input = "keys"            # part of a MIDI input's name (a new input of that name if none)
    channel = 0               # the player's channel, 0 = any
    [listen.voices.harm]      # a voice of this patch, and its policy (livernn.engine.listen)
    mode = "follow"
    intervals = [-9, -8, -5, -4, -3]

Registered through livernn.patch.sections, so the schema does not know it; each voice's
options are checked by ``listen_options`` (the same one-line errors as the REPL's ``listen``).
"""

from __future__ import annotations

from typing import Any

from livernn.errors import LivernnError
from livernn.patch.sections import Problems, Section, register_section

KEYS = ("input", "channel", "voices")


def validate(table: dict[str, Any]) -> Problems:
    from livernn.engine.listen import listen_options

    problems: Problems = []
    for key in table:
        if key not in KEYS:
            problems.append(((key,), f"unknown key; allowed: {', '.join(KEYS)}"))
    port = table.get("input")
    if not isinstance(port, str) or not port:
        problems.append((("input",), "give the player's MIDI input (part of a port's name)"))
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


def start(session: Any, runtime: Any, table: dict[str, Any]):
    from livernn.controls.midi_in import MidiIn
    from livernn.controls.player import PlayerFeed
    from livernn.engine.listen import attach, detach, listen_options

    feed = PlayerFeed()
    listening = []
    for name, options in table["voices"].items():
        voice = session.voices.get(name)
        if voice is None:
            runtime.warn(f"[listen] voice {name!r} is not in the patch; voices: {', '.join(session.voices)}")
            continue
        feed.add(attach(voice, listen_options(**options)), table.get("channel", 0))
        listening.append(voice)
    try:
        player = MidiIn(session.bus, table["input"], feed=feed)
    except LivernnError:
        feed.close()
        for voice in listening:
            detach(voice)
        raise

    def stop() -> None:
        player.close()
        feed.close()
        for voice in listening:
            detach(voice)

    return stop


register_section(Section("listen", validate=validate, start=start))

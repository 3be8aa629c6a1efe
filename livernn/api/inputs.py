"""Inputs: ``listen_osc`` and ``listen_midi``, and what a control source needs to be heard."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from livernn.api.core import _state, controls, session
from livernn.errors import LivernnError

if TYPE_CHECKING:  # completion and mypy see the real types; importing stays lazy
    from livernn.controls.midi_in import MidiIn
    from livernn.controls.osc_in import OscIn


# The OSC input an ``osc.*`` source opens when none is: this machine only, the port the
# patches and the TouchOSC/Max examples use, remote commands off.
DEFAULT_OSC = ("127.0.0.1", 9000)


def _osc_inputs() -> list[Any]:
    """Every OSC input listening now: the patch's (if the show has one) and the prompt's."""
    show = _state["show"]
    found = [show.osc] if show is not None and getattr(show, "osc", None) is not None else []
    return found + list(_state["osc_in"])


def _midi_inputs() -> list[Any]:
    show = _state["show"]
    found = [show.midi] if show is not None and getattr(show, "midi", None) is not None else []
    return found + [m for _, m in _state["midi_in"]]


def listen_osc(port: int = DEFAULT_OSC[1], host: str = DEFAULT_OSC[0], allow: Iterable[str] = (),
               commands: bool = False) -> OscIn:
    """Open an OSC input: every message becomes a control source ``osc.<address>``.

    ``host`` is the address to listen on: 127.0.0.1 (this machine only) unless you open it
    (``"0.0.0.0"``); even then only ``allow``-ed hosts or networks (``"192.168.1.20"``,
    ``"10.0.0.0/24"``) are heard. ``commands=True`` also obeys the remote commands
    (``/livernn/panic``, ``/tempo``, ``/scene``, ``/swap`` by model name, ``/param``,
    ``/mute``, ``/unmute``); they are off by default, so a fader input cannot also stop the
    show. Asking again for the same port with other settings reopens it; ``port=0`` picks a
    free one (see ``status()``). It listens from a thread of its own, so a long line at the
    prompt does not hold the controls back.
    """
    import ipaddress

    from livernn.controls.osc_in import OscIn
    from livernn.controls.remote import install_commands

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise LivernnError(f"listen_osc: port must be an integer 0..65535, got {port!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise LivernnError(f"listen_osc: host {host!r} is not an IP address (127.0.0.1, 0.0.0.0, ...)") from None
    allow = (allow,) if isinstance(allow, str) else tuple(allow)
    s = session()
    for existing in _osc_inputs():
        if port and existing.port == port and existing.bind == host:
            if existing not in _state["osc_in"]:
                raise LivernnError(f"OSC {existing.where} is the patch's input; change its [osc] table instead")
            if existing.allow == tuple(str(a) for a in allow) and existing.commands == bool(commands):
                return existing
            existing.close()  # the same port cannot be bound twice: hand it over
            _state["osc_in"].remove(existing)
    opened = OscIn(s.bus, port=port, bind=host, allow=allow)
    runtime = controls()
    install_commands(opened, runtime, bool(commands))
    for binding in runtime.bindings:
        if binding.source.startswith("osc."):
            opened.watch(binding.source[4:])
    opened.start_thread()
    _state["osc_in"].append(opened)
    return opened


def listen_midi(port: str) -> MidiIn:
    """Open a MIDI input: CCs, pitch bend and notes become ``midi.cc.<ch>.<num>`` (0..1),
    ``midi.bend.<ch>`` (-1..1) and ``midi.note.<ch>.<pitch>`` control sources.

    ``port`` is part of an input's name (``livernn devices`` lists them); when none matches,
    a new input of that name is opened for other programs to connect to. Asking again for
    the same name returns the input already open.
    """
    from livernn.controls.midi_in import MidiIn

    for asked, opened in _state["midi_in"]:
        if asked == port:
            return opened
    opened = MidiIn(session().bus, str(port))
    _state["midi_in"].append((port, opened))
    return opened


def _inputs_for(source: str) -> None:
    """What an ``osc.*`` or ``midi.*`` source needs to be heard, said in one line.

    OSC: with no OSC input open, the default one (``DEFAULT_OSC``, commands off) is opened.
    MIDI: with no MIDI input open, nothing is guessed: on most systems the one port that
    could be picked is a loopback ("Midi Through") or livernn's own output, and a wrong
    guess is a control that silently does nothing; the line says how to open one instead.
    """
    if source.startswith("osc."):
        if not _osc_inputs():
            try:
                opened = listen_osc()
            except LivernnError as exc:
                raise LivernnError(f"{exc}; open another port with listen_osc(port)") from None
            print(f"listening for OSC on {opened.where} (remote commands off); listen_osc(port, host,"
                  " allow=...) to choose")
        for opened in _osc_inputs():
            opened.watch(source[4:])
    elif source.startswith("midi.") and not _midi_inputs():
        names = _midi_input_names()
        listed = f" (inputs: {', '.join(names)})" if names else ""
        print(f"{source}: no MIDI input is open; listen_midi('name') opens one{listed}")


def _midi_input_names() -> list[str]:
    """The MIDI ports one could listen to, listed the way the outputs list theirs (no
    short-lived client of our own: see ``livernn.midi_system.list_ports``)."""
    try:
        from livernn.midi_system import choose_api, list_ports

        return list_ports(choose_api(), outputs=False)
    except Exception:  # noqa: BLE001 - only a hint: no MIDI system here means no names
        return []

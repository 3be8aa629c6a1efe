"""The performer's vocabulary: short functions over one running Session.

These are the names the REPL puts at the prompt, and they work the same from a plain
script (``from livernn.api import *``). Each is a thin, documented wrapper over
``livernn.engine.Session`` so that what a performer types reads like the set it plays::

    lead = voice("lead", out=midi("synth"))     # the shipped model, playing at once
    lead.temperature = 1.2                       # validated; a bad value is one line
    patch("osc./1/fader1", "lead.temperature", out=(0.5, 1.5))   # opens OSC on 127.0.0.1:9000
    await swap(lead, "models/folk", at="bar")    # or swap(...).result() in a script
    panic()

The first call that needs a session starts one (``session()``); ``use(s)`` hands the
vocabulary a session built elsewhere (``livernn repl PATCH`` builds it like ``perform``).
Re-running a line is safe: an existing voice or output of that name is reused, not doubled.

Inputs: nothing listens until asked. ``listen_osc`` and ``listen_midi`` open an OSC or MIDI
input; ``patch()`` with an ``osc.*`` source opens the default OSC input when none is open
(so the README's one-liner works at a bare prompt) and says so in one line. A name typed
wrong (voice, parameter, mapping option, swap boundary) is a one-line error naming the
nearest valid one.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livernn.controls.actions import SWAP_AT, perform
from livernn.errors import LivernnError, unknown
from livernn.outputs.base import Output

if TYPE_CHECKING:  # completion and mypy see the real types; importing stays lazy
    from livernn.controls.midi_in import MidiIn
    from livernn.controls.osc_in import OscIn
    from livernn.controls.player import PlayerFeed
    from livernn.controls.runtime import ControlRuntime
    from livernn.engine import Session, Voice
    from livernn.engine.learn import LearnJob
    from livernn.engine.listen import Listening
    from livernn.engine.voice import ModelLike
    from livernn.gesture.tracker import GestureTracker
    from livernn.model.generator import LoadedModel
    from livernn.patch import Show
    from livernn.web.page import WebPage

__all__ = [
    "controls", "gesture", "learn", "listen_midi", "listen_osc", "load", "midi", "models", "mute", "osc", "output",
    "panic", "patch", "quit", "record", "scene", "scsynth", "session", "solo", "status", "stop_record", "superdirt",
    "swap", "tempo", "unmute", "unpatch", "use", "voice", "web",
]

# The OSC input an ``osc.*`` source opens when none is: this machine only, the port the
# patches and the TouchOSC/Max examples use, remote commands off.
DEFAULT_OSC = ("127.0.0.1", 9000)
SWAP_POLICIES = ("ring", "cut")

_state: dict[str, Any] = {"session": None, "runtime": None, "show": None, "trackers": [], "solo": None,
                          "osc_in": [], "midi_in": []}


# -- the session ------------------------------------------------------------------------

def session() -> Session:
    """The running Session, started on first use (120 BPM, the engine's default lookahead).

    One session per process: the REPL, scripts and patch files all play into it.
    """
    current = _state["session"]
    if current is None:
        from livernn.engine import Session

        current = use(Session())
        current.start()
    return current


def use(new_session: Session, runtime: ControlRuntime | None = None, show: Show | None = None) -> Session:
    """Make ``new_session`` (already built, e.g. from a patch) the one these functions drive.

    ``runtime`` is the patch's ControlRuntime, so ``patch()`` and ``scene()`` extend it;
    ``show`` is the patch's Show, whose OSC and MIDI inputs ``patch()`` and ``status()``
    then count as open (its inputs stay the show's to open and close).
    """
    _state.update(session=new_session, runtime=runtime, show=show, solo=None)
    return new_session


def quit() -> None:  # noqa: A001 - the performer types quit(), as in Python
    """End the show: stop gesture tracking, end every note, close outputs and the recording."""
    close()
    raise SystemExit(0)


def close() -> None:
    """Stop everything this module started (called by quit(), Ctrl-D, SIGTERM, and at exit)."""
    for tracker in _state["trackers"]:
        tracker.stop()
    _state["trackers"] = []
    for opened in [*_state["osc_in"], *(m for _, m in _state["midi_in"]), *_state.pop("web", [])]:
        opened.close()
    _state.update(osc_in=[], midi_in=[])
    if _state.get("feed") is not None:
        _state.pop("feed").close()
    runtime, current = _state["runtime"], _state["session"]
    _state.update(session=None, runtime=None, show=None, solo=None)
    if runtime is not None:
        runtime.close()
    if current is not None:
        current.stop()


atexit.register(close)


# -- models and voices ----------------------------------------------------------------------

def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a model: a name (``"folk"``; ``models()`` lists them) or a directory with
    model.safetensors + config.json (or either file).

    Loading is checked (foreign, corrupt or oversized files are refused with one line);
    pass the result to ``voice(..., model=m)`` or ``swap(v, m)`` to play it.
    """
    from livernn.model import load_model

    return load_model(path if isinstance(path, str) else Path(path))  # a string may be a name ("folk")


class Models(str):
    """``models()``'s listing: a string that shows itself as the table at the prompt."""

    def __repr__(self) -> str:
        return str(self)


def models() -> Models:
    """The models a name reaches (``swap(v, "folk")``), with each card's one-line summary:
    the shipped ones, then the user's folder ($LIVERNN_MODELS or the user data folder)."""
    from livernn.commands.models import table

    return Models(table())


def voice(name: str, model: str | Path | ModelLike | None = None, out: Any = None, channel: int = 1,
          **params: Any) -> Voice:
    """Start a voice (or retune the one already called ``name``) and return it.

    ``model``: None for the shipped model, a path, or what ``load`` returned.
    ``out``: an output (``midi("synth")``), an output's name, or a list of them; None means
    every output the session has, or a new MIDI port "livernn" when it has none.
    ``params``: any voice parameter (``temperature=1.2``, ``scale="minor"``; see
    ``PARAM_SPECS``). On an existing voice, the parameters are set and a different ``model``
    is swapped in at the next bar.
    """
    s = session()
    existing = s.voices.get(name)
    if existing is not None:
        existing.update(**params)
        if model is not None:
            swap(existing, model)
        return existing
    outputs = _outputs(s, out)
    return s.add_voice(name, model=model, outputs=outputs, channel=channel, **params)


def _outputs(s: Any, out: Any) -> Any:
    """What ``voice(out=...)`` plays on; names and Output objects are the session's to resolve."""
    if out is None:
        return list(s.outputs.values()) or [midi("livernn")]
    return list(out) if isinstance(out, list | tuple) else [out]


def _voice(v: Voice | str) -> Voice:
    """A Voice from a Voice or its name, with an error that lists the voices."""
    s = session()
    if isinstance(v, str):
        found = s.voices.get(v)
        if found is None:
            raise unknown("voice", v, s.voices)
        return found
    if getattr(v, "name", None) in s.voices and s.voices[v.name] is v:
        return v
    raise LivernnError(f"expected a voice or a voice's name, got {v!r}")


class Swap:
    """A model swap on its way: ``await`` it in the REPL, or ``.result()`` in a script.

    It finishes when the new model has taken over (at the boundary asked for); if loading
    failed, the old model is still playing and awaiting raises the one-line reason.
    """

    def __init__(self, future: concurrent.futures.Future[Any], voice: str, model: str | Path | ModelLike) -> None:
        self.future = future
        self.label = f"{voice} <- {getattr(model, 'name', model)}"

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self.future).__await__()

    def result(self, timeout: float | None = 30.0) -> Any:
        return self.future.result(timeout)

    def done(self) -> bool:
        return self.future.done()

    def __repr__(self) -> str:
        if not self.future.done():
            return f"<swap {self.label}: pending>"
        exc = self.future.exception()
        return f"<swap {self.label}: {'failed: ' + str(exc) if exc else 'done'}>"


def swap(v: Voice | str, model: str | Path | ModelLike, at: str = "bar", policy: str = "ring") -> Swap:
    """Hot-swap a voice's model at the next ``"bar"``, ``"beat"`` or ``"now"``.

    The new model is loaded, warmed up and primed with the voice's recent notes off the
    clock; notes sounding at the swap ring out (``policy="ring"``) or end (``"cut"``).
    """
    if at not in SWAP_AT:
        raise unknown("swap boundary", at, SWAP_AT)
    if policy not in SWAP_POLICIES:
        raise unknown("swap policy", policy, SWAP_POLICIES)
    target = _voice(v)
    future = session().swap(target, model, at=at, policy=policy)
    return Swap(future, target.name, model)


def learn(v: Voice | str, bars: float = 32, seconds: float = 60.0, steps: int | None = None) -> LearnJob:
    """Fine-tune a voice's model on what it (and, listening, its player) played in the last
    ``bars`` bars, then hot-swap the result in at the next bar; the show plays on meanwhile.

    The training runs in a process of its own at low priority (on a CUDA GPU where there is
    one) for at most ``seconds`` (``steps`` caps the steps too). The new model is saved in your
    models folder as ``<model>-learn-<n>`` (``models()`` lists it, with what it was tuned on).
    Returns the job at once: ``job.cancel()``, ``job.wait()``, ``status()`` shows it, and one
    line says how it ended; if it fails or is cancelled, the old model plays on.
    """
    return session().learn(_voice(v), bars=bars, seconds=seconds, steps=steps, report=print)


# -- the show ----------------------------------------------------------------------------

def tempo(bpm: float | None = None) -> float:
    """Set the tempo in BPM (beat position stays continuous); with no argument, read it."""
    if bpm is not None:
        perform(controls(), "tempo", {"bpm": bpm})
    return session().tempo


def panic() -> None:
    """End every sounding note now, on every output (tracked note-offs, then CC 123/120)."""
    perform(controls(), "panic", {})


def mute(*voices: Any) -> None:
    """Silence voices (they keep generating, so unmuting resumes mid-phrase); none = all."""
    for name in _voice_names(voices):
        perform(controls(), "mute", {"voice": name})


def unmute(*voices: Any) -> None:
    """Let voices play again; none = all (this also ends a solo)."""
    for name in _voice_names(voices):
        perform(controls(), "unmute", {"voice": name})
    if not voices:
        _state["solo"] = None


def solo(*voices: Any) -> None:
    """Play only these voices; ``solo()`` with none restores the mutes from before the solo."""
    s = session()
    if not voices:
        saved = _state["solo"] or {}
        for name, muted in saved.items():
            if name in s.voices:
                s.voices[name].set("mute", muted)
        _state["solo"] = None
        return
    keep = {_voice(v).name for v in voices}
    if _state["solo"] is None:
        _state["solo"] = {name: v.params.mute for name, v in s.voices.items()}
    for name, v in s.voices.items():
        v.set("mute", name not in keep)


def _voice_names(voices: Iterable[Any]) -> list[str]:
    """The names of ``voices`` (Voices or names, each checked), or ``["*"]`` (all) for none."""
    return [_voice(v).name for v in voices] or ["*"]


def record(path: str | os.PathLike[str]) -> Path:
    """Record every note from now on into a MIDI file (at the notes' logical times)."""
    target = Path(path).expanduser()
    session().record(target)
    return target


def stop_record() -> Path:
    """Close the recording and return its path."""
    return session().stop_record()


# -- outputs -----------------------------------------------------------------------------

def _add(key: str, same: Any, factory: Any, *args: Any, **kwargs: Any) -> Any:
    """The session's output for which ``same(output)`` holds, else a new one under ``key``."""
    s = session()
    for output in s.outputs.values():
        if same(output):
            return output
    while key in s.outputs:
        key += "'"
    return s.add_output(key, factory(*args, **kwargs))


def midi(name: str = "livernn", create: bool = True) -> Output:
    """A MIDI output: an existing port whose name contains ``name``, or a new virtual port.

    Sent from the engine's MIDI sender process, so nothing typed here can delay a note.
    ``livernn devices`` lists the ports. Asking again for the same name (here or in the
    patch the show started from) reuses that output instead of opening a second port.
    """
    from livernn import outputs

    def same(o: Any) -> bool:
        return o.kind == "midi" and getattr(o, "name", None) == name

    return _add(name, same, outputs.midi, name, create=create)


def _udp(kind: str, factory: Any, host: str, port: int, options: dict[str, Any]) -> Any:
    from livernn.outputs.osc import parse_address

    address = parse_address(host, port)

    def same(o: Any) -> bool:
        return o.kind == kind and getattr(o, "address", None) == address

    return _add(f"{kind}:{address[0]}:{address[1]}", same, factory, address[0], address[1], **options)


def osc(host: str = "127.0.0.1", port: int = 57120, **options: Any) -> Output:
    """Notes as OSC messages, sent ahead in timestamped bundles, to ``host:port``.

    Options: ``address`` ("/livernn/note"), ``args`` (from channel, pitch, velocity,
    duration …), ``off_address``, ``off_args``, ``latency`` (s, default 0.2).
    """
    from livernn import outputs

    return _udp("osc", outputs.osc, host, port, options)


def scsynth(host: str = "127.0.0.1", port: int = 57110, **options: Any) -> Output:
    """Notes as gated synths on a SuperCollider server (the SynthDef is sent on start)."""
    from livernn import outputs

    return _udp("scsynth", outputs.scsynth, host, port, options)


def superdirt(host: str = "127.0.0.1", port: int = 57120, **options: Any) -> Output:
    """Notes as SuperDirt ``/dirt/play`` events (``sound``, ``orbit``, ``latency`` options)."""
    from livernn import outputs

    return _udp("superdirt", outputs.superdirt, host, port, options)


def output(kind: str, name: str | None = None, **options: Any) -> Output:
    """An output of any registered kind (``livernn.outputs.KINDS``), with its patch options.

    ``output("file", path="set.mid")``; a kind added by a plug-in module is reachable here
    without a function of its own. Asking again for ``name`` returns that output.
    """
    from livernn import outputs

    if kind not in outputs.KINDS:
        raise unknown("output kind", kind, outputs.KINDS)
    s = session()
    key = name or kind
    if key in s.outputs:
        return s.outputs[key]
    return s.add_output(key, outputs.build(kind, key, options, s.clock.bpm))


# -- controls ----------------------------------------------------------------------------

def controls() -> ControlRuntime:
    """The ControlRuntime wiring the bus to voices (the patch's, or one made here)."""
    if _state["runtime"] is None:
        from livernn.controls.runtime import ControlRuntime

        _state["runtime"] = ControlRuntime(session(), resolve_model=_remote_model)
    return _state["runtime"]


def _remote_model(name: str) -> str:
    """A model a remote ``/livernn/swap`` may name: one reachable by name (shipped or the
    user's, ``livernn models``), never a path: a controller must not make this process
    open a file of its choosing."""
    from livernn.library import models as reachable

    found = {entry.name: entry.path for entry in reachable()}
    if name not in found:
        raise unknown("model", name, found)
    return str(found[name])


def _target(target: str) -> tuple[str, str]:
    from livernn.engine import PARAM_SPECS

    voice_name, dot, param = str(target).partition(".")
    if not dot or not voice_name or not param:
        raise LivernnError(f"patch target must be 'voice.param' (like 'lead.temperature'), got {target!r}")
    _voice(voice_name)
    if param not in PARAM_SPECS:
        raise unknown("parameter", param, PARAM_SPECS)
    return voice_name, param


# -- inputs ------------------------------------------------------------------------------

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


def patch(source: str, target: str, **mapping: Any) -> None:
    """Wire a control source (``"osc./1/fader1"``, ``"hand.right.pinch"``) to ``"voice.param"``.

    The verb is a patch cable's; what it makes is a *mapping*, the same thing as a patch
    file's ``[[mappings]]`` entry (``status()`` lists them under "mappings", ``unpatch``
    removes them). A "patch" everywhere else is a show file.

    Mapping options, as in patch files (``controls.mapping.build_mapping`` reads both):
    ``range=(lo, hi)`` of the input, ``out=(lo, hi)`` in the parameter's units (default:
    the parameter's whole range), ``curve`` (lin, exp, log),
    ``clip`` (clip, free, wrap, fold), ``invert``, ``smooth`` (ema, one_euro) with ``alpha``
    or ``mincutoff``/``beta``/``dcutoff``, ``quantize``, ``steps``, ``deadband``, ``rate``.
    A source that has not sent anything yet is fine: the mapping acts from its first value.

    An ``osc.*`` source with no OSC input open opens the default one (127.0.0.1:9000, remote
    commands off) and says so; a ``midi.*`` source with no MIDI input open says how to open
    one (``listen_midi('name')``) rather than guess a port. See ``listen_osc``.
    """
    from livernn.controls.mapping import build_mapping
    from livernn.controls.runtime import Binding
    from livernn.engine import PARAM_SPECS

    voice_name, param = _target(target)
    shaped = build_mapping(PARAM_SPECS[param], mapping)  # the same options, checks and errors as a patch's
    _inputs_for(str(source))  # after every check: a refused mapping opens nothing
    controls().add_mapping(Binding(str(source), voice_name, param, shaped))


def unpatch(source: str | None = None, target: str | None = None) -> int:
    """Remove mappings by source, by ``"voice.param"`` target, or both; none = all. Returns how many."""
    runtime = controls()
    keep, removed = [], 0
    for b in runtime.bindings:
        hit = (source is None or b.source == source) and (target is None or f"{b.voice}.{b.param}" == target)
        if hit:
            removed += 1
        else:
            keep.append(b)
    runtime.set_mappings(keep)
    return removed


def scene(n: int | str) -> str:
    """Apply a scene from the patch, by name or by 0-based index; returns its name."""
    runtime = controls()
    perform(runtime, "scene", {"scene": n})
    assert runtime.scene is not None  # applying a scene names it, or raises
    return runtime.scene


def gesture(source: int | str = 0, **options: Any) -> GestureTracker:
    """Track hands from a camera index, video or picture and publish ``hand.*`` controls.

    Options are GestureTracker's (``mirror``, ``filters``, ``realtime``, ``osc``…). Stopped
    by ``quit()``; ``patch("hand.right.pinch", "lead.temperature")`` puts it to work.
    """
    from livernn.gesture.tracker import GestureTracker

    tracker = GestureTracker(source, bus=session().bus, **options).start()
    _state["trackers"].append(tracker)
    return tracker


def web(port: int | None = None, host: str | None = None, oscquery: int | None = None) -> WebPage:
    """Open the control page of this show in a browser: sliders for every voice's
    parameters, mute/solo, model swap, scenes, tempo, panic, status and a piano roll.

    Prints the URL (127.0.0.1:8080 unless ``port``/``host`` say, e.g. ``host="0.0.0.0"``
    for a phone: then the URL carries a token and a QR code is printed). ``oscquery=9010``
    also serves the show's OSC namespace for TouchOSC, Open Stage Control and Max. Returns
    the page (``.url``, ``.close()``). A show has one page (and one OSCQuery server): when
    one runs already (the patch's ``[web]``, or an earlier ``web()``) it is returned, with a
    line saying where it is if another address was asked for. Needs the ``web`` extra
    (``pip install 'livernn[web]'``).
    """
    from livernn.web.serve import open_oscquery, open_page, running

    s, runtime = session(), controls()
    opened = _state.setdefault("web", [])
    bind = "127.0.0.1" if host is None else host
    at = (lambda p: f"[{bind}]:{p}") if ":" in str(bind) else (lambda p: f"{bind}:{p}")
    page = running(s, "web")
    if page is None:
        page = open_page(s, runtime, at(8080 if port is None else port))
        opened.append(page)
    elif (port is not None and port not in (0, page.port)) or (host is not None and host != page.host):
        print(f"web page: {page.url} (the show's page is open there already; page.close() first to move it)")
    else:
        print(f"web page: {page.url}")
    if oscquery is not None:
        query = running(s, "oscquery")
        if query is None:
            opened.append(open_oscquery(s, runtime, at(oscquery)))
        elif oscquery not in (0, query.port) or (host is not None and host != query.host):
            print(f"oscquery: {query.url} (the show's OSCQuery is open there already)")
    return page


# -- looking at it --------------------------------------------------------------------------

class Status(dict):
    """``session.status()`` that prints itself as a table at the prompt."""

    def __repr__(self) -> str:
        from livernn.status_text import format_status

        return format_status(self)


def status() -> Status:
    """Voices, models, parameters, outputs, inputs, mappings and timing (late events, onset error).

    ``inputs`` says what listens where: each OSC input's host:port and whether it obeys
    remote commands, each MIDI input's port, and whether the patch or the prompt opened it.
    """
    s = session()
    report = Status(s.status())
    runtime = _state["runtime"]
    report["mappings"] = [
        f"{b.source} -> {b.voice}.{b.param}" for b in (runtime.bindings if runtime else [])
    ]
    show = _state["show"]
    report["inputs"] = [
        {"input": "osc", "where": o.where, "commands": "on" if o.commands else "off",
         "opened by": "patch" if show is not None and o is getattr(show, "osc", None) else "prompt"}
        for o in _osc_inputs()
    ] + [
        {"input": "midi", "where": f"{m.name} ({m.api_name})", "commands": "",
         "opened by": "patch" if show is not None and m is getattr(show, "midi", None) else "prompt"}
        for m in _midi_inputs()
    ]
    return report



# -- playing with a human (livernn.engine.listen) -------------------------------------------

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


def listen(v: Any, source: MidiIn | OscIn | None = None, mode: str = "answer", channel: int = 0,
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
    policy = attach(voice_, listen_options(mode, **options))
    if hasattr(source, "feed"):
        source.feed = feed
    elif callable(getattr(source, "on", None)):
        feed.listen_osc(source)
    else:
        raise LivernnError(f"listen: source must be midi_in('name') or listen_osc(), got {source!r}")
    feed.add(policy, channel)
    return policy


__all__ += ["listen", "midi_in"]


# -- playing with the band (livernn.engine.band) ------------------------------------------

def _output_name(out: Any) -> str:
    s = session()
    if isinstance(out, str):
        if out not in s.outputs:
            raise unknown("output", out, list(s.outputs))
        return out
    for name, o in s.outputs.items():
        if o is out:
            return name
    raise LivernnError(f"{out!r} is not one of the session's outputs ({', '.join(s.outputs) or 'none'})")


def sync(source: str = "internal", start_stop: bool = False) -> str:
    """Take the beat from ``"link"`` (Ableton Link), ``"midi:NAME"`` (MIDI clock in on port
    NAME) or ``"internal"``; switching while playing never jumps the beat."""
    return session().sync(source, start_stop)


def clock_out(out: Any, on: bool = True) -> None:
    """Send MIDI clock on a MIDI output: ``clock_out(midi("drums"))``; ``on=False`` stops it."""
    name = _output_name(out)
    if on:
        session().clock_out(name)
    else:
        session().stop_clock_out(name)


def offset(out: Any, ms: float | None = None) -> float:
    """Latency compensation: output ``out`` gets every event ``ms`` later (negative: earlier);
    with no ``ms``, read it."""
    name = _output_name(out)
    s = session()
    if ms is not None:
        s.set_offset(name, ms)
    return s.band.offsets_ms().get(name, 0.0)


__all__ += ["clock_out", "offset", "sync"]

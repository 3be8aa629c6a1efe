"""A show: a Session played from a patch file, with its control servers and live reload.

``Show`` owns what a patch adds around a session: the ``ControlRuntime`` (mappings,
automation, triggers, scenes), the OSC server with its remote commands and feedback, the
MIDI input (with listen mode) and plug-in sections such as ``[gesture]``. ``load`` applies
a patch (the first time, or as a change to the running one); ``reload`` does the same
but keeps the last good patch when the new one is bad, printing the one-line reason;
``watch`` reloads whenever the file is saved. ``open_show`` builds a started show from a
patch file: ``livernn perform PATCH`` and ``livernn repl PATCH`` both start that way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from livernn.controls.feedback import OscFeedback
from livernn.controls.midi_in import MidiIn, NoteListener
from livernn.controls.osc_in import OscIn
from livernn.controls.remote import install_commands
from livernn.controls.runtime import ControlRuntime
from livernn.errors import LivernnError
from livernn.patch.apply import apply_patch
from livernn.patch.lines import KeyLines
from livernn.patch.listen import PlayerInput
from livernn.patch.schema import Patch, load_patch
from livernn.patch.sections import section
from livernn.patch.specs import PatchError

log = logging.getLogger(__name__)
_NOTHING = object()


class Show:
    """See the module docstring. Use inside a running event loop."""

    def __init__(self, session: Any, path: str | Path, report: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.path = Path(path)
        self.patch: Patch | None = None
        self.runtime = ControlRuntime(session)
        self.osc: OscIn | None = None
        self.midi: MidiIn | None = None
        self.report = report or (lambda line: log.warning("%s", line))
        self.reloads = 0
        self.rejected = 0
        self._stops: dict[str, Callable[[], None]] = {}
        self.player = PlayerInput(session)  # [listen]: diffed against the running show on each load
        self._tick: asyncio.Task | None = None
        # Plug-in tables the front end lays over the patch's (``perform --web`` over
        # ``[web]``): name -> a function from the patch's table (None if it has none) to
        # the one to start (None: none). Applied on every load, so a reload keeps them.
        self.overrides: dict[str, Callable[[dict[str, Any] | None], dict[str, Any] | None]] = {}

    async def load(self) -> Patch:
        """Read the file and make the session play it; raises LivernnError if it cannot."""
        patch = load_patch(self.path)
        old = self.patch
        opened = await self._open_servers(patch, old)  # may fail: nothing has changed yet
        listen = self.tables(patch).get("listen")
        player = _NOTHING
        try:
            player = self._open_player(listen)  # a renamed input opens before the old one closes
            apply_patch(self.session, patch, self.runtime, old)
        except BaseException:
            for server in opened.values():
                if server is not None:
                    server.close()
            if player is not _NOTHING:
                self.player.discard(player)
            raise
        self.patch = patch
        self._use_servers(patch, old, opened)
        self.player.use(listen, player, self.osc)  # every load: a rebuilt voice listens again
        self._sections(patch, old)
        if self._tick is None:
            self._tick = asyncio.get_running_loop().create_task(self.runtime.run())
        return patch

    def _open_player(self, listen: dict[str, Any] | None) -> Any:
        """The [listen] input, opened; a failure is the patch's problem, at its line."""
        try:
            return self.player.open(listen)
        except LivernnError as exc:
            try:
                line = KeyLines(self.path.read_text(encoding="utf-8")).line(("listen", "input"))
            except (OSError, UnicodeDecodeError):
                line = 1
            raise PatchError([f"{self.path}:{line}: listen.input: {exc}"]) from None

    async def reload(self) -> bool:
        """Apply the file as it is now; on any problem keep playing the last good patch."""
        try:
            await self.load()
        except LivernnError as exc:
            self.rejected += 1
            self.report(f"{self.path.name}: kept the last good patch: {exc}")
            return False
        self.reloads += 1
        self.report(f"{self.path.name}: reloaded")
        return True

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every save of the patch file until ``stop`` is set."""
        import watchfiles

        target = self.path.resolve()
        async for changes in watchfiles.awatch(target.parent, stop_event=stop, debounce=200, step=20,
                                                 recursive=False):
            if any(Path(p).resolve() == target for _, p in changes) and target.exists():
                await self.reload()

    # -- servers ---------------------------------------------------------------------------
    async def _open_servers(self, patch: Patch, old: Patch | None) -> dict[str, Any]:
        """Open the OSC server and MIDI input the new patch needs and the old one lacks.

        Returns {"osc": server, "midi": input}; a key is present when that server changes
        (its value None when the new patch has none)."""
        opened: dict[str, Any] = {}
        spec, old_spec = patch.osc, old.osc if old else None
        key = None if spec is None else (spec.port, spec.bind, spec.allow, spec.commands)
        if key != (None if old_spec is None else (old_spec.port, old_spec.bind, old_spec.allow, old_spec.commands)):
            opened["osc"] = None
            if spec is not None:
                if self.osc is not None and old_spec is not None and old_spec.port == spec.port:
                    self.osc.close()  # the same port cannot be bound twice: hand it over
                    self.osc = None
                osc = OscIn(self.session.bus, port=spec.port, bind=spec.bind, allow=spec.allow)
                install_commands(osc, self.runtime, spec.commands)
                try:
                    await osc.start()
                except LivernnError:
                    if self.osc is None and old_spec is not None:  # give the old one its port back
                        self.osc = OscIn(self.session.bus, old_spec.port, old_spec.bind, old_spec.allow)
                        install_commands(self.osc, self.runtime, old_spec.commands)
                        await self.osc.start()
                    raise
                opened["osc"] = osc
        if patch.midi != (old.midi if old else None):
            opened["midi"] = None
            if patch.midi is not None:
                try:
                    listener = NoteListener(self._observer(patch.midi.listen)) if patch.midi.listen else None
                    opened["midi"] = MidiIn(self.session.bus, patch.midi.input, listener, patch.midi.listen_channel)
                except LivernnError:
                    if opened.get("osc") is not None:
                        opened["osc"].close()
                    raise
        return opened

    def _use_servers(self, patch: Patch, old: Patch | None, opened: dict[str, Any]) -> None:
        runtime = self.runtime
        if "osc" in opened:
            if self.osc is not None:
                self.osc.close()
            self.osc = opened["osc"]
        if self.osc is not None:
            for binding in runtime.bindings:
                if binding.source.startswith("osc."):
                    self.osc.watch(binding.source[4:])
        if "midi" in opened:
            if self.midi is not None:
                if self.midi.listener is not None:
                    runtime.tickers.remove(self.midi.listener.flush)
                self.midi.close()
            self.midi = opened["midi"]
            if self.midi is not None and self.midi.listener is not None:
                runtime.tickers.append(self.midi.listener.flush)  # a note held too long is reported anyway
        feedback = patch.osc.feedback if patch.osc else None
        if feedback != (old.osc.feedback if old and old.osc else None):
            if runtime.feedback is not None:
                runtime.feedback.close()
                runtime.feedback = None
            if feedback is not None:
                runtime.feedback = OscFeedback(*feedback)

    def _observer(self, voice_name: str) -> Callable[[int, float, float, int], None]:
        """Played seconds -> model seconds: the model's time runs at its own ref_bpm."""

        def observe(pitch: int, step_s: float, dur_s: float, velocity: int) -> None:
            voice = self.session.voices.get(voice_name)
            if voice is None:
                return
            scale = self.session.clock.bpm * voice.params.density / getattr(voice.model, "ref_bpm", 120.0)
            try:
                voice.observe(pitch, step_s * scale, dur_s * scale, velocity)
            except LivernnError as exc:
                self.runtime.warn(f"listen {voice_name}: {exc}")

        return observe

    def tables(self, patch: Patch | None) -> dict[str, dict[str, Any]]:
        """The plug-in tables the show starts for ``patch``: its own, with ``overrides`` laid over."""
        tables = dict(patch.sections) if patch is not None else {}
        for name, merge in self.overrides.items():
            merged = merge(tables.get(name))
            if merged is None:
                tables.pop(name, None)
            else:
                tables[name] = merged
        return tables

    def _sections(self, patch: Patch, old: Patch | None) -> None:
        old_sections = self.tables(old) if old else {}
        sections = self.tables(patch)
        for name in set(old_sections) | set(sections):
            if old_sections.get(name) == sections.get(name):
                continue
            stop = self._stops.pop(name, None)
            if stop is not None:
                stop()
            hook = section(name)
            if name in sections and hook is not None and hook.start is not None:
                self._stops[name] = hook.start(self.session, self.runtime, sections[name])

    async def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            try:
                await self._tick
            except asyncio.CancelledError:
                pass
            self._tick = None
        for stop in self._stops.values():
            stop()
        self._stops.clear()
        self.player.close()
        if self.osc is not None:
            self.osc.close()
            self.osc = None
        if self.midi is not None:
            self.midi.close()
            self.midi = None
        self.runtime.close()


async def open_show(path: str | Path, *, bpm: float | None = None, report: Callable[[str], None] | None = None,
                    taps: Sequence[str] = (), record: str | Path | None = None,
                    overrides: Mapping[str, Callable[[dict[str, Any] | None], dict[str, Any] | None]] | None = None,
                    ) -> Show:
    """A started Session playing the patch at ``path``, in its ``Show`` (``show.session``).

    The one way a show is built from a patch, so ``perform`` and ``repl PATCH`` play a
    patch the same. ``bpm`` overrides the patch's tempo; ``taps`` are output specs that
    hear every voice (``perform --out``); ``record`` starts recording before the first note;
    ``overrides`` are laid over the patch's plug-in tables (``Show.overrides``).
    A bad patch raises before anything opens; a failure later closes what was opened.
    """
    from livernn.engine import Session

    first = load_patch(path)
    session = Session(bpm=first.bpm if bpm is None else bpm, beats_per_bar=first.beats_per_bar)
    show = Show(session, path, report)
    show.overrides.update(overrides or {})
    try:
        await show.load()
        if bpm is not None:
            session.set_tempo(bpm)
        for spec in taps:
            session.add_tap(spec)
        if record is not None:
            session.record(record)
        session.start()
    except BaseException:
        await show.close()
        session.stop()
        raise
    return show

"""The patch-file schema (``version = 1``): a checked, typed view of the TOML.

``load_patch(path)`` reads the file with tomllib (data only: nothing in a patch runs),
checks every table and key, and returns a ``Patch`` or raises ``PatchError`` listing each
problem as ``file:line: key.path: what is wrong; what is allowed``. Paths (models, files)
are relative to the patch file and must stay inside its folder or the shipped
``models/``; a model may also be given by name (``folk``: see ``livernn.library``). The
shipped patches in ``patches/`` show every table.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any

from livernn.controls.actions import ACTIONS, ARG_NAMES, Action
from livernn.controls.automation import SHAPES
from livernn.controls.mapping import OPTIONS, MappingError, source_problem
from livernn.controls.runtime import Scene
from livernn.engine.params import PARAM_SPECS, VoiceParams
from livernn.errors import LivernnError, kind_of, unknown
from livernn.library import NAME as MODEL_NAME
from livernn.outputs import KINDS
from livernn.patch.checker import Checker
from livernn.patch.lines import KeyLines
from livernn.patch.sections import OWNERS, section
from livernn.patch.specs import (
    NAME,
    REPO_MODELS,
    AutomationSpec,
    MappingSpec,
    MidiSpec,
    OscSpec,
    OutputSpec,
    Patch,
    PatchError,
    TriggerSpec,
    VoiceSpec,
)

VERSION = 1

TOP = ("version", "name", "description", "clock", "models", "outputs", "voices", "osc", "midi",
       "mappings", "automation", "triggers", "scenes", "scene", *OWNERS)  # OWNERS: plug-in tables ([gesture], [web]...)
MAPPING_KEYS = ("source", "target", *OPTIONS)  # the options checked and built by mapping.build_mapping
LFO_KEYS = ("name", "type", "target", "shape", "beats", "hz", "lo", "hi", "phase", "seed")
RAMP_KEYS = ("name", "type", "target", "points", "loop", "step")
CONDITION_KEYS = ("above", "below", "equals", "hysteresis")
TRIGGER_KEYS = ("source", *CONDITION_KEYS, "action", *ARG_NAMES)  # the action table's arguments


def load_patch(path: str | Path) -> Patch:
    """Read and check a patch file; raises PatchError with every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PatchError([f"{path}:1: cannot read the patch: {getattr(exc, 'strerror', None) or exc}"]) from None
    return parse_patch(text, path)


def parse_patch(text: str, path: Path) -> Patch:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = found.group(1) if found else "1"
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise PatchError([f"{path}:{line}: TOML syntax: {reason}"]) from None
    except RecursionError:  # tomllib recurses per nesting level: a hostile file must not crash a show
        raise PatchError([f"{path}:1: TOML nested too deeply"]) from None
    check = Checker(path, KeyLines(text))
    patch = _build(data, path.resolve(), check)
    if check.problems:
        check.problems.sort(key=lambda p: p[0])
        raise PatchError([f"{path}:{line}: {message}" for line, message in check.problems])
    assert patch is not None
    return patch


def _build(data: dict[str, Any], path: Path, check: Checker) -> Patch | None:
    folder = path.parent
    check.table((), data, TOP)
    if data.get("version") != VERSION:
        check.bad(("version",),
                  f"must be {VERSION} (the schema version this livernn reads), got {data.get('version')!r}")
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        check.bad(("name",), f"must be a string, got {kind_of(name)}")

    clock = check.table(("clock",), data.get("clock", {}),
                        ("bpm", "beats_per_bar", "time_signature", "source", "out", "start_stop"))
    bpm = check.number(("clock", "bpm"), clock.get("bpm", 120.0), 1, 999) or 120.0
    beats_per_bar = _beats_per_bar(clock, check)

    models = _models(data, folder, check)
    from livernn.library import is_packed

    # A patch inside the installed package is read-only: its recordings land in the current folder.
    outputs = _outputs(data, Path.cwd().resolve() if is_packed(folder) else folder, check)
    voices = _voices(data, models, outputs, check)
    osc = _osc(data, check)
    midi = _midi(data, voices, check)
    mappings = _mappings(data, voices, check)
    automation = _automation(data, voices, check)
    scenes = _scenes(data, voices, models, check)
    triggers = _triggers(data, voices, models, scenes, check)
    sources = [m.source for m in mappings] + [t.source for t in triggers]
    if osc is None and any(source.startswith("osc.") for source in sources):
        osc = OscSpec()  # OSC controls named without an [osc] table: the safe default server
    start_scene = data.get("scene")
    if start_scene is not None:
        _choice(check, ("scene",), start_scene, "scene", scenes)
    sections = _sections(data, folder, check, voices)
    if osc is None and sections.get("listen", {}).get("osc") is True:
        osc = OscSpec()  # the player over OSC without an [osc] table: the safe default server
    source, clock_out, start_stop = _clock_sync(clock, outputs, check)
    return Patch(path, str(name), float(bpm), beats_per_bar, models, outputs, voices, osc, midi,
                 tuple(mappings), tuple(automation), tuple(triggers), scenes, start_scene, sections,
                 source, clock_out, start_stop)


def _clock_sync(clock: dict[str, Any], outputs: dict[str, OutputSpec],
                check: Checker) -> tuple[str, tuple[str, ...], bool]:
    """[clock] source / out / start_stop: where beats come from, which outputs send MIDI clock."""
    from livernn.sync import SOURCES, check_spec

    source = clock.get("source", "internal")
    try:
        source = check_spec(source)
    except LivernnError:
        check.bad(("clock", "source"), f"must be one of {', '.join(SOURCES)}, got {source!r}")
        source = "internal"
    outs: list[str] = []
    for i, spec in enumerate(check.strings(("clock", "out"), clock.get("out", []))):
        name = spec[5:] if spec.startswith("midi:") else None
        if name is None or name not in outputs or outputs[name].type not in ("", "midi"):
            midi_outs = [n for n, o in outputs.items() if o.type == "midi"]
            if name is None:
                check.bad(("clock", "out", i), f"must be \"midi:NAME\" with NAME a MIDI output of the patch "
                                               f"({', '.join(midi_outs) or 'none'}), got {spec!r}")
            else:
                check.bad(("clock", "out", i), str(unknown("MIDI output", name, midi_outs)))
            continue
        outs.append(name)
    start_stop = clock.get("start_stop", False)
    if not isinstance(start_stop, bool):
        check.bad(("clock", "start_stop"), f"must be true or false, got {kind_of(start_stop)}")
        start_stop = False
    return source, tuple(outs), start_stop


def _beats_per_bar(clock: dict[str, Any], check: Checker) -> int:
    if "time_signature" in clock:
        if "beats_per_bar" in clock:
            check.bad(("clock", "time_signature"), "give time_signature or beats_per_bar, not both")
        sig = clock["time_signature"]
        found = re.fullmatch(r"(\d{1,2})/(1|2|4|8|16)", sig) if isinstance(sig, str) else None
        if not found or not 1 <= int(found.group(1)) <= 32:
            check.bad(("clock", "time_signature"), f"{sig!r} must look like \"3/4\" or \"7/8\"")
            return 4
        return int(found.group(1))
    return check.number(("clock", "beats_per_bar"), clock.get("beats_per_bar", 4), 1, 32, integer=True) or 4


def _models(data: dict[str, Any], folder: Path, check: Checker) -> dict[str, str]:
    """Name -> absolute path or "default"; a broken entry maps to "" (declared, so the
    voices naming it get no second, misleading error)."""
    models: dict[str, str] = {}
    for name, value in check.table(("models",), data.get("models", {})).items():
        where = ("models", name)
        models[name] = ""
        if not NAME.match(name):
            check.bad(where, "model names are letters, digits, _ and -")
        if check.string(where, value) is None:
            continue
        if value == "default":
            models[name] = "default"
            continue
        if MODEL_NAME.match(value):  # a name: shipped, user's, the patch's models/, then ./NAME
            from livernn.library import find_model

            try:
                models[name] = str(find_model(value, folder))
            except LivernnError as exc:
                check.bad(where, str(exc))
            continue
        resolved = check.inside(where, value, folder, also=REPO_MODELS)
        if resolved is None:
            continue
        if not resolved.exists():
            check.bad(where, f"model {value!r} not found (looked for {resolved})")
            continue
        models[name] = str(resolved)
    return models


def _outputs(data: dict[str, Any], folder: Path, check: Checker) -> dict[str, OutputSpec]:
    raw = data.get("outputs", {})
    items: list[tuple[tuple[str | int, ...], str | None, Any]] = []
    if isinstance(raw, list):  # [[outputs]] with name = ...
        for i, table in enumerate(raw):
            name = table.get("name") if isinstance(table, dict) else None
            items.append((("outputs", i), name, table))
    else:
        items = [(("outputs", name), name, table) for name, table in check.table(("outputs",), raw).items()]
    outputs: dict[str, OutputSpec] = {}
    for where, name, table in items:
        if not isinstance(name, str) or not NAME.match(name):
            check.bad((*where, "name") if isinstance(where[-1], int) else where,
                      f"an output needs a name of letters, digits, _ and -, got {name!r}")
            continue
        if name in outputs:
            check.bad(where, f"duplicate output name {name!r}")
            continue
        kind = check.string((*where, "type"), check.table(where, table).get("type"), tuple(KINDS))
        if kind is None:
            outputs[name] = OutputSpec(name, "", {})  # declared: voices naming it are fine
            continue
        allowed = KINDS[kind].options  # each kind says its own (livernn.outputs.KINDS)
        extra = ("type", "name", "offset_ms") if isinstance(where[-1], int) else ("type", "offset_ms")
        options: dict[str, Any] = {}
        offset = check.number((*where, "offset_ms"), table.get("offset_ms", 0.0), -50, 500) or 0.0
        for key, value in check.table(where, table, (*extra, *allowed)).items():
            if key in allowed:
                expected = allowed[key]
                if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
                    check.bad((*where, key), f"has the wrong type ({kind_of(value)})")
                    continue
                options[key] = value
        for key, suffix in KINDS[kind].file_options.items():  # files stay beside the patch
            file = check.inside((*where, key), options.get(key, f"{name}{suffix}"), folder)
            options[key] = str(file) if file else ""
        if allowed.get("port") is int and "port" in options \
                and check.number((*where, "port"), options["port"], 1, 65535, True) is None:
            continue
        outputs[name] = OutputSpec(name, kind, options, float(offset))
    return outputs


def _voice_params(where: tuple[str | int, ...], params: dict[str, Any], check: Checker) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in check.table(where, params).items():
        if key not in PARAM_SPECS:
            check.bad((*where, key), str(unknown("parameter", key, PARAM_SPECS)))
            continue
        try:
            clean[key] = PARAM_SPECS[key].coerce(value)
        except LivernnError as exc:
            check.bad((*where, key), str(exc))
    try:
        VoiceParams().with_(**clean)
    except LivernnError as exc:
        check.bad(where, str(exc))
    return clean


def _voices(data: dict[str, Any], models: dict[str, str], outputs: dict[str, OutputSpec],
            check: Checker) -> dict[str, VoiceSpec]:
    voices: dict[str, VoiceSpec] = {}
    for name, table in check.table(("voices",), data.get("voices", {})).items():
        where = ("voices", name)
        if not (NAME.match(name) and name.isidentifier()):
            check.bad(where, "voice names are letters, digits and _, not starting with a digit")
        table = check.table(where, table, ("model", "outputs", "channel", "params"))
        model = table.get("model", "default")
        _choice(check, (*where, "model"), model, "model", ("default", *models))
        voice_outputs = check.strings((*where, "outputs"), table.get("outputs", []))
        for out in voice_outputs:
            if out not in outputs:
                check.bad((*where, "outputs"), str(unknown("output", out, outputs)))
        channel = check.number((*where, "channel"), table.get("channel", 1), 1, 16, integer=True) or 1
        params = _voice_params((*where, "params"), table.get("params", {}), check)
        voices[name] = VoiceSpec(name, str(model), tuple(voice_outputs), channel, params)
    return voices


def _osc(data: dict[str, Any], check: Checker) -> OscSpec | None:
    if "osc" not in data:
        return None
    table = check.table(("osc",), data["osc"], ("port", "bind", "allow", "feedback", "commands"))
    port = check.number(("osc", "port"), table.get("port", 9000), 0, 65535, integer=True)
    bind = table.get("bind", "127.0.0.1")
    if check.string(("osc", "bind"), bind) is not None:
        try:
            ipaddress.ip_address(bind)
        except ValueError:
            check.bad(("osc", "bind"), f"{bind!r} is not an IP address (127.0.0.1, 0.0.0.0, ...)")
    allow = check.strings(("osc", "allow"), table.get("allow", []))
    for i, entry in enumerate(allow):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            check.bad(("osc", "allow", i), f"{entry!r} is not an IP address or network")
    commands = table.get("commands", False)
    if not isinstance(commands, bool):
        check.bad(("osc", "commands"), f"must be true or false, got {kind_of(commands)}")
    feedback = None
    if "feedback" in table:
        fb = check.table(("osc", "feedback"), table["feedback"], ("host", "port"))
        host = check.string(("osc", "feedback", "host"), fb.get("host", "127.0.0.1"))
        fport = check.number(("osc", "feedback", "port"), fb.get("port"), 1, 65535, integer=True)
        feedback = (host, fport) if host and fport else None
    return OscSpec(port if port is not None else 9000, str(bind), tuple(allow), feedback, commands is True)


def _midi(data: dict[str, Any], voices: dict[str, VoiceSpec], check: Checker) -> MidiSpec | None:
    if "midi" not in data:
        return None
    table = check.table(("midi",), data["midi"], ("input", "listen", "listen_channel"))
    port = check.string(("midi", "input"), table.get("input"))
    listen = table.get("listen")
    if listen is not None:
        _choice(check, ("midi", "listen"), listen, "voice", voices)
    channel = check.number(("midi", "listen_channel"), table.get("listen_channel", 0), 0, 16, integer=True)
    return MidiSpec(port or "", listen, channel or 0)


def _target(where: tuple[str | int, ...], target: Any, voices: dict[str, VoiceSpec],
            check: Checker) -> tuple[str, str] | None:
    if check.string(where, target) is None:
        return None
    voice, dot, param = target.partition(".")
    if not dot:
        check.bad(where, f"must be 'voice.param' (like 'lead.temperature'), got {target!r}")
        return None
    if voice not in voices:
        check.bad(where, str(unknown("voice", voice, voices)))
        return None
    if param not in PARAM_SPECS:
        check.bad(where, str(unknown("parameter", param, PARAM_SPECS)))
        return None
    return voice, param


def _choice(check: Checker, where: tuple[str | int, ...], value: Any, what: str,
            choices: Any) -> str | None:
    """A name that must be one of ``choices``; a typo gets the nearest one named
    (``no voice 'laed'; did you mean 'lead'?``), the same shape as at the prompt."""
    if check.string(where, value) is None:
        return None
    if value not in choices:
        check.bad(where, str(unknown(what, value, choices)))
        return None
    return value


def _source(check: Checker, where: tuple[str | int, ...], table: dict) -> str | None:
    """A mapping's or trigger's ``source``: a string, not one nothing ever publishes (``midi:cc1``)."""
    source = check.string((*where, "source"), table.get("source"))
    problem = source_problem(source) if source is not None else None
    if problem is not None:
        check.bad((*where, "source"), problem)
        return None
    return source


def _mappings(data: dict[str, Any], voices: dict[str, VoiceSpec], check: Checker) -> list[MappingSpec]:
    raw = data.get("mappings", [])
    if not isinstance(raw, list):
        check.bad(("mappings",), "must be an array of tables: [[mappings]]")
        return []
    out = []
    for i, table in enumerate(raw):
        where: tuple[str | int, ...] = ("mappings", i)
        table = check.table(where, table, MAPPING_KEYS)
        source = _source(check, where, table)
        target = _target((*where, "target"), table.get("target"), voices, check)
        if source is None or target is None:
            continue
        spec = MappingSpec(source, target[0], target[1], {k: v for k, v in table.items() if k in OPTIONS})
        try:
            spec.build()
        except MappingError as exc:
            for key, message in exc.problems:
                check.bad((*where, key) if key is not None else where, message)
            continue
        out.append(spec)
    return out


def _automation(data: dict[str, Any], voices: dict[str, VoiceSpec], check: Checker) -> list[AutomationSpec]:
    raw = data.get("automation", [])
    if not isinstance(raw, list):
        check.bad(("automation",), "must be an array of tables: [[automation]]")
        return []
    out: list[AutomationSpec] = []
    names: set[str] = set()
    for i, table in enumerate(raw):
        where: tuple[str | int, ...] = ("automation", i)
        table = check.table(where, table)
        kind = table.get("type", "ramp" if "points" in table else "lfo")
        if _choice(check, (*where, "type"), kind, "automation type", ("lfo", "ramp")) is None:
            continue
        check.table(where, table, LFO_KEYS if kind == "lfo" else RAMP_KEYS)
        name = check.string((*where, "name"), table.get("name"))
        if name is None:
            continue
        if name in names:
            check.bad((*where, "name"), f"duplicate automation name {name!r}")
            continue
        names.add(name)
        target = _target((*where, "target"), table["target"], voices, check) if "target" in table else None
        if "target" in table and target is None:
            continue
        if target is not None and PARAM_SPECS[target[1]].kind == "choice":
            check.bad((*where, "target"), f"{target[1]} takes names, not numbers: map it with [[mappings]]")
            continue
        options: dict[str, Any] = {}
        if kind == "lfo":
            if "shape" in table:
                options["shape"] = _choice(check, (*where, "shape"), table["shape"], "shape", SHAPES)
            for key in ("beats", "hz", "lo", "hi", "phase"):
                if key in table:
                    options[key] = check.number((*where, key), table[key])
            if "seed" in table:
                options["seed"] = check.number((*where, "seed"), table["seed"], 0, 2**31, integer=True)
        else:
            options["points"] = table.get("points", [])
            if not isinstance(options["points"], list) or not all(
                isinstance(p, list) and len(p) == 2 for p in options["points"]
            ):
                check.bad((*where, "points"), "must be a list of [beat, value] pairs")
                continue
            if "loop" in table:
                options["loop"] = check.number((*where, "loop"), table["loop"], 0)
            if "step" in table:
                options["step"] = table["step"] if isinstance(table["step"], bool) else None
                if options["step"] is None:
                    check.bad((*where, "step"), "must be true or false")
        if any(v is None for v in options.values()):
            continue
        spec = AutomationSpec(f"auto.{name}", kind, options, target)
        try:
            spec.build()
        except (LivernnError, ValueError, TypeError) as exc:
            check.bad(where, str(exc))
            continue
        out.append(spec)
    return out


def _scenes(data: dict[str, Any], voices: dict[str, VoiceSpec], models: dict[str, str],
            check: Checker) -> dict[str, Scene]:
    scenes: dict[str, Scene] = {}
    for name, table in check.table(("scenes",), data.get("scenes", {})).items():
        where = ("scenes", name)
        table = check.table(where, table, ("tempo", *voices))
        scene = Scene(name)
        if "tempo" in table:
            scene.tempo = check.number((*where, "tempo"), table["tempo"], 1, 999)
        for voice, values in table.items():
            if voice == "tempo" or voice not in voices:
                continue
            values = dict(check.table((*where, voice), values))
            model = values.pop("model", None)
            if model is not None and \
                    _choice(check, (*where, voice, "model"), model, "model", ("default", *models)) is not None:
                scene.models[voice] = model
            scene.params[voice] = _voice_params((*where, voice), values, check)
        scenes[name] = scene
    return scenes


def _triggers(data: dict[str, Any], voices: dict[str, VoiceSpec], models: dict[str, str],
              scenes: dict[str, Scene], check: Checker) -> list[TriggerSpec]:
    raw = data.get("triggers", [])
    if not isinstance(raw, list):
        check.bad(("triggers",), "must be an array of tables: [[triggers]]")
        return []
    names = {"scene": scenes, "voice": ("*", *voices), "model": ("default", *models), "parameter": PARAM_SPECS}
    out = []
    for i, table in enumerate(raw):
        where: tuple[str | int, ...] = ("triggers", i)
        table = check.table(where, table, TRIGGER_KEYS)
        source = _source(check, where, table)
        action = _choice(check, (*where, "action"), table.get("action"), "action", ACTIONS)
        if source is None or action is None:
            continue
        args, ok = _action_args(where, ACTIONS[action], table, names, check)
        condition = {k: table[k] for k in CONDITION_KEYS if k in table}
        equals = condition.get("equals")
        if equals is not None and (isinstance(equals, bool) or not isinstance(equals, int | float | str)):
            check.bad((*where, "equals"), f"must be a number or a string, got {kind_of(equals)}")
            ok = False
        for key in ("above", "below", "hysteresis"):
            if key in condition and check.number((*where, key), condition[key]) is None:
                ok = False
        if not ok:
            continue
        spec = TriggerSpec(source, action, args, condition)
        try:
            spec.build()
        except LivernnError as exc:
            check.bad(where, str(exc))
            continue
        out.append(spec)
    return out


def _action_args(where: tuple[str | int, ...], action: Action, table: dict[str, Any],
                 names: dict[str, Any], check: Checker) -> tuple[dict[str, Any], bool]:
    """A trigger's arguments for ``action``, each checked as the action table says: a
    name of the patch (``names``: its scenes, voices, models, the parameters) or of a fixed set, a number
    in bounds, a value of the named parameter. Returns (args, all fine)."""
    takes = tuple(arg.name for arg in action.args)
    for key in ARG_NAMES:
        if key in table and key not in takes:
            check.bad((*where, key),
                      f"does not apply to action {action.name!r}; it takes: {', '.join(takes) or 'nothing'}")
    args: dict[str, Any] = {}
    ok = True
    for arg in action.args:
        if arg.name not in table:
            if arg.required:
                check.bad(where, f"action {action.name!r} needs {arg.name!r}")
                ok = False
            continue
        value = args[arg.name] = table[arg.name]
        at = (*where, arg.name)
        if arg.names is not None:
            choices = arg.choices if arg.choices is not None else names[arg.names]
            ok &= _choice(check, at, value, arg.names, choices) is not None
        elif arg.bounds is not None:
            ok &= check.number(at, value, *arg.bounds) is not None
        elif arg.value_of is not None and ok:
            try:
                PARAM_SPECS[args[arg.value_of]].coerce(value)
            except LivernnError as exc:
                check.bad(at, str(exc))
                ok = False
    return args, ok


def _sections(data: dict[str, Any], folder: Path, check: Checker,
              voices: dict[str, VoiceSpec]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in OWNERS:
        if name not in data:
            continue
        table = check.table((name,), data[name])
        hook = section(name)
        if hook is not None:
            problems = hook.validate(table)
            for subpath, message in problems:
                check.bad((name, *subpath), message)
            if hook.voices is not None and not problems:
                for subpath, voice in hook.voices(table):
                    if voice not in voices:
                        check.bad((name, *subpath), str(unknown("voice", voice, list(voices))))
            if hook.files is not None:
                table = _section_files(name, table, hook.files(table), folder, check)
        out[name] = table
    return out


def _section_files(name: str, table: dict[str, Any], keys: tuple[str, ...], folder: Path,
                   check: Checker) -> dict[str, Any]:
    """A plug-in section's file names (relative to the patch) as checked absolute paths."""
    table = dict(table)
    for key in keys:
        resolved = check.inside((name, key), table[key], folder)
        if resolved is None:
            continue
        if not resolved.is_file():
            check.bad((name, key), f"file {table[key]!r} not found (looked for {resolved})")
            continue
        table[key] = str(resolved)
    return table

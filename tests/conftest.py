"""Shared fixtures: real peers (see tests/peers.py), repo paths, test data (tests/data/).

Every test that starts a peer (jackd, scsynth, FluidSynth, a MIDI probe, tmux, MediaPipe
on the hand pictures) is marked ``integration`` here, from its fixtures and its source,
so ``./run-tests.sh -m "not integration"`` is the quick loop; a test that starts a JACK,
scsynth or FluidSynth peer without the mark fails (see ``_guard``), so the split cannot
rot silently.

A test that runs a whole job end to end is ``integration`` too, for the same reason (the
quick loop stays well under a minute): it runs the ``livernn`` CLI or pytest in a
subprocess, trains a model, or reads a music21 corpus (END_TO_END_SOURCE), or it carries
an explicit ``@pytest.mark.integration`` (the 10,000-packet OSC storms).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import peers

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

# The user's own model and patch folders (livernn.library) never leak into a test run:
# names resolve to the shipped models and patches plus what a test puts here itself.
for _kind in ("MODELS", "PATCHES"):
    os.environ[f"LIVERNN_{_kind}"] = tempfile.mkdtemp(prefix=f"livernn-test-{_kind.lower()}-")

# Fixtures that are (or start) a real peer; a test using any of them, directly or through
# another fixture, is an integration test.
PEER_FIXTURES = {"jack", "scsynth", "fluidsynth", "midi_probe", "hands_dir", "soak_jack"}
# What a test's source (or its fixtures', or the module helpers either calls) names when it
# starts a peer itself: a peer program, or a process it talks to while that runs (Popen: a
# `livernn perform` fed OSC, a MIDI sender; torch.distributed.run: DDP workers; a browser; a
# private network namespace).
PEER_SOURCE = re.compile(r"start_jack|start_scsynth|start_fluidsynth|MidiProbe|\btmux\b|mediapipe"
                         r"|\bjackd\b|\bscsynth\b|\bfluidsynth\b|require\(\"(?:sox|fluidsynth)\"\)"
                         r"|subprocess\.Popen|torch\.distributed\.run|\bchromium\b|\bunshare\b")
# What a test's source names when it runs a whole job: a CLI or pytest in a subprocess, a
# training run (`train(...)`, `main(["train", ...])`), a music21 corpus parse.
END_TO_END_SOURCE = re.compile(r"subprocess\.run\(|\btrain\(|\[\"train\"|\bmusic21\b")
_current: list = [None]


def _sources(item: pytest.Item) -> str:
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info else ()):
        funcs.extend(d.func for d in defs if getattr(d, "baseid", "") != "")  # the test files' own
    module = getattr(item, "module", None)
    for func in list(funcs):  # one level of the module's own helpers (a `_perform(...)`)
        for name in getattr(getattr(func, "__code__", None), "co_names", ()):
            helper = getattr(module, name, None)
            if inspect.isfunction(helper) and helper.__module__ == getattr(module, "__name__", None):
                funcs.append(helper)
    text = []
    for func in funcs:
        try:
            text.append(inspect.getsource(func))
        except (OSError, TypeError):
            pass
    return "\n".join(text)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("integration"):
            continue
        source = _sources(item)
        if (PEER_FIXTURES & set(getattr(item, "fixturenames", ())) or PEER_SOURCE.search(source)
                or END_TO_END_SOURCE.search(source)):
            item.add_marker(pytest.mark.integration)


def pytest_runtest_protocol(item, nextitem):
    _current[0] = item


def _guard(start):
    """``start`` refused to an unmarked test: the quick loop must never start a peer."""

    @functools.wraps(start)
    def guarded(*args, **kwargs):
        item = _current[0]
        if item is not None and item.get_closest_marker("integration") is None:
            pytest.fail(f"{item.nodeid} starts a peer ({start.__name__}) but is not marked integration; "
                        "tests/conftest.py marks tests by PEER_FIXTURES and PEER_SOURCE")
        return start(*args, **kwargs)

    return guarded


for _name in ("start_jack", "start_scsynth", "start_fluidsynth"):
    setattr(peers, _name, _guard(getattr(peers, _name)))
MidiProbe, start_fluidsynth, start_jack, start_scsynth, stop_process = (
    peers.MidiProbe, peers.start_fluidsynth, peers.start_jack, peers.start_scsynth, peers.stop_process)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def hands_dir() -> Path:
    """thumb_up.jpg, hand_left.jpg, hand_left.mp4: see tests/data/README.md."""
    return DATA / "hands"


@pytest.fixture(scope="session")
def jack(tmp_path_factory):
    """One real JACK server (dummy driver, 48 kHz, 32-frame periods) for the session."""
    server = start_jack(tmp_path_factory.mktemp("jack"))
    yield server
    stop_process(server.proc)


@pytest.fixture(scope="session")
def scsynth(jack, tmp_path_factory):
    """A real scsynth on the session's JACK server, on a free UDP port."""
    server = start_scsynth(tmp_path_factory.mktemp("scsynth"), jack)
    yield server
    server.stop()


@pytest.fixture
def fluidsynth(jack, tmp_path):
    """A FluidSynth rendering to a raw file; call ``.stop()`` to get the file."""
    synth = start_fluidsynth(tmp_path, jack)
    yield synth
    stop_process(synth.proc)


@pytest.fixture
def midi_probe(jack, request):
    """A JACK MIDI input that records what arrives."""
    probe = MidiProbe(f"probe{abs(hash(request.node.nodeid)) % 100000}")
    yield probe
    probe.close()

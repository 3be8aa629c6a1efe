"""Shared fixtures: real peers (see tests/peers.py), repo paths, shared test data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers import (  # noqa: E402
    MidiProbe,
    start_fluidsynth,
    start_jack,
    start_scsynth,
    stop_process,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def hands_dir() -> Path:
    path = SHARED / "data" / "hands"
    if not path.is_dir():
        pytest.fail(f"test data missing: {path} (the shared/ folder beside the repository)")
    return path


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

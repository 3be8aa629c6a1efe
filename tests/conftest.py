"""Shared fixtures: real peers (see tests/peers.py), repo paths, test data (tests/data/).

Every test that starts a peer (jackd, scsynth, FluidSynth, a MIDI probe, tmux, MediaPipe
on the hand pictures) is marked ``integration`` here, from its fixtures and its source,
so ``./run-tests.sh -m "not integration"`` is the quick loop; a test that starts a JACK,
scsynth or FluidSynth peer without the mark fails (see ``_guard``), so the split cannot
rot silently.

A test that runs a whole job end to end is ``integration`` too, for the same reason (the
quick loop stays well under a minute): it runs the ``livernn`` CLI or pytest in a
subprocess, trains a model, or reads a music21 corpus (END_TO_END_SOURCE), or it carries
an explicit ``@pytest.mark.integration``, or it is one of the shows that play for seconds
in-process (SHOWS: a patch's OSC faders moving the notes, a fine-tune beside a playing
voice, a packet storm); a name there that its file no longer defines fails the run.
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
# Shows that play for seconds in-process (measured 1.2-8.5 s each at load 2): end to end.
SHOWS = {
    "tests/test_learn.py::test_a_failed_or_cancelled_learn_leaves_the_old_model_playing",
    "tests/test_learn.py::test_a_fine_tune_lowers_the_nll_of_what_was_played",
    "tests/test_listen_osc.py::test_accompany_with_passing_tones_from_the_api",
    "tests/test_perform.py::test_a_packet_storm_leaves_the_show_playing_and_every_parameter_in_range",
    "tests/test_perform.py::test_an_osc_fader_moves_temperature_and_the_notes_show_it",
    "tests/test_perform.py::test_a_pitch_range_fader_moves_the_received_pitches_into_the_range",
    "tests/test_web.py::test_perform_flags_override_the_patch_tables_one_page_and_one_oscquery",
    "tests/test_web.py::test_perform_prints_where_the_page_and_oscquery_are",
    "tests/test_patch_apply.py::test_a_model_newly_named_in_the_patch_is_swapped_in",
    "tests/test_hostile.py::test_remote_swaps_never_leave_the_models_folder",
    "tests/test_osc_in.py::test_ten_thousand_bad_packets_do_not_stop_the_server",
    "tests/test_notes.py::test_a_music21_bach_chorale_reads_as_four_part_chords",
    "tests/test_engine_params.py::test_voice_turns_model_seconds_into_beats_with_density_quantize_and_caps",
    "tests/test_threads.py::test_four_threads_setting_four_parameters_of_one_voice_lose_no_update",
    "tests/test_threads.py::test_runtime_writes_reach_the_voice_in_the_mappings_order",
    "tests/test_api.py::test_a_voice_plays_and_rerunning_the_line_retunes_it",
    "tests/test_api.py::test_tempo_record_status_and_quit",
    "tests/test_web.py::test_notes_and_status_come_from_the_playing_session",
    "tests/test_perform.py::test_remote_commands_change_scene_tempo_and_params",
    "tests/test_perform.py::test_feedback_sends_parameter_changes_back_to_the_controller",
    "tests/test_outputs_osc.py::test_superdirt_events_carry_tidal_keys",
    "tests/test_outputs_osc.py::test_generic_osc_note_template_in_timestamped_bundles",
    "tests/test_outputs_recorder.py::test_disk_error_mid_show_stops_the_recording_not_the_show",
    "tests/test_musicstats.py::test_cli_eval_generate_on_a_shipped_model",
    "tests/test_inputs_open_on_demand.py::test_an_osc_fader_moves_a_parameter_from_a_bare_prompt",
}
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
    files = {item.nodeid.split("::")[0] for item in items}
    names = {item.nodeid.split("[")[0] for item in items}
    stale = sorted(n for n in SHOWS if n.split("::")[0] in files and n not in names)
    if stale and not config.getoption("keyword"):
        raise pytest.UsageError(f"tests/conftest.py SHOWS names tests that do not exist: {', '.join(stale)}")
    for item in items:
        if item.get_closest_marker("integration"):
            continue
        if item.nodeid.split("[")[0] in SHOWS:
            item.add_marker(pytest.mark.integration)
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

"""Learning from the stage: ``learn(v)`` fine-tunes a voice's model on what was just played,
in a process of its own, and swaps the result in at a bar while the show plays on; and
``livernn train --init MODEL`` starts a training run from a model's weights.

Everything here is real: a running Session, the fine-tune process, the model files, JACK
and a probe in another process for the timing."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from livernn import api
from livernn.cli import main
from livernn.engine import Session
from livernn.engine.listen import attach, listen_options
from livernn.errors import LivernnError
from livernn.library import card_summary, models
from livernn.model import ModelConfig, default_model_path, load_model
from livernn.model.checkpoint import load_torch_model, read_model, write_model
from livernn.model.net import LossWeights, NoteLSTM
from livernn.notes import NOTE_DTYPE
from livernn.outputs import file_recorder, midi
from livernn.repl.status import Toolbar
from livernn.train.finetune import finetune, nll
from peers import wait_for
from test_data import tiny_corpus
from test_repl_engine import (
    ONSET_P99_BOUND_MS,
    Performer,
    QueueProbe,
    arrived_onsets,
    pair_onsets,
    play,
    quantiles,
    recorded_onsets,
    wait_until,
)

TINY = ModelConfig(hidden=32, layers=2, embed=8, time_bins=16, vel_bins=8)


def tiny_model(folder, cfg: ModelConfig = TINY, seed: int = 0):
    torch.manual_seed(seed)
    return write_model(folder / "tiny", cfg, NoteLSTM(cfg).state_dict(), {"name": "tiny"})


@pytest.fixture
def own_models(tmp_path, monkeypatch):
    """The user's models folder, this test's own (tuned models are written there)."""
    folder = tmp_path / "user-models"
    monkeypatch.setenv("LIVERNN_MODELS", str(folder))
    return folder


def playing(model, bpm: float = 240.0, density: float = 4.0) -> Session:
    """A started session whose voice ``lead`` plays ``model`` to no output (notes still counted)."""
    session = Session(bpm=bpm)
    session.add_voice("lead", model=model, outputs=[], density=density, seed=1)
    return session.start()


def test_a_fine_tune_lowers_the_nll_of_what_was_played(tmp_path):
    """The material is what the voice played and what its player played (listening), cut
    to the last bars, in model space; a few steps of ``finetune`` make it more likely."""
    path = tiny_model(tmp_path)
    session = playing(path, bpm=480)
    try:
        voice = session.voices["lead"]
        voice.transpose = 2
        player = attach(voice, listen_options("accompany"))
        wait_for(lambda: len(voice.played(32)) >= 40, 30, "40 notes played")
        for pitch in (40, 43, 47):  # a chord from the player's left hand
            player.note_on(pitch, 90)
        for pitch in (40, 43, 47):
            player.note_off(pitch)
        wait_for(lambda: voice.notes_heard >= 44, 10, "the player's notes heard")
        material = voice.played(32)
        assert len(voice.played(0.25)) < len(material)  # the last bars only
        assert material.dtype == NOTE_DTYPE
        pitches = list(material["pitch"])
        first = pitches.index(38)  # model space: the player's pitch less the voice's transpose
        assert pitches[first:first + 3] == [38, 41, 45]
        assert (material["step"][first + 1:first + 3] < TINY.chord_eps).all()  # heard as one chord
    finally:
        session.stop()
    model, _, _ = load_torch_model(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the learn process does: two threads on a busy 2-core machine crawl
    try:
        before = nll(model, [material], LossWeights(), "cpu")
        result = finetune(model, [material], seconds=30, steps=25)
        after = nll(model, [material], LossWeights(), "cpu")
    finally:
        torch.set_num_threads(threads)
    assert result["steps"] == 25 and result["before"] == pytest.approx(before)
    assert after == pytest.approx(result["after"]) and after < before - 0.5, (before, after)


@pytest.fixture
def probe(jack):
    probe = QueueProbe(f"lprobe{os.getpid() % 10000}{time.monotonic_ns() % 1000}")
    yield probe
    probe.close()


def test_the_show_keeps_time_while_a_voice_learns(probe, own_models, tmp_path, monkeypatch, capsys):
    """The shipped model plays through JACK to a probe in another process while it is
    fine-tuned on its last bars and swapped: every note the engine scheduled arrives, on
    time within the suite's bound, before, during and after; the tuned model (saved with a
    card saying what it learnt from) plays from a bar line and scores the material better."""
    monkeypatch.setenv("LIVERNN_MIDI_API", "jack")
    tap = file_recorder(tmp_path / "tap.mid")
    lines: list[str] = []
    session = Session(bpm=150)
    session.add_output("probe", midi(probe.client))
    session.add_tap(tap)
    voice = session.add_voice("lead", outputs=["probe"], density=2, seed=3)
    session.start()
    swaps: list[tuple] = []
    session.on("swap", lambda *event: swaps.append(event))
    try:
        wait_for(lambda: len(voice.played(4)) >= 32, 30, "32 notes played")
        job = session.learn(voice, bars=4, seconds=60, steps=10, report=lines.append)
        assert job.name == "bach-learn-1" and job.state in ("starting", "training")
        assert "learn lead -> bach-learn-1" in repr(api.Status(session.status()))
        state = job.wait(180)
        assert state == "done", job.message
        learnt = (job.started, job.ended)
        played = voice.notes_played
        wait_for(lambda: voice.notes_played >= played + 8, 20, "notes from the tuned model")
        voice.mute = True
        time.sleep(1.0)  # what was handed over plays out
    finally:
        session.stop()
    time.sleep(0.2)

    assert lines == [job.message] and lines[0].startswith("learn lead: bach-learn-1 playing (NLL")
    assert swaps and swaps[0][:2] == ("lead", "bach-learn-1") and swaps[0][2] == int(swaps[0][2])
    assert swaps[0][2] % 4 == 0  # at a bar line
    pairs = pair_onsets(recorded_onsets(tap.events), arrived_onsets(probe))  # none missing, none extra
    during = [arrival - t for t, arrival in pairs if learnt[0] <= t <= learnt[1]]
    whole = quantiles([arrival - t for t, arrival in pairs])
    figures = quantiles(during)
    with capsys.disabled():
        print(f"\nwhile learning ({learnt[1] - learnt[0]:.1f} s, {job.result['steps']} steps): |onset error| over "
              f"{figures['n']} notes: median {figures['median']:.3f} ms, p99 {figures['p99']:.3f} ms, "
              f"max {figures['max']:.3f} ms; whole run {whole['n']} notes, p99 {whole['p99']:.3f} ms")
    assert figures["n"] >= 30, figures
    assert figures["p99"] <= ONSET_P99_BOUND_MS and whole["p99"] <= ONSET_P99_BOUND_MS, (figures, whole)

    tuned, meta, folder = load_torch_model("bach-learn-1")  # by name: in the user's folder
    assert folder == own_models / "bach-learn-1"
    base, _, _ = load_torch_model(default_model_path())
    weights = LossWeights()
    assert nll(tuned, [job.material], weights, "cpu") < nll(base, [job.material], weights, "cpu")
    assert meta["base"] == "bach" and meta["tuned_on"].startswith(f"{len(job.material)} notes from voice 'lead'")
    assert "last 4 bars at 150 BPM" in meta["tuned_on"] and meta["finetune"]["steps"] == 10
    assert card_summary(folder) == f"bach fine-tuned on {meta['tuned_on']}"
    assert [m.name for m in models() if m.where == "user"] == ["bach-learn-1"]
    assert not [p for p in own_models.iterdir() if p.name.startswith(".")]  # no part-written folder left


def test_bad_asks_are_one_line_and_start_nothing(tmp_path, own_models):
    session = Session(bpm=240)
    voice = session.add_voice("lead", model=tiny_model(tmp_path), outputs=[], density=4, seed=1)
    with pytest.raises(LivernnError, match=r"^nothing played yet on voice 'lead'$"):
        session.learn(voice)
    api.use(session)
    try:
        with pytest.raises(LivernnError, match=r"^nothing played yet on voice 'lead'$"):
            api.learn("lead")
        with pytest.raises(LivernnError, match=r"no voice 'laed'; did you mean 'lead'\?"):
            api.learn("laed")
        with pytest.raises(LivernnError, match=r"^learn seconds must be a number in 1\.\.3600, got 0$"):
            api.learn("lead", seconds=0)
        with pytest.raises(LivernnError, match=r"^learn bars must be a number in 1\.\.1024, got -2$"):
            api.learn("lead", bars=-2)
    finally:
        api.use(None)
    assert session.learning == [] and not own_models.exists()


def test_a_failed_or_cancelled_learn_leaves_the_old_model_playing(tmp_path, own_models, monkeypatch, capsys):
    """Typed at the REPL: a fine-tune cancelled, then one whose model file is broken on disk
    (the process fails reading it); each says one line, and the old model plays on."""
    path = tiny_model(tmp_path)
    jobs = []

    async def script(me: Performer, session) -> None:
        await me.type(f"lead = voice('lead', model={str(path)!r}, out=[], density=4); tempo(240)")
        voice = session.voices["lead"]
        await wait_until(lambda: len(voice.played(32)) >= 20, 30, "20 notes played")
        attach(voice, listen_options("accompany")).note_on(60, 80)  # a player, heard

        await me.type("job = learn(lead, seconds=60)")
        job = me.repl.namespace["job"]
        jobs.append(job)
        assert " from voice 'lead' and the player, the last 32 bars at 240 BPM" in job.tuned_on
        await wait_until(lambda: job.state == "training", 20, "the fine-tune process to start")
        toolbar = Toolbar(session)
        assert " | learning lead " in toolbar()  # the prompt's status line
        toolbar.close()
        await me.type("learn(lead)")  # one at a time per voice
        await me.type("job.cancel()")
        assert job.state == "cancelled" and job._proc is not None and job._proc.poll() is not None
        await me.type("status()")

        (path / "model.safetensors").write_bytes(b"broken")  # the file the process would tune
        await me.type("job = learn(lead, seconds=60)")
        job = me.repl.namespace["job"]
        jobs.append(job)
        await wait_until(job.done, 60, "the fine-tune to fail")
        played = voice.notes_played
        await wait_until(lambda: voice.notes_played > played + 4, 10, "the old model playing on")
        assert voice.model.name == "tiny" and voice.epoch == 0 and voice.failed is None

    play(monkeypatch, tmp_path, script)
    out = capsys.readouterr().out
    assert [j.state for j in jobs] == ["cancelled", "failed"]
    assert "learn lead cancelled, tiny plays on\nTrue\n" in out
    assert "error: voice 'lead' is already learning (tiny-learn-1); cancel that first\n" in out
    assert "learn: learn lead cancelled, tiny plays on" in out  # status()
    failed = [line for line in out.splitlines() if line.startswith("learn lead failed")]
    assert len(failed) == 1 and failed[0].startswith("learn lead failed, tiny plays on: ")
    assert "model.safetensors" in failed[0] and "Traceback" not in out
    assert not own_models.exists() or not list(own_models.iterdir())  # nothing written


def test_train_init_starts_from_a_model_and_refuses_another_architecture(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path / "data", n_files=16, n_notes=40)
    cfg = ModelConfig(hidden=16, layers=1, embed=8, time_bins=16, vel_bins=8)
    init = tiny_model(tmp_path, cfg)
    common = ["--data", str(corpus), "--epochs", "1", "--threads", "1", "--workers", "1", "--seq-len", "16",
              "--batch-size", "16", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    out = tmp_path / "out"
    assert main(["train", "--out", str(out), "--init", str(init), "--lr", "1e-6", *common]) == 0
    _, meta, tuned, _ = read_model(out)
    _, _, start, _ = read_model(init)
    torch.manual_seed(1)
    fresh = NoteLSTM(cfg).state_dict()
    moved = max(float(np.abs(tuned[k] - start[k]).max()) for k in start)
    assert moved < 1e-3 < max(float(np.abs(fresh[k].numpy() - start[k]).max()) for k in start)
    assert meta["init"] == {"name": "tiny", "path": str(init)}
    assert load_model(out).config.hidden == 16

    capsys.readouterr()
    for flags, says in ((["--hidden", "32"], "has hidden = 16, the recipe asks for 32"),
                        (["--resume"], "--init and --resume"),
                        ([], "no such model")):
        target = tmp_path / f"refused{len(flags)}"
        model = str(init) if flags else str(tmp_path / "nowhere")
        assert main(["train", "--out", str(target), "--init", model, *flags, *common]) == 2
        err = capsys.readouterr().err
        assert err.startswith("livernn: error: ") and says in err and err.count("\n") == 1, err
        assert not target.exists()

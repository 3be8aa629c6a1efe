"""Output priors (`[train] prior_init`, `NoteLSTM.set_output_priors`): an untrained model starts
at the training split's context-free counts, not at a uniform guess."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livernn.data import find_midi_files, load_notes
from livernn.model.config import ModelConfig
from livernn.model.net import LossWeights, NoteLSTM
from livernn.train import load_recipe
from livernn.train.evaluate import class_log_priors, evaluate, references
from test_data import tiny_corpus

CFG = ModelConfig(hidden=32, layers=1, embed=8, time_bins=16, vel_bins=8)


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    folder = tiny_corpus(tmp_path_factory.mktemp("c"), n_files=8, n_notes=80)
    files = [p for split in find_midi_files(folder).values() for p in split]
    return [n for _, n in load_notes(files)[0]]


def test_an_untrained_model_with_priors_scores_the_counts(pieces):
    torch.manual_seed(0)
    plain, primed = NoteLSTM(CFG), NoteLSTM(CFG)
    primed.load_state_dict(plain.state_dict())
    primed.set_output_priors(class_log_priors(CFG, pieces))
    counts = references(CFG, pieces, pieces)
    before, after = evaluate(plain, pieces, LossWeights()), evaluate(primed, pieces, LossWeights())
    # uniform-ish before: about log(classes); after: within a few hundredths of the count (the
    # weights are small at init, not zero)
    assert before["pitch"] > math.log(128) - 0.1 and before["step"] > math.log(CFG.n_step) - 0.3
    for head in ("pitch", "step", "duration"):
        assert abs(after[head] - counts[f"unigram_{head}"]) < 0.05, (head, after[head], counts)
    assert after["velocity"] < before["velocity"] - 0.5
    bias = primed.pitch_head.bias.detach().numpy()
    assert abs(bias.mean()) < 1e-5  # centred: the softmax is the same, the logits stay small


def test_a_prior_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="pitch prior has"):
        NoteLSTM(CFG).set_output_priors({"pitch": np.zeros(12)})


def test_the_default_recipe_starts_from_priors_and_the_pinned_recipes_do_not():
    assert load_recipe(None).train.prior_init is True
    for name in ("bach", "folk"):  # retrained with the default recipe
        assert load_recipe(f"training/{name}.toml").train.prior_init is True, name
    for name in ("baseline", "original"):  # the seed's recipes, as the cards' runs were trained
        assert load_recipe(f"training/{name}.toml").train.prior_init is False, name


@pytest.mark.parametrize("prior_init", [True, False])
def test_training_starts_from_the_train_splits_counts(tmp_path, prior_init):
    """With a learning rate too small to move anything, one epoch leaves the model where
    training started it: at the training split's counts, or (prior_init = false) uniform."""
    folder = tiny_corpus(tmp_path / "c", n_files=16, n_notes=60)
    recipe = load_recipe(None, {"model.hidden": 16, "model.layers": 1, "model.embed": 8, "model.time_bins": 16,
                                "model.vel_bins": 8, "train.seq_len": 16, "train.batch_size": 16,
                                "train.threads": 1, "train.workers": 1, "train.epochs": 1, "train.lr": 1e-9,
                                "train.cache_dir": str(tmp_path / "cache"), "train.prior_init": prior_init})
    from livernn.train import train

    metrics = train(recipe, folder, tmp_path / "out", progress=False)
    val = metrics["val"]
    if prior_init:
        assert val["pitch"] < val["unigram_pitch"] + 0.5 < math.log(128)
    else:
        assert val["pitch"] > math.log(128) - 0.1

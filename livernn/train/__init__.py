"""Training: recipes, the loop (single process or DDP), evaluation, plots, resumable state."""

from livernn.train.config import Recipe, TrainConfig, load_recipe
from livernn.train.evaluate import evaluate, pitch_unigram, references, time_unigram, unigram_nll
from livernn.train.loop import pick_device, train

__all__ = ["Recipe", "TrainConfig", "evaluate", "load_recipe", "pick_device", "pitch_unigram",
           "references", "time_unigram", "train", "unigram_nll"]

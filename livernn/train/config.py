"""Training recipes: TOML files in ``training/`` -> one small dataclass, then CLI overrides.

A recipe has five tables, each mapping onto a dataclass: ``[model]`` (ModelConfig),
``[data]`` (DataConfig below), ``[train]`` (TrainConfig below), ``[loss]`` (LossWeights)
and ``[augment]`` (Augment).
Unknown keys are an error, so a typo in a recipe can't silently train the wrong thing.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from livernn.data.augment import Augment
from livernn.errors import LivernnError, kind_of
from livernn.model.config import ModelConfig
from livernn.model.net import LossWeights
from livernn.notes import TIME_UNITS


@dataclass
class DataConfig:
    # How a MIDI file's times become the model's: "beats" reads each note through the
    # file's own tempo map as beats at the model's ref_bpm (one beat = 0.5 s at 120 bpm),
    # which is how the engine plays them; "seconds" as the file plays. A file with one
    # tempo equal to ref_bpm (a file with no tempo event: 120 bpm, as performed recordings
    # usually are) reads the same either way, so performed MIDI keeps its expressive
    # timing; a corpus whose files carry their own tempos (music21's chorale exports)
    # lands on one grid in beats. A model records its unit in meta.recipe.data; one that
    # records none predates the option and was trained in seconds (training/README.md).
    time: str = "beats"


def model_time_unit(meta: dict) -> str:
    """The time unit a trained model's data was read in, from its meta (absent: "seconds",
    the run predates ``[data] time``)."""
    recipe = meta.get("recipe") if isinstance(meta, dict) else None
    table = recipe.get("data") if isinstance(recipe, dict) else None
    time = table.get("time", "seconds") if isinstance(table, dict) else "seconds"
    if time not in TIME_UNITS:
        raise LivernnError(f"the model's meta.recipe.data.time is {time!r}: must be \"beats\" or \"seconds\"")
    return time


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 32
    seq_len: int = 64
    stride: int = 0  # between window starts; 0 = seq_len // 2
    # Batches of similar-length windows, each cut after its longest (data.windows.length_batches):
    # a batch is drawn from this many batches' worth of shuffled windows; 1 = plain random batches.
    length_pool: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    beta2: float = 0.99  # Adam's second-moment decay; 0.999 lets early large gradients linger
    warmup_steps: int = 100
    min_lr_frac: float = 0.05  # cosine decays to lr * this
    clip: float = 1.0
    patience: int = 6  # epochs without a better val loss before stopping
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | mps
    amp: str = "auto"  # auto (bf16/fp16 on CUDA) | off
    threads: int = 0  # torch CPU threads (per process); 0 = torch's default, or cores / processes
    # Training processes on a CPU (DDP, each an equal share of the batch; train.spawn): 0 = one
    # per usable core when threads is 0 (at least 8 windows each), 1 = this process only.
    processes: int = 0
    workers: int = 0  # MIDI parsing processes; 0 = one per core
    max_files: int = 0  # 0 = all
    time_limit_min: float = 0.0  # stop after the epoch that crosses this (0 = none)
    epoch_checkpoints: bool = True
    cache_dir: str = ""
    group_versions: bool = True  # keep versions of one piece in one split (data.split.split_files)
    # The timing inputs (log-compressed step and duration, ~0..1) differ by only 0.05-0.1
    # between musically different values (an eighth vs a dotted eighth), while the pitch
    # embedding's 64 unit-variance numbers dominate the first layer; with its small init and
    # Adam's per-weight step of ~lr, the LSTM then takes thousands of steps before it can
    # tell the previous note's duration apart, and the step head stays at its context-free
    # count. Training reads the features times this gain (folded back into the weights in
    # the saved file: the model format and the generator are unchanged), which gives those
    # first-layer weights a gain-times larger init and learning rate. Measured on music21
    # folk tunes (training/README.md): 10 takes the step NLL from the context-free count to
    # 0.75 x it at equal epochs, but slows pitch learning, so it is opt-in for now.
    feature_gain: float = 1.0
    # Start each categorical head at the training split's class log-frequencies (its bias),
    # not at a uniform guess: a short run or a small corpus then spends its updates on the
    # context (training/README.md, "Output priors"). The seed-style baselines and the shipped
    # recipes trained before it set false, as they were trained.
    prior_init: bool = True


@dataclass
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    augment: Augment = field(default_factory=Augment)

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "data": asdict(self.data), "train": asdict(self.train),
                "loss": self.loss.as_dict(), "augment": asdict(self.augment)}


def _fill(cls, table: dict, where: str):
    if not isinstance(table, dict):
        raise LivernnError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}
    defaults = cls()
    for key, value in table.items():
        if key not in known:
            raise LivernnError(f"{where}: unknown key {key!r} (allowed: {', '.join(known)})")
        _check_type(where, key, value, getattr(defaults, key))
    try:
        return cls(**table)
    except TypeError as exc:
        raise LivernnError(f"{where}: {exc}") from None


def _check_type(where: str, key: str, value, default) -> None:
    """A recipe value of the default's type (an int where a float goes), finite: a string
    or NaN for ``lr`` would otherwise fail deep in training, or train on NaN."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise LivernnError(f"{where} {key} must be a finite number, got {value!r}")
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        return  # lists and the like: the dataclass checks them
    if not ok:
        raise LivernnError(f"{where} {key} must be {kind_of(default)}, got {kind_of(value)} ({value!r})")


def load_recipe(path: str | Path | None, overrides: dict | None = None) -> Recipe:
    """A Recipe from a TOML file (or defaults), with ``{"section.key": value}`` overrides."""
    doc: dict = {}
    if path is not None:
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LivernnError(f"{p}: no such training recipe") from None
        except UnicodeDecodeError:
            raise LivernnError(f"{p}: not a text file (a recipe is TOML, e.g. training/bach.toml)") from None
        except OSError as exc:
            raise LivernnError(f"{p}: cannot read the recipe ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise LivernnError(f"{p}: not valid TOML ({exc})") from None
        extra = set(doc) - {"model", "data", "train", "loss", "augment"}
        if extra:
            raise LivernnError(f"{p}: unknown tables {sorted(extra)} (allowed: model, data, train, loss, augment)")
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        doc.setdefault(section, {})[key] = value
    recipe = Recipe(
        model=_fill(ModelConfig, doc.get("model", {}), "[model]"),
        data=_fill(DataConfig, doc.get("data", {}), "[data]"),
        train=_fill(TrainConfig, doc.get("train", {}), "[train]"),
        loss=_fill(LossWeights, doc.get("loss", {}), "[loss]"),
        augment=_fill(Augment, doc.get("augment", {}), "[augment]"),
    )
    recipe.model.validated()
    if recipe.data.time not in TIME_UNITS:
        raise LivernnError(f"[data] time must be \"beats\" or \"seconds\", got {recipe.data.time!r}")
    t = recipe.train
    if t.epochs < 1 or t.batch_size < 1 or t.seq_len < 2 or t.lr <= 0:
        raise LivernnError("[train] needs epochs >= 1, batch_size >= 1, seq_len >= 2, lr > 0")
    if t.processes < 0 or t.threads < 0:
        raise LivernnError(f"[train] processes and threads must be >= 0, got {t.processes} and {t.threads}")
    if t.device not in ("auto", "cpu", "cuda", "mps"):
        raise LivernnError(f"device must be auto, cpu, cuda or mps, got {t.device!r}")
    return recipe

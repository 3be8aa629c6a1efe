"""Per-note scores of a model over whole pieces, and the context-free references.

Evaluation runs each piece from its first note to its last in one pass (no windows, no
augmentation), so every note after the first is predicted from its entire history:
the per-note NLL a performer's generator actually faces.

What ``evaluate`` reports (all per note, over every note after each piece's first):

- ``pitch``, ``step``, ``duration``, ``velocity``: each head's loss, NLL in nats for
  categorical heads. A model with ``pitch_given_step`` scores its pitch *given the true
  next step bin*, which a model without that conditioning is never told.
- ``pitch_marginal``: the pitch NLL with the step summed out,
  -log sum_s p(s | history) p(pitch | history, s): the figure to compare across models
  (equal to ``pitch`` for a model whose pitch head does not see the step).
- ``step_mae_ms``, ``duration_mae_ms``: mean absolute error of a point prediction, the
  median of each categorical head (within a bin log-uniform, as the generator samples, or
  the bin's stored value when the model has ``step_values``/``dur_values``: what it
  plays) or the regression head's output. Left out: each piece's first ``MAE_SKIP`` (24)
  predictions, the notes a windowed model of sequence length 25 has no full context for,
  so the same notes are scored for every model.

The context-free references (``pitch_unigram``/``unigram_nll``, ``time_unigram``/
``time_unigram_nll``) are counts on the training split with add-one smoothing: a model
whose head is no better than its count has learned nothing from the context.

``generated_music`` (``livernn eval --generate N``) samples pieces from the model and
measures them beside the held-out pieces with ``train.musicstats`` (pitch-class entropy,
scale consistency, pitch range, chord rate, onsets on the sixteenth grid, groove
consistency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from livernn.data.windows import pad_pieces
from livernn.model.config import ModelConfig
from livernn.model.net import HEADS, LossWeights, NoteLSTM, encode_inputs, encode_targets, head_losses, total_loss
from livernn.train.musicstats import GRID_BEATS, GRID_TOLERANCE, corpus_stats

if TYPE_CHECKING:
    from livernn.model.generator import LoadedModel

MAE_SKIP = 24
GEN_TEMPERATURES = (0.8, 1.0, 1.5)


def _medians(cfg: ModelConfig, logits: torch.Tensor, log_edges: torch.Tensor, step: bool) -> torch.Tensor:
    """Median seconds of categorical step (zero bin first) or duration logits, (N, bins) -> (N,)."""
    probs = torch.softmax(logits.double(), -1)
    cdf = probs.cumsum(-1)
    k = torch.searchsorted(cdf, torch.full((len(cdf), 1), 0.5, dtype=cdf.dtype))[:, 0].clamp_max(cdf.shape[1] - 1)
    below = torch.where(k > 0, cdf.gather(1, (k - 1).clamp_min(0)[:, None])[:, 0], torch.zeros_like(k, dtype=cdf.dtype))
    frac = ((0.5 - below) / probs.gather(1, k[:, None])[:, 0].clamp_min(1e-300)).clamp(0, 1)
    idx = k - 1 if step else k  # step bin k >= 1 spans edges[k-1..k]; duration bin k spans edges[k..k+1]
    lo = log_edges[idx.clamp(0, len(log_edges) - 2)]
    hi = log_edges[(idx + 1).clamp(1, len(log_edges) - 1)]
    seconds = torch.exp(lo + frac * (hi - lo))
    if step:
        seconds = torch.where(k == 0, torch.zeros_like(seconds), seconds)
    values = cfg.step_values if step else cfg.dur_values
    if values:  # the generator plays the bin's stored value
        seconds = torch.tensor(values, dtype=seconds.dtype, device=seconds.device)[k]
    return seconds


@torch.no_grad()
def evaluate(model: NoteLSTM, pieces: list[np.ndarray], weights: LossWeights,
             device: torch.device | str = "cpu", batch_notes: int = 65536, detail: bool = True) -> dict[str, float]:
    """Per-note loss of each head, the total and (``detail``) the step-marginal pitch NLL and timing MAEs.

    ``detail=False`` (the per-epoch validation) leaves out the marginal, which costs one
    pitch-head pass per step bin, and the MAEs.
    """
    was_training = model.training
    model.eval()
    cfg = model.cfg
    log_edges = torch.log(torch.tensor(cfg.time_edges(), dtype=torch.float64))
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    sums = {h: 0.0 for h in HEADS}
    marginal, count = 0.0, 0
    abs_err = {"step": 0.0, "duration": 0.0}
    mae_count = 0
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * len(pieces[order[j]]) <= batch_notes:
            j += 1
        group = [pieces[k] for k in order[i:j]]
        b = {k: v.to(device) for k, v in pad_pieces(group).items()}
        p, s, d, v, valid = b["pitch"], b["step"], b["duration"], b["velocity"], b["mask"][:, 1:]
        pitch_in, feats = encode_inputs(cfg, p[:, :-1], s[:, :-1], d[:, :-1], v[:, :-1])
        targets = encode_targets(cfg, s[:, 1:], d[:, 1:], v[:, 1:], model.edges)
        out, _ = model.lstm(model.features(pitch_in, feats))
        logits = model.heads(out, targets["step"] if cfg.categorical else None)
        losses = head_losses(cfg, logits, p[:, 1:], targets, valid)
        n = int(valid.sum())
        for h in HEADS:
            sums[h] += float(losses[h]) * n
        count += n
        if detail:
            step_logits = logits["step"][valid] if cfg.categorical else None
            marginal -= float(model.pitch_marginal_logprob(out[valid], step_logits, p[:, 1:][valid]).sum())
        late = valid.clone()
        late[:, :MAE_SKIP] = False
        if detail and late.any():
            for head, true in (("step", s[:, 1:][late]), ("duration", d[:, 1:][late])):
                if cfg.categorical:
                    pred = _medians(cfg, logits[head][late], log_edges.to(device), head == "step")
                else:
                    pred = logits[head][late].double().clamp_min(0.0)
                abs_err[head] += float((pred - true.double()).abs().sum())
            mae_count += int(late.sum())
        i = j
    model.train(was_training)
    result = {h: sums[h] / max(count, 1) for h in HEADS}
    result["total"] = float(total_loss({h: torch.tensor(result[h]) for h in HEADS}, weights))
    result["notes"] = count
    if not detail:
        return result
    result["pitch_marginal"] = marginal / max(count, 1)
    for head in ("step", "duration"):
        result[f"{head}_mae_ms"] = 1000.0 * abs_err[head] / mae_count if mae_count else float("nan")
    result["mae_notes"] = mae_count
    return result


def pitch_unigram(pieces: list[np.ndarray]) -> np.ndarray:
    """Pitch probabilities of ``pieces`` with add-one smoothing (never zero)."""
    counts = np.ones(128)
    for p in pieces:
        counts += np.bincount(p["pitch"].astype(np.int64), minlength=128)[:128]
    return counts / counts.sum()


def unigram_nll(probs: np.ndarray, pieces: list[np.ndarray]) -> float:
    """Per-note pitch NLL of ``pieces`` (notes after each piece's first) under ``probs``."""
    pitches = np.concatenate([p["pitch"][1:] for p in pieces]).astype(np.int64)
    return float(-np.log(probs[pitches]).mean())


def time_classes(cfg: ModelConfig, pieces: list[np.ndarray], head: str) -> np.ndarray:
    """The step or duration class of every note after each piece's first (the model's own bins)."""
    notes = np.concatenate([p[1:] for p in pieces])
    t = {k: torch.from_numpy(notes[k].astype(np.float32 if k != "velocity" else np.int64))
         for k in ("step", "duration", "velocity")}
    edges = torch.tensor(cfg.time_edges(), dtype=torch.float32)
    return encode_targets(cfg, t["step"], t["duration"], t["velocity"], edges)[head].numpy()


def time_unigram(cfg: ModelConfig, pieces: list[np.ndarray], head: str = "step") -> np.ndarray:
    """Context-free class probabilities of a categorical step/duration head (or the velocity
    head): add-one counts."""
    n = {"step": cfg.n_step, "duration": cfg.n_dur, "velocity": cfg.vel_bins}[head]
    counts = np.ones(n) + np.bincount(time_classes(cfg, pieces, head), minlength=n)[:n]
    return counts / counts.sum()


def class_log_priors(cfg: ModelConfig, pieces: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Each categorical head's context-free log-probabilities on ``pieces`` (add-one counts,
    as ``references`` scores them): what a model predicts before it has learned any context."""
    heads = ("step", "duration", "velocity") if cfg.categorical else ("velocity",)
    return {"pitch": np.log(pitch_unigram(pieces)), **{h: np.log(time_unigram(cfg, pieces, h)) for h in heads}}


def time_unigram_nll(cfg: ModelConfig, probs: np.ndarray, pieces: list[np.ndarray], head: str = "step") -> float:
    """Per-note NLL of ``pieces``' step/duration classes under the context-free ``probs``."""
    return float(-np.log(probs[time_classes(cfg, pieces, head)]).mean())


def references(cfg: ModelConfig, train: list[np.ndarray], pieces: list[np.ndarray]) -> dict[str, float]:
    """The context-free figures beside a model's: pitch always, step and duration for categorical heads."""
    out = {"unigram_pitch": unigram_nll(pitch_unigram(train), pieces)}
    if cfg.categorical:
        for head in ("step", "duration"):
            out[f"unigram_{head}"] = time_unigram_nll(cfg, time_unigram(cfg, train, head), pieces, head)
    return out


def generated_lengths(held_out: list[np.ndarray], n: int) -> list[int]:
    """Lengths of the pieces ``n`` generated notes are cut into: the held-out pieces' own
    lengths in their order (repeated if need be), the last cut to make ``n``, so length-bound
    statistics (pitch range, groove consistency) compare like with like."""
    own = [len(p) for p in held_out if len(p)] or [n]
    lengths: list[int] = []
    while sum(lengths) < n:
        lengths.append(min(own[len(lengths) % len(own)], n - sum(lengths)))
    return lengths


def generated_music(model: LoadedModel, held_out: list[np.ndarray], n: int,
                    temperatures: Sequence[float] = GEN_TEMPERATURES, beats_per_bar: int = 4,
                    timing_temperature: float = 1.0) -> dict[str, Any]:
    """Statistics of ``n`` sampled notes at each temperature beside those of ``held_out``.

    ``model`` is a ``LoadedModel`` (``livernn.model.load_model``). The notes are sampled as
    ``generated_lengths`` pieces, piece k from a fresh generator with seed k (the same seeds
    at every temperature), from the model's start note, with default sampler settings but
    the temperatures, in seconds at the model's ``ref_bpm``. A temperature is the pitch
    temperature, as ``livernn generate --temperature``; steps and durations are sampled at
    ``timing_temperature``. Keys: ``notes``, ``pieces``, ``piece_notes``, ``bpm``,
    ``beats_per_bar``, ``timing_temperature``, ``grid_beats``, ``grid_tolerance_beats``,
    ``held_out`` (``musicstats.corpus_stats`` of the held-out pieces) and ``temperatures``
    ("0.8" -> ``corpus_stats`` of the sampled pieces).
    """
    from livernn.model import SamplerParams
    from livernn.model.generator import generate_notes

    lengths = generated_lengths(held_out, n)
    bpm = float(model.ref_bpm)
    result: dict[str, Any] = {
        "notes": n, "pieces": len(lengths), "piece_notes": lengths, "bpm": bpm, "beats_per_bar": beats_per_bar,
        "timing_temperature": float(timing_temperature), "grid_beats": GRID_BEATS,
        "grid_tolerance_beats": GRID_TOLERANCE, "held_out": corpus_stats(held_out, bpm, beats_per_bar),
        "temperatures": {}}
    for temp in temperatures:
        params = SamplerParams(temperature=float(temp), timing_temperature=float(timing_temperature))
        pieces = [generate_notes(model, k, params, seed=seed) for seed, k in enumerate(lengths)]
        result["temperatures"][f"{float(temp):.1f}"] = corpus_stats(pieces, bpm, beats_per_bar)
    return result

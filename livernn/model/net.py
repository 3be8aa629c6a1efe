"""NoteLSTM: the training-time network (torch), its target encoding and its loss.

Reads top to bottom: encode a batch of notes into inputs and targets, run the stacked
LSTM, apply the heads, score them. Inference does not use this module's forward pass;
``livernn.model.generator`` runs the same weights through a hand-fused numpy cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from livernn.model.config import N_PITCHES, ModelConfig

HEADS = ("pitch", "step", "duration", "velocity")


@dataclass
class LossWeights:
    """Per-head weights of the training loss.

    Defaults are all 1: with categorical heads each term is nats of one factor of the
    joint note likelihood, so the weighted total *is* the note's NLL and no head is
    traded against another. The original used pitch 0.05 (later 0.5) only because its
    cross-entropy and its MSE timing losses were on unrelated scales.
    """

    pitch: float = 1.0
    step: float = 1.0
    duration: float = 1.0
    velocity: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return {h: float(getattr(self, h)) for h in HEADS}


def time_feature_t(x: torch.Tensor) -> torch.Tensor:
    """A time as the network reads it (see ``config``); ``generator._feature`` is its twin."""
    return torch.log1p(x.clamp_min(0.0) / 0.01) / 6.0


def time_bins_t(cfg: ModelConfig, step, duration, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The step class (0: a chord note, k >= 1: time bin k - 1) and duration class of each time."""
    inner = edges[1:-1].contiguous()
    sbin = torch.bucketize(step.contiguous(), inner, right=True) + 1
    sbin = torch.where(step < cfg.chord_eps, torch.zeros_like(sbin), sbin)
    return sbin, torch.bucketize(duration.contiguous(), inner, right=True)


def encode_inputs(cfg: ModelConfig, pitch, step, duration, velocity,
                  edges: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(pitch indices, features) the LSTM reads for each note.

    The features are ``[step, duration, velocity / 127, chord flag]``; step and duration
    are the log-compressed seconds, or with ``cfg.time_embed`` their bin indices (as
    floats, exact), which ``NoteLSTM.features`` embeds. ``edges``: the model's bin edges
    (``NoteLSTM.edges``), else made from ``cfg``.
    """
    if cfg.time_embed:
        if edges is None:
            edges = torch.tensor(cfg.time_edges(), dtype=torch.float32, device=step.device)
        sbin, dbin = time_bins_t(cfg, step, duration, edges)
        times = [sbin.float(), dbin.float()]
    else:
        times = [time_feature_t(step), time_feature_t(duration)]
    feats = torch.stack([*times, velocity.float() / 127.0, (step < cfg.chord_eps).float()], dim=-1)
    return pitch.long().clamp(0, N_PITCHES - 1), feats


def encode_targets(cfg: ModelConfig, step, duration, velocity, edges: torch.Tensor) -> dict[str, torch.Tensor]:
    """Class indices (categorical heads) or raw seconds (regression heads) to predict."""
    out = {"velocity": (velocity.long().clamp(0, 127) * cfg.vel_bins) // 128}
    if cfg.categorical:
        out["step"], out["duration"] = time_bins_t(cfg, step, duration, edges)
    else:
        out["step"], out["duration"] = step.float(), duration.float()
    return out


class NoteLSTM(nn.Module):
    # Declared here so that attribute reads are typed (nn.Module.__getattr__ says Tensor | Module).
    cfg: ModelConfig
    edges: torch.Tensor  # buffer: the time-bin edges

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.embed = nn.Embedding(N_PITCHES, cfg.embed) if cfg.embed else None
        te = cfg.time_embed
        self.step_embed = nn.Embedding(cfg.n_step, te) if te else None
        self.dur_embed = nn.Embedding(cfg.n_dur, te) if te else None
        for table in (self.step_embed, self.dur_embed):
            if table is not None:  # the two together as loud as one unit-variance number
                nn.init.normal_(table.weight, std=(2 * te) ** -0.5)
        self.lstm = nn.LSTM(cfg.input_size, h, cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.step_head = nn.Linear(h, cfg.n_step)
        self.dur_head = nn.Linear(h, cfg.n_dur)
        self.vel_head = nn.Linear(h, cfg.vel_bins)
        self.pitch_head = nn.Linear(h, N_PITCHES)
        # Pitch given the (teacher-forced or sampled) step bin: tanh(h + E[bin]).
        self.step_to_pitch = (nn.Embedding(cfg.n_step, h)
                              if cfg.categorical and cfg.pitch_given_step else None)
        if self.step_to_pitch is not None:  # start as tanh(h): don't drown h in random offsets
            nn.init.zeros_(self.step_to_pitch.weight)
        self.register_buffer("edges", torch.tensor(cfg.time_edges(), dtype=torch.float32),
                             persistent=False)

    @torch.no_grad()
    def set_output_priors(self, log_priors: dict[str, np.ndarray]) -> None:
        """Start each named categorical head at its classes' log-frequencies (its bias; the
        weights stay small at init), so an untrained model predicts the context-free count
        instead of a uniform guess over 128 pitches and ~97 time bins, and training spends
        its first updates on the context rather than on learning which pitches are common
        (training/README.md, "Output priors")."""
        heads = {"pitch": self.pitch_head, "step": self.step_head, "duration": self.dur_head,
                 "velocity": self.vel_head}
        for name, values in log_priors.items():
            bias = heads[name].bias
            prior = torch.as_tensor(np.asarray(values), dtype=bias.dtype)
            if prior.shape != bias.shape:
                raise ValueError(f"{name} prior has {tuple(prior.shape)} classes, the head {tuple(bias.shape)}")
            bias.copy_(prior - prior.mean())

    # Training-only reparametrisation of the first layer's weights on the timing features:
    # the network reads ``feats * feature_gain`` and ``export_state`` folds the gain back into
    # ``lstm.weight_ih_l0``, so a model file (and the generator) always sees gain 1. See
    # ``TrainConfig.feature_gain`` for why.
    feature_gain: float = 1.0

    def features(self, pitch: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """The first layer's input: ``[pitch embedding (or pitch / 127); step and duration
        bin embeddings (with time_embed); the continuous features * feature_gain]``."""
        first = self.embed(pitch) if self.embed is not None else pitch.unsqueeze(-1).float() / 127.0
        parts = [first]
        if self.step_embed is not None and self.dur_embed is not None:
            parts += [self.step_embed(feats[..., 0].long()), self.dur_embed(feats[..., 1].long())]
            feats = feats[..., 2:]
        if self.feature_gain != 1.0:
            feats = feats * self.feature_gain
        return torch.cat([*parts, feats], dim=-1)

    def export_state(self) -> dict[str, torch.Tensor]:
        """The state dict a model file holds: the feature gain folded into the weights."""
        state = dict(self.state_dict())
        if self.feature_gain != 1.0:
            w = state["lstm.weight_ih_l0"].detach().clone()
            w[:, -self.cfg.n_continuous:] *= self.feature_gain
            state["lstm.weight_ih_l0"] = w
        return state

    def import_state(self, state: dict) -> None:
        """Load a model file's weights (gain 1) into this network with its feature gain."""
        state = {k: torch.as_tensor(v) for k, v in state.items()}
        if self.feature_gain != 1.0:
            w = state["lstm.weight_ih_l0"].clone()
            w[:, -self.cfg.n_continuous:] /= self.feature_gain
            state["lstm.weight_ih_l0"] = w
        self.load_state_dict(state)

    def forward(self, pitch, feats, step_target=None, state=None, time_major: bool = False):
        """Logits (or regression outputs) for the note after each input note.

        ``time_major``: logits (and ``step_target``) are (time, batch, ...) instead of
        (batch, time, ...). The LSTM (oneDNN on CPU) hands back a batch-first view of a
        time-major array, so time-major heads read it as it lies in memory, where
        batch-first ones copy it for every head and every gradient (training does this).
        """
        out, state = self.lstm(self.features(pitch, feats), state)
        if time_major:
            out = out.transpose(0, 1)
        return self.heads(self.drop(out), step_target), state

    def heads(self, out: torch.Tensor, step_target=None) -> dict[str, torch.Tensor]:
        """The heads on the LSTM's (dropped-out) top layer ``out``.

        Step, duration and velocity are one matrix product (their weights stacked: one pass
        over ``out`` forwards and backwards instead of three), split into three views.
        """
        heads = (self.step_head, self.dur_head, self.vel_head)
        fused = F.linear(out, torch.cat([h.weight for h in heads]), torch.cat([h.bias for h in heads]))
        step, dur, vel = fused.split([h.out_features for h in heads], dim=-1)
        logits = {"step": step, "duration": dur, "velocity": vel}
        logits["pitch"] = self.pitch_logits(out, step_target)
        if not self.cfg.categorical:
            logits["step"], logits["duration"] = logits["step"].squeeze(-1), logits["duration"].squeeze(-1)
        return logits

    def pitch_logits(self, out: torch.Tensor, step_bin=None) -> torch.Tensor:
        """Pitch logits from ``out``; given the step bin when the model conditions on it."""
        if self.step_to_pitch is not None:
            return self.pitch_head(torch.tanh(out + self.step_to_pitch(step_bin)))
        return self.pitch_head(out)

    def pitch_marginal_logprob(self, out: torch.Tensor, step_logits: torch.Tensor | None,
                               pitch: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """log p(pitch | history) with the next step summed out, for N positions.

        ``out`` (N, hidden), ``step_logits`` (N, n_step), ``pitch`` (N,). For a model whose
        pitch head sees the step bin this is log sum_s p(s | history) p(pitch | history, s),
        the figure comparable with a model that does not condition on the step; for any
        other model it is the pitch head's own log-probability (``step_logits`` may be None).
        """
        if self.step_to_pitch is None:
            return torch.log_softmax(self.pitch_head(out).float(), -1).gather(-1, pitch[:, None])[:, 0]
        assert step_logits is not None  # step_to_pitch exists only for a categorical step head
        log_ps = torch.log_softmax(step_logits.float(), -1)
        table = self.step_to_pitch.weight  # (n_step, hidden)
        parts = []
        for i in range(0, len(out), chunk):
            o, p = out[i:i + chunk], pitch[i:i + chunk]
            lp = torch.log_softmax(self.pitch_head(torch.tanh(o[:, None, :] + table[None])).float(), -1)
            lp = lp.gather(-1, p[:, None, None].expand(-1, table.shape[0], 1))[..., 0]  # (n, n_step)
            parts.append(torch.logsumexp(lp + log_ps[i:i + chunk], -1))
        return torch.cat(parts) if parts else out.new_zeros(0)


def head_losses(cfg: ModelConfig, logits: dict, pitch_target, targets: dict, mask) -> dict[str, torch.Tensor]:
    """Mean per-note loss of each head over the masked positions.

    Categorical heads give NLL in nats. Regression heads give the original's MSE with
    positive pressure (10 x mean of the negative part), which is not an NLL.
    """
    m = mask.float()
    denom = m.sum().clamp_min(1.0)

    def ce(lg, tgt):
        return (F.cross_entropy(lg.float().flatten(0, 1), tgt.flatten(), reduction="none")
                * m.flatten()).sum() / denom

    losses = {"pitch": ce(logits["pitch"], pitch_target.long()),
              "velocity": ce(logits["velocity"], targets["velocity"])}
    for head in ("step", "duration"):
        if cfg.categorical:
            losses[head] = ce(logits[head], targets[head])
        else:
            pred = logits[head].float()
            mse = ((pred - targets[head]) ** 2 * m).sum() / denom
            losses[head] = mse + 10.0 * (F.relu(-pred) * m).sum() / denom
    return losses


def model_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-head losses for a batch of windows: note t predicts note t + 1.

    ``model`` is a NoteLSTM or a DistributedDataParallel wrapping one (called, so that
    gradients are synchronised).
    """
    core = getattr(model, "module", model)
    assert isinstance(core, NoteLSTM)
    cfg = core.cfg
    p, s, d, v, valid = batch["pitch"], batch["step"], batch["duration"], batch["velocity"], batch["mask"]
    pitch_in, feats = encode_inputs(cfg, p[:, :-1], s[:, :-1], d[:, :-1], v[:, :-1], core.edges)
    # Targets time-major, like the LSTM's output (see NoteLSTM.forward's time_major).
    targets = encode_targets(cfg, s[:, 1:].t(), d[:, 1:].t(), v[:, 1:].t(), core.edges)
    step_bin = targets["step"] if cfg.categorical else None
    logits, _ = model(pitch_in, feats, step_bin, time_major=True)
    return head_losses(cfg, logits, p[:, 1:].t(), targets, valid[:, 1:].t())


def total_loss(losses: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    w = weights.as_dict()
    total = w[HEADS[0]] * losses[HEADS[0]]
    for h in HEADS[1:]:
        total = total + w[h] * losses[h]
    return total

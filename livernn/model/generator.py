"""The real-time path: a loaded model and its stateful, hand-fused numpy LSTM step.

Why numpy and not ``nn.LSTM``: one note is a batch of one, where torch's per-call
dispatch costs more than the arithmetic. Here the first layer's input projection of the
pitch embedding is folded into a 128-row table (one row lookup instead of a matvec),
each layer is one matrix-vector product over ``[input; h]`` into a preallocated gate
buffer, the gates are reordered to (i, f, o, g) so one slice takes the sigmoid, and every
temporary lives in buffers allocated once per generator. See bench/bench_generate.py.

A ``NoteGenerator`` keeps (h, c) *after* the last note it has seen, so ``next`` is: read
the heads, sample a note, advance the state with it. Generators share the read-only
weights of their ``LoadedModel`` and nothing else, so each voice (thread) has its own.
``generate_notes`` runs the same step offline, for ``livernn generate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livernn.model.checkpoint import ModelError, read_model
from livernn.model.config import N_PITCHES, ModelConfig
from livernn.model.sampling import SamplerParams, allowed_pitches, pitch_classes
from livernn.notes import make_notes

DEFAULT_START = {"pitch": 60, "step": 0.0, "duration": 0.5, "velocity": 80}
_MASK_CACHE_SIZE = 64


def default_model_path() -> Path:
    """The shipped model ``bach`` (in the wheel, or the checkout's ``models/``)."""
    from livernn.library import shipped

    return shipped("models") / "bach"


def _feature(seconds: float) -> float:
    """A time as the network reads it (see ``config``); NaN, negative and absurd values
    can't poison the state."""
    seconds = min(seconds, 3600.0) if seconds > 0 else 0.0
    return math.log1p(seconds / 0.01) / 6.0


class FusedWeights:
    """The weights rearranged for one-note steps; shared read-only by all generators."""

    def __init__(self, cfg: ModelConfig, w: dict[str, np.ndarray]):
        h = cfg.hidden
        order = np.concatenate([np.arange(0, 2 * h), np.arange(3 * h, 4 * h), np.arange(2 * h, 3 * h)])
        self.cfg, self.hidden, self.layers = cfg, h, cfg.layers
        self.mats: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        for layer in range(cfg.layers):
            w_ih = w[f"lstm.weight_ih_l{layer}"][order]
            w_hh = w[f"lstm.weight_hh_l{layer}"][order]
            bias = (w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"])[order]
            if layer == 0:
                n_first = cfg.embed or 1
                first, feats = w_ih[:, :n_first], w_ih[:, n_first:]
                if cfg.embed:
                    table = w["embed.weight"] @ first.T
                else:
                    table = (np.arange(N_PITCHES, dtype=np.float32)[:, None] / 127.0) @ first.T
                self.pitch_table = np.ascontiguousarray(table + bias, dtype=np.float32)
                self.mats.append(np.ascontiguousarray(np.hstack([feats, w_hh]), dtype=np.float32))
                self.biases.append(np.zeros(0, np.float32))  # folded into pitch_table
            else:
                self.mats.append(np.ascontiguousarray(np.hstack([w_ih, w_hh]), dtype=np.float32))
                self.biases.append(np.ascontiguousarray(bias, dtype=np.float32))
        heads = ("step_head", "dur_head", "vel_head")
        self.sdv_w = np.ascontiguousarray(np.vstack([w[f"{k}.weight"] for k in heads]), dtype=np.float32)
        self.sdv_b = np.ascontiguousarray(np.concatenate([w[f"{k}.bias"] for k in heads]), dtype=np.float32)
        self.n_step, self.n_dur, self.n_vel = cfg.n_step, cfg.n_dur, cfg.vel_bins
        self.pitch_w = np.ascontiguousarray(w["pitch_head.weight"], dtype=np.float32)
        self.pitch_b = np.ascontiguousarray(w["pitch_head.bias"], dtype=np.float32)
        self.step_to_pitch = (np.ascontiguousarray(w["step_to_pitch.weight"], dtype=np.float32)
                              if "step_to_pitch.weight" in w else None)
        edges = cfg.time_edges()
        self.log_edges = np.log(edges)
        self.step_lo = np.concatenate([[0.0], self.log_edges[:-1]])  # bin k>=1 spans edges[k-1..k]
        self.step_hi = np.concatenate([[0.0], self.log_edges[1:]])


@dataclass
class _Constraint:
    """What one pitch range/scale/transpose setting means for the pitch head (computed once)."""

    mask_add: np.ndarray  # 0 where the model pitch is allowed, -inf where not
    any_allowed: bool
    fallback: np.ndarray  # allowed output pitches, for the nearest-pitch guard


def _constraint(params: SamplerParams) -> _Constraint:
    # The allowed output pitches come from sampling.allowed_pitches, the same set the
    # voice uses to re-constrain a note in hand, so the two can never disagree.
    allowed = np.array(allowed_pitches(params.pitch_min, params.pitch_max, params.scale, params.root))
    out = np.arange(N_PITCHES) + params.transpose
    in_scale = pitch_classes(params.scale, params.root)
    ok = (out >= params.pitch_min) & (out <= params.pitch_max) & np.isin(out % 12, sorted(in_scale))
    mask_add = np.where(ok, 0.0, -np.inf).astype(np.float32)
    return _Constraint(mask_add, bool(ok.any()), allowed)


class NoteGenerator:
    """One voice's stateful sampler over a shared ``FusedWeights``."""

    def __init__(self, fw: FusedWeights, start: dict, seed: int | None = None):
        self._fw, self._start = fw, start
        self._rng = np.random.default_rng(seed)
        h, cfg = fw.hidden, fw.cfg
        self._in_sizes = [4] + [h] * (fw.layers - 1)
        self._xh = [np.zeros(n + h, np.float32) for n in self._in_sizes]
        self._hs = [x[n:] for x, n in zip(self._xh, self._in_sizes)]
        self._cs = [np.zeros(h, np.float32) for _ in range(fw.layers)]
        self._gates = np.zeros(4 * h, np.float32)
        self._tmp = np.zeros(h, np.float32)
        self._z = np.zeros(h, np.float32)
        self._sdv = np.zeros(len(fw.sdv_b), np.float32)
        self._plog = np.zeros(N_PITCHES, np.float32)
        self._pbuf = np.zeros(N_PITCHES, np.float64)
        self._cbuf = np.zeros(max(N_PITCHES, len(fw.sdv_b)), np.float64)
        self._constraints: dict[tuple, _Constraint] = {}
        self._params: SamplerParams | None = None
        self._con: _Constraint | None = None
        self._eps = cfg.chord_eps
        self._vel_width = 128.0 / cfg.vel_bins
        self.reset()

    # -- state -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything, then hear the model's start note (its training data's mode)."""
        for x in self._xh:
            x[:] = 0.0
        for c in self._cs:
            c[:] = 0.0
        s = self._start
        self.observe(int(s["pitch"]), float(s["step"]), float(s["duration"]), int(s["velocity"]))

    def prime(self, notes: np.ndarray) -> None:
        """Start from silence and hear ``notes`` (NOTE_DTYPE, model-space pitches) in order."""
        if len(notes) == 0:
            self.reset()
            return
        for x in self._xh:
            x[:] = 0.0
        for c in self._cs:
            c[:] = 0.0
        for n in notes:
            self.observe(int(n["pitch"]), float(n["step"]), float(n["duration"]), int(n["velocity"]))

    def observe(self, pitch: int, step_s: float, dur_s: float, vel: int) -> None:
        """Advance the state with a note (model-space pitch) without sampling anything."""
        fw = self._fw
        x0 = self._xh[0]
        x0[0] = _feature(step_s)
        x0[1] = _feature(dur_s)
        x0[2] = min(max(int(vel), 0), 127) / 127.0
        x0[3] = 1.0 if not step_s >= self._eps else 0.0
        pitch = min(max(int(pitch), 0), N_PITCHES - 1)
        g, tmp, h3 = self._gates, self._tmp, 3 * fw.hidden
        sig, cand = g[:h3], g[h3:]
        hid = fw.hidden
        for layer in range(fw.layers):
            np.dot(fw.mats[layer], self._xh[layer], out=g)
            g += fw.pitch_table[pitch] if layer == 0 else fw.biases[layer]
            sig *= 0.5
            np.tanh(sig, out=sig)
            sig *= 0.5
            sig += 0.5
            np.tanh(cand, out=cand)
            c, h = self._cs[layer], self._hs[layer]
            c *= g[hid:2 * hid]
            np.multiply(g[:hid], cand, out=tmp)
            c += tmp
            np.tanh(c, out=tmp)
            np.multiply(g[2 * hid:h3], tmp, out=h)
            if layer + 1 < fw.layers:
                self._xh[layer + 1][:hid] = h

    def warmup(self) -> None:
        """Run every code path a few times on scratch state, then restore the state."""
        saved = [x.copy() for x in self._xh], [c.copy() for c in self._cs]
        rng_state = self._rng.bit_generator.state
        for params in (SamplerParams(), SamplerParams(top_p=0.9, scale="major", pitch_min=48, pitch_max=84)):
            for _ in range(8):
                self.next(params)
        for x, s in zip(self._xh, saved[0]):
            x[:] = s
        for c, s in zip(self._cs, saved[1]):
            c[:] = s
        self._rng.bit_generator.state = rng_state

    # -- sampling --------------------------------------------------------------------
    def _categorical(self, logits: np.ndarray, temperature: float) -> int:
        buf = self._cbuf[: len(logits)]
        np.divide(logits, temperature, out=buf)
        buf -= buf.max()
        np.exp(buf, out=buf)
        np.cumsum(buf, out=buf)
        k = int(np.searchsorted(buf, self._rng.random() * buf[-1], side="right"))
        return min(k, len(logits) - 1)

    def _sample_pitch(self, params: SamplerParams, con: _Constraint) -> int:
        p = self._pbuf
        np.divide(self._plog, params.temperature, out=p)
        if con.any_allowed:
            p += con.mask_add
        p -= p.max()
        np.exp(p, out=p)
        if params.top_p < 1.0:
            order = np.argsort(-p)
            cum = np.cumsum(p[order])
            keep = int(np.searchsorted(cum, params.top_p * cum[-1])) + 1
            cum = cum[:keep]
            k = int(np.searchsorted(cum, self._rng.random() * cum[-1], side="right"))
            return int(order[min(k, keep - 1)])
        np.cumsum(p, out=p)
        k = int(np.searchsorted(p, self._rng.random() * p[-1], side="right"))
        return min(k, N_PITCHES - 1)

    def next(self, params: SamplerParams) -> tuple[int, float, float, int]:
        """Sample the next note, advance the state with it, return (pitch, step, dur, vel).

        ``pitch`` is the output pitch (transposed, inside range and scale); the state hears
        the untransposed pitch. If the constraints leave no model pitch, the nearest
        allowed output pitch to the model's choice is played instead. Models with the
        original regression heads (training/baseline.toml) have deterministic timing, so
        ``timing_temperature`` does nothing for them.
        """
        fw = self._fw
        # A control moved (a voice hands over the same object for a whole snapshot, see
        # VoiceParams.sampler): validate once, reuse the pitch mask.
        if params is not self._params:
            params.validated()
            key = (params.pitch_min, params.pitch_max, params.transpose, params.scale, params.root)
            con = self._constraints.get(key)
            if con is None:
                if len(self._constraints) >= _MASK_CACHE_SIZE:
                    self._constraints.clear()
                con = self._constraints[key] = _constraint(params)
            self._params, self._con = params, con
        con = self._con
        h = self._hs[-1]
        np.dot(fw.sdv_w, h, out=self._sdv)
        self._sdv += fw.sdv_b
        ns, nd = fw.n_step, fw.n_dur
        tt = params.timing_temperature
        if fw.cfg.categorical:
            sbin = self._categorical(self._sdv[:ns], tt)
            dbin = self._categorical(self._sdv[ns:ns + nd], tt)
            u = self._rng.random()
            step = 0.0 if sbin == 0 else math.exp(fw.step_lo[sbin] + u * (fw.step_hi[sbin] - fw.step_lo[sbin]))
            lo, hi = fw.log_edges[dbin], fw.log_edges[dbin + 1]
            dur = math.exp(lo + self._rng.random() * (hi - lo))
        else:
            sbin = 0
            step = max(float(self._sdv[0]), 0.0)
            dur = max(float(self._sdv[1]), 1e-3)
        vbin = self._categorical(self._sdv[ns + nd:], 1.0)
        vel = min(max(int((vbin + self._rng.random()) * self._vel_width), 1), 127)
        if fw.step_to_pitch is not None:
            np.add(h, fw.step_to_pitch[sbin], out=self._z)
            np.tanh(self._z, out=self._z)
            np.dot(fw.pitch_w, self._z, out=self._plog)
        else:
            np.dot(fw.pitch_w, h, out=self._plog)
        self._plog += fw.pitch_b
        model_pitch = self._sample_pitch(params, con)
        out = model_pitch + params.transpose
        if not con.any_allowed:
            out = int(con.fallback[np.argmin(np.abs(con.fallback - out))])
            model_pitch = min(max(out - params.transpose, 0), N_PITCHES - 1)
        self.observe(model_pitch, step, dur, vel)
        return out, step, dur, vel


class LoadedModel:
    """A validated model: its config and metadata, and a factory for generators."""

    def __init__(self, cfg: ModelConfig, meta: dict, weights: dict[str, np.ndarray], path: Path):
        self.config, self.meta, self.path = cfg, meta, path
        self.name = str(meta.get("name") or path.name)
        self.ref_bpm = float(cfg.ref_bpm)
        self._fused = FusedWeights(cfg, weights)
        start = dict(DEFAULT_START)
        given = meta.get("start_note")
        if isinstance(given, dict):
            for key in start:
                value = given.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    start[key] = type(start[key])(value)
        self._start = start

    def generator(self, seed: int | None = None) -> NoteGenerator:
        """An independent generator (own state and RNG) over the shared weights."""
        return NoteGenerator(self._fused, self._start, seed)

    def __repr__(self) -> str:
        c = self.config
        return f"LoadedModel({self.name!r}, {c.layers}x{c.hidden} {c.heads}, {self.path})"


def load_model(path: str | Path | None = None) -> LoadedModel:
    """Load and validate a model directory (or either of its files); default: the shipped one."""
    cfg, meta, weights, directory = read_model(default_model_path() if path is None else path)
    try:
        return LoadedModel(cfg, meta, weights, directory)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{directory}: inconsistent weights ({exc})") from None


PRIME_NOTES = 512  # history beyond this adds little to an LSTM's state and costs time


def generate_notes(model: LoadedModel, n: int, params: SamplerParams | None = None, *,
                   seed: int | None = None, history: np.ndarray | None = None) -> np.ndarray:
    """Offline generation (``livernn generate``, model cards): ``n`` notes as a note array,
    after priming with the last notes of ``history`` if given; the same step as a voice's."""
    params = (params or SamplerParams()).validated()
    g = model.generator(seed)
    if history is not None and len(history):
        g.prime(history[-PRIME_NOTES:])
    g.warmup()
    cols = np.zeros((n, 4))
    for i in range(n):
        cols[i] = g.next(params)
    return make_notes(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3])

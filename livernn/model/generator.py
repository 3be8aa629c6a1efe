"""The real-time path: a loaded model and its stateful, hand-fused numpy LSTM step.

Why numpy and not ``nn.LSTM``: one note is a batch of one, where torch's per-call
dispatch costs more than the arithmetic, and past the matrix-vector products so does
numpy's (about a microsecond a call): the step is laid out so that it makes few calls.
One tanh covers all four gates of a layer, one multiply gives both products of the cell
update, the three timing/velocity heads are one matvec and are sampled together, biases
ride in the matvecs, and every temporary and view lives in buffers made once per
generator. ``FusedWeights`` and ``NoteGenerator`` say how; bench/bench_generate.py
measures the step against its own matvecs.

A ``NoteGenerator`` keeps (h, c) *after* the last note it has seen, so ``next`` is: read
the heads, sample a note, advance the state with it. Generators share the read-only
weights of their ``LoadedModel`` and nothing else, so each voice (thread) has its own.
``generate_notes`` runs the same step offline, for ``livernn generate``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livernn.errors import LivernnError
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


# One step draws its seven uniforms in one call, in this order: the step, duration and
# velocity bins, the pitch, then the positions inside the step and duration bins and the
# velocity inside its bin. Tests feed chosen values through these slots.
U_STEP, U_DUR, U_VEL, U_PITCH, U_STEP_IN, U_DUR_IN, U_VEL_IN = range(7)
_N_UNIFORMS = 7
_PAD_LOGIT = -1e30  # the bias of a head's padding rows: exp() of it is exactly 0
# A softmax skips its max-shift when no scaled logit can exceed this in size: e^300 is
# ~2e130, so even a thousand such weights sum far below float64's 1.8e308, and e^-300 is
# far above its underflow, so the weights are finite and never all zero.
_EXP_SAFE = 300.0

# Bound once: each is looked up per call on the hot path otherwise.
_dot, _add, _subtract, _multiply = np.dot, np.add, np.subtract, np.multiply
_tanh, _exp, _less_equal, _negative = np.tanh, np.exp, np.less_equal, np.negative
_rowmax, _rowsum = np.maximum.reduce, np.add.reduce


class FusedWeights:
    """The weights rearranged for one-note steps; shared read-only by all generators.

    What is rearranged, and why (each saves numpy calls, which cost more than the
    arithmetic at a batch of one):

    - Gates are reordered to (i, f, o, g), and the i, f, o rows (weights, biases, the
      pitch table) are halved, exactly: sigmoid(x) = 0.5 + 0.5 tanh(x / 2), so one tanh
      covers all four gates and a multiply-add turns the first three into sigmoids.
    - Layer 0's pitch embedding, its input projection and both its biases are one
      128-row table: a row lookup instead of a matvec. With ``time_embed`` the step and
      duration bin embeddings are two more such tables (one row per bin), so the step
      reads the previous note's rhythm with two adds. Every other layer is one matvec
      over ``[input; h]``; the top layer's bias rides in it as a last column (the state
      vector ends with a constant 1), a middle layer's is one add.
    - The step, duration and velocity heads are one (3 * width, hidden + 1) matrix: one
      block of ``width`` rows per head, padded with zero weights and a -1e30 bias, biases
      in the last column. One matvec gives all
      three heads as a (3, width) array whose padding has zero probability, so they are
      softmaxed and sampled together, row by row.
    - The pitch head carries its bias in its last column the same way.
    - Each head's logits are bounded (their inputs are tanh outputs in [-1, 1]), by the
      largest row of |weights| summed with |bias|: with the temperature in hand, a step
      knows whether its softmax can overflow before it computes it.
    """

    def __init__(self, cfg: ModelConfig, w: dict[str, np.ndarray]):
        h = cfg.hidden
        order = np.concatenate([np.arange(0, 2 * h), np.arange(3 * h, 4 * h), np.arange(2 * h, 3 * h)])
        half = np.ones(4 * h, np.float32)
        half[:3 * h] = 0.5  # i, f, o: tanh(x / 2) instead of sigmoid(x)
        self.cfg, self.hidden, self.layers = cfg, h, cfg.layers
        self.n_feats = cfg.n_continuous  # the numbers at the head of a generator's state vector
        self.step_table: np.ndarray | None = None  # layer 0's gates per step bin (time_embed)
        self.dur_table: np.ndarray | None = None  # and per duration bin
        self.mats: list[np.ndarray] = []
        self.biases: list[np.ndarray | None] = []
        for layer in range(cfg.layers):
            w_ih = w[f"lstm.weight_ih_l{layer}"][order] * half[:, None]
            w_hh = w[f"lstm.weight_hh_l{layer}"][order] * half[:, None]
            bias = (w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"])[order] * half
            if layer == 0:
                n_first, te = cfg.embed or 1, cfg.time_embed
                first, feats = w_ih[:, :n_first], w_ih[:, n_first + 2 * te:]
                if te:
                    self.step_table = np.ascontiguousarray(
                        w["step_embed.weight"] @ w_ih[:, n_first:n_first + te].T, dtype=np.float32)
                    self.dur_table = np.ascontiguousarray(
                        w["dur_embed.weight"] @ w_ih[:, n_first + te:n_first + 2 * te].T, dtype=np.float32)
                if cfg.embed:
                    table = w["embed.weight"] @ first.T
                else:
                    table = (np.arange(N_PITCHES, dtype=np.float32)[:, None] / 127.0) @ first.T
                self.pitch_table = np.ascontiguousarray(table + bias, dtype=np.float32)
                self.biases.append(None)  # folded into pitch_table
                self.mats.append(np.ascontiguousarray(np.hstack([feats, w_hh]), dtype=np.float32))
            elif layer == cfg.layers - 1:
                self.mats.append(np.ascontiguousarray(np.hstack([w_ih, w_hh, bias[:, None]]), dtype=np.float32))
                self.biases.append(None)  # in the matrix's last column
            else:
                self.mats.append(np.ascontiguousarray(np.hstack([w_ih, w_hh]), dtype=np.float32))
                self.biases.append(np.ascontiguousarray(bias, dtype=np.float32))
        self.n_step, self.n_dur, self.n_vel = cfg.n_step, cfg.n_dur, cfg.vel_bins
        self.width = width = max(self.n_step, self.n_dur, self.n_vel)
        self.heads = np.zeros((3 * width, h + 1), np.float32)
        self.heads[:, h] = _PAD_LOGIT
        for row, name in enumerate(("step_head", "dur_head", "vel_head")):
            weight, bias = w[f"{name}.weight"], w[f"{name}.bias"]
            self.heads[row * width:row * width + len(bias)] = np.hstack([weight, bias[:, None]])
        self.pitch = np.ascontiguousarray(np.hstack([w["pitch_head.weight"], w["pitch_head.bias"][:, None]]),
                                          dtype=np.float32)
        self.step_to_pitch = (np.ascontiguousarray(w["step_to_pitch.weight"], dtype=np.float32)
                              if "step_to_pitch.weight" in w else None)
        self.head_bounds = [float(np.abs(self._head_block(r)).sum(1).max()) for r in range(3)]
        self.pitch_bound = float(np.abs(self.pitch).sum(1).max())
        edges = cfg.time_edges()
        # Python floats: the bin-to-seconds arithmetic is scalar, and math on floats is
        # cheaper than on numpy scalars.
        self.log_edges = np.log(edges).tolist()
        self.step_lo = [0.0, *self.log_edges[:-1]]  # bin k>=1 spans edges[k-1..k]
        self.step_hi = [0.0, *self.log_edges[1:]]
        # The bin of a time, as net.time_bins_t finds it on the float32 time: x lands at or
        # above a float32 edge e exactly when float32(x) >= e, i.e. when x is at least half
        # way from e's float32 predecessor to e (so no per-note rounding is needed).
        e32 = edges.astype(np.float32)[1:-1]
        below = np.nextafter(e32, np.float32(-np.inf))
        self.inner_edges = ((e32.astype(float) + below.astype(float)) / 2).tolist()
        # The seconds a sampled bin plays (the data's median per bin; see config), or None:
        # log-uniform inside the bin.
        self.step_values = list(cfg.step_values) or None
        self.dur_values = list(cfg.dur_values) or None

    @property
    def matrices(self) -> list[np.ndarray]:
        """Every matrix one step multiplies by a vector (its arithmetic floor)."""
        return [*self.mats, self.heads, self.pitch]

    @property
    def sdv_w(self) -> np.ndarray:
        """The step, duration and velocity heads' weights as trained, stacked (unpadded)."""
        return np.vstack([self._head_block(r)[:, :-1] for r in range(3)])

    @property
    def sdv_b(self) -> np.ndarray:
        """The step, duration and velocity heads' biases as trained, concatenated."""
        return np.concatenate([self._head_block(r)[:, -1] for r in range(3)])

    def _head_block(self, row: int) -> np.ndarray:
        n = (self.n_step, self.n_dur, self.n_vel)[row]
        return self.heads[row * self.width:row * self.width + n]


@dataclass
class _Constraint:
    """What one pitch range/scale/transpose setting means for the pitch head (computed once)."""

    mask_add: np.ndarray | None  # 0 where the model pitch is allowed, -inf where not; None: nothing to add
    any_allowed: bool
    fallback: np.ndarray  # allowed output pitches, for the nearest-pitch guard


def _constraint(params: SamplerParams) -> _Constraint:
    # The allowed output pitches come from sampling.allowed_pitches, the same set the
    # voice uses to re-constrain a note in hand, so the two can never disagree.
    allowed = np.array(allowed_pitches(params.pitch_min, params.pitch_max, params.scale, params.root,
                                       params.pitches))
    out = np.arange(N_PITCHES) + params.transpose
    if params.pitches:  # a listening policy's set (already inside range and scale)
        ok = np.isin(out, allowed)
    else:
        in_scale = pitch_classes(params.scale, params.root)
        ok = (out >= params.pitch_min) & (out <= params.pitch_max) & np.isin(out % 12, sorted(in_scale))
    # Everything allowed (the default) or nothing (the guard plays the nearest): no mask.
    mask_add = np.where(ok, 0.0, -np.inf) if ok.any() and not ok.all() else None
    return _Constraint(mask_add, bool(ok.any()), allowed)


class _Snapshot:
    """What one SamplerParams object means for the step, worked out when first seen (a
    voice hands over the same object until a control moves, see VoiceParams.sampler)."""

    __slots__ = ("con", "inv_temperature", "params", "pitch_shift", "timing_scale", "timing_shift", "top_p",
                 "transpose")

    def __init__(self, params: SamplerParams, con: _Constraint, fw: FusedWeights):
        self.params, self.con = params, con
        self.inv_temperature = 1.0 / params.temperature
        inv_tt = 1.0 / params.timing_temperature
        scales = (inv_tt, inv_tt, 1.0)  # step, duration, velocity rows
        self.timing_scale = np.array(scales)[:, None]
        self.top_p, self.transpose = params.top_p, params.transpose
        # Whether each softmax needs its max subtracted (see _EXP_SAFE): only at
        # temperatures far below 1.
        self.timing_shift = max(b * s for b, s in zip(fw.head_bounds, scales)) > _EXP_SAFE
        self.pitch_shift = fw.pitch_bound * self.inv_temperature > _EXP_SAFE


class NoteGenerator:
    """One voice's stateful sampler over a shared ``FusedWeights``.

    The state is one float32 vector ``[features | h_0 | ... | h_last | 1]`` (features: the
    four numbers, or velocity and the chord flag when the time bins are embedded): layer l
    reads the contiguous slice ``[input_l; h_l]`` (its input h_{l-1} sits just before
    h_l), and the heads read ``[h_last; 1]``. Each layer's cell is one buffer
    ``[i f o g | c]``, so ``[i f] * [g c]`` is one multiply. Every view the step uses is
    made here, once.
    """

    def __init__(self, fw: FusedWeights, start: dict, seed: int | None = None):
        self._fw, self._start = fw, start
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise LivernnError(f"seed must be a whole number >= 0, got {seed!r}")
        self._rng = np.random.default_rng(seed)
        h, width = fw.hidden, fw.width
        nf = fw.n_feats
        self._v = np.zeros(nf + fw.layers * h + 1, np.float32)
        self._v[-1] = 1.0
        self._cells = [np.zeros(5 * h, np.float32) for _ in range(fw.layers)]
        self._prod = np.zeros(2 * h, np.float32)
        self._prod_ig, self._prod_fc = self._prod[:h], self._prod[h:]
        self._tmp = np.zeros(h, np.float32)
        self._layer_views = []
        for layer, cell in enumerate(self._cells):
            own = nf + layer * h
            first = 0 if layer == 0 else own - h
            last = own + h + (layer == fw.layers - 1 and layer > 0)  # the top one reads the 1
            self._layer_views.append((
                fw.mats[layer], self._v[first:last], cell[:4 * h], fw.biases[layer],
                cell[:3 * h], cell[:2 * h], cell[3 * h:], cell[4 * h:], cell[2 * h:3 * h],
                self._v[own:own + h]))
        self._hs = [views[-1] for views in self._layer_views]
        self._cs = [cell[4 * h:] for cell in self._cells]
        self._top = self._v[nf + (fw.layers - 1) * h:]
        # Heads: raw logits, their (3, width) softmax turned into running sums in place.
        self._raw = np.zeros(3 * width, np.float32)
        self._raw3 = self._raw.reshape(3, width)
        self._cdf = np.zeros((3, width))
        self._row_max = np.zeros((3, 1))
        self._totals = self._cdf[:, width - 1]
        self._targets = np.zeros(3)
        self._targets_col = self._targets.reshape(3, 1)
        self._below = np.zeros((3, width), bool)
        self._counts = np.zeros(3, np.intp)
        self._u = np.zeros(_N_UNIFORMS)
        self._u_bins = self._u[U_STEP:U_VEL + 1]
        # Pitch: z = [tanh(h_last + step_to_pitch[bin]); 1], logits, weights.
        self._z = np.zeros(h + 1, np.float32)
        self._z[-1] = 1.0
        self._zh = self._z[:h]
        self._plog = np.zeros(N_PITCHES, np.float32)
        self._p = np.zeros(N_PITCHES)
        self._neg = np.zeros(N_PITCHES)
        self._ranked = np.zeros(N_PITCHES)
        self._constraints: dict[tuple, _Constraint] = {}
        self._snap: _Snapshot | None = None
        self._snaps: dict[SamplerParams, _Snapshot] = {}
        self._eps = fw.cfg.chord_eps
        self._vel_width = 128.0 / fw.cfg.vel_bins
        self.reset()

    # -- state -----------------------------------------------------------------------
    def _clear(self) -> None:
        self._v[:-1] = 0.0
        for cell in self._cells:
            cell[:] = 0.0

    def reset(self) -> None:
        """Forget everything, then hear the model's start note (its training data's mode)."""
        self._clear()
        s = self._start
        self.observe(int(s["pitch"]), float(s["step"]), float(s["duration"]), int(s["velocity"]))

    def prime(self, notes: np.ndarray) -> None:
        """Start from silence and hear ``notes`` (NOTE_DTYPE, model-space pitches) in order."""
        if len(notes) == 0:
            self.reset()
            return
        self._clear()
        for n in notes:
            self.observe(int(n["pitch"]), float(n["step"]), float(n["duration"]), int(n["velocity"]))

    def observe(self, pitch: int, step_s: float, dur_s: float, vel: int) -> None:
        """Advance the state with a note (model-space pitch) without sampling anything."""
        v, fw = self._v, self._fw
        chord = not step_s >= self._eps
        times = None
        if fw.step_table is not None and fw.dur_table is not None:  # embedded bins: two more rows
            sbin = 0 if chord else bisect_right(fw.inner_edges, min(step_s, 3600.0)) + 1
            dbin = bisect_right(fw.inner_edges, dur_s if dur_s > 0 else 0.0)  # NaN: bin 0
            times = (fw.step_table[sbin], fw.dur_table[dbin])
            v[0] = min(max(int(vel), 0), 127) / 127.0
            v[1] = 1.0 if chord else 0.0
        else:
            v[0] = _feature(step_s)
            v[1] = _feature(dur_s)
            v[2] = min(max(int(vel), 0), 127) / 127.0
            v[3] = 1.0 if chord else 0.0
        row = fw.pitch_table[min(max(int(pitch), 0), N_PITCHES - 1)]
        prod, ig, fc, tmp = self._prod, self._prod_ig, self._prod_fc, self._tmp
        for mat, x, gates, bias, sig, i_f, g_c, c, o, h in self._layer_views:
            _dot(mat, x, gates)
            if row is not None:  # layer 0: its input projection and biases, by pitch
                _add(gates, row, gates)
                row = None
                if times is not None:
                    _add(gates, times[0], gates)
                    _add(gates, times[1], gates)
            elif bias is not None:  # a middle layer (the top one's is in its matrix)
                _add(gates, bias, gates)
            _tanh(gates, gates)  # i, f, o rows were halved: 0.5 + 0.5 tanh is their sigmoid
            _multiply(sig, 0.5, sig)
            _add(sig, 0.5, sig)
            _multiply(i_f, g_c, prod)  # [i * g, f * c]
            _add(ig, fc, c)
            _tanh(c, tmp)
            _multiply(o, tmp, h)

    def _save(self) -> tuple:
        """A copy of the LSTM state (h and c of every layer), for ``_restore``."""
        return self._v.copy(), [cell.copy() for cell in self._cells]

    def _restore(self, saved: tuple) -> None:
        v, cells = saved
        self._v[:] = v
        for cell, was in zip(self._cells, cells):
            cell[:] = was

    def warmup(self) -> None:
        """Run every code path a few times on scratch state, then restore the state and RNG."""
        saved, rng_state = self._save(), self._rng.bit_generator.state
        for params in (SamplerParams(), SamplerParams(top_p=0.9, scale="major", pitch_min=48, pitch_max=84)):
            for _ in range(8):
                self.next(params)
        self._restore(saved)
        self._rng.bit_generator.state = rng_state

    # -- sampling --------------------------------------------------------------------
    def _snapshot(self, params: SamplerParams) -> _Snapshot:
        # A control moved: validate once, reuse the pitch mask of a setting seen before.
        # A listening policy alternates between settings (one per companion set, one per
        # chord): those seen before are reused whole, without validating them again.
        seen = self._snaps.get(params)
        if seen is not None:
            self._snap = seen
            return seen
        params.validated()
        key = (params.pitch_min, params.pitch_max, params.transpose, params.scale, params.root, params.pitches)
        con = self._constraints.get(key)
        if con is None:
            if len(self._constraints) >= _MASK_CACHE_SIZE:
                self._constraints.clear()
            con = self._constraints[key] = _constraint(params)
        self._snap = _Snapshot(params, con, self._fw)
        if len(self._snaps) >= _MASK_CACHE_SIZE:
            self._snaps.clear()
        self._snaps[params] = self._snap
        return self._snap

    def _timing_bins(self, snap: _Snapshot) -> list[int]:
        """Sample the step, duration and velocity bins at once, by inverse CDF per row:
        a row's bin is how many of its running sums lie at or below u * its total."""
        cdf = self._cdf
        _dot(self._fw.heads, self._top, self._raw)
        _multiply(self._raw3, snap.timing_scale, cdf)
        if snap.timing_shift:
            _rowmax(cdf, axis=1, out=self._row_max, keepdims=True)
            _subtract(cdf, self._row_max, cdf)
        _exp(cdf, cdf)
        cdf.cumsum(1, None, cdf)
        _multiply(self._u_bins, self._totals, self._targets)
        _less_equal(cdf, self._targets_col, self._below)
        _rowsum(self._below, 1, np.intp, self._counts)
        return self._counts.tolist()

    def _pitch_weights(self, snap: _Snapshot, step_bin: int) -> np.ndarray:
        """exp(logits / temperature) over the model pitches, masked, not normalised."""
        fw, p = self._fw, self._p
        if fw.step_to_pitch is not None:
            _add(self._hs[-1], fw.step_to_pitch[step_bin], self._zh)
            _tanh(self._zh, self._zh)
            _dot(fw.pitch, self._z, self._plog)
        else:
            _dot(fw.pitch, self._top, self._plog)
        _multiply(self._plog, snap.inv_temperature, p)
        if snap.con.mask_add is not None:
            _add(p, snap.con.mask_add, p)
        if snap.pitch_shift:
            _subtract(p, p.max(), p)
        _exp(p, p)
        return p

    def _nucleus(self, p: np.ndarray, top_p: float, u: float) -> int:
        """Sample from the smallest set of most likely pitches that holds top_p of the mass."""
        _negative(p, self._neg)
        order = self._neg.argsort()
        ranked = self._ranked
        p.take(order, None, ranked)
        ranked.cumsum(0, None, ranked)
        keep = int(ranked.searchsorted(top_p * ranked[-1])) + 1
        k = int(ranked[:keep].searchsorted(u * ranked[keep - 1], "right"))
        return int(order[min(k, keep - 1)])

    def next(self, params: SamplerParams, advance: bool = True) -> tuple[int, float, float, int]:
        """Sample the next note, advance the state with it, return (pitch, step, dur, vel).

        ``pitch`` is the output pitch (transposed, inside range and scale); the state hears
        the untransposed pitch. If the constraints leave no model pitch, the nearest
        allowed output pitch to the model's choice is played instead. Models with the
        original regression heads (training/baseline.toml) have deterministic timing, so
        ``timing_temperature`` does nothing for them. ``advance=False`` samples without
        stepping the state (the caller ``observe``s the note later: a companion that must
        leave before the model's step is paid for, livernn.engine.listen).
        """
        snap = self._snap
        if snap is None or params is not snap.params:
            snap = self._snapshot(params)
        fw = self._fw
        u = self._rng.random(out=self._u).tolist()
        sbin, dbin, vbin = self._timing_bins(snap)
        sbin, dbin = min(sbin, fw.n_step - 1), min(dbin, fw.n_dur - 1)
        if fw.step_values is not None and fw.dur_values is not None:  # quantised data: the bin's value
            step, dur = fw.step_values[sbin], fw.dur_values[dbin]
        elif fw.cfg.categorical:
            lo, hi = fw.step_lo[sbin], fw.step_hi[sbin]
            step = 0.0 if sbin == 0 else math.exp(lo + u[U_STEP_IN] * (hi - lo))
            lo, hi = fw.log_edges[dbin], fw.log_edges[dbin + 1]
            dur = math.exp(lo + u[U_DUR_IN] * (hi - lo))
        else:
            step = max(float(self._raw[0]), 0.0)
            dur = max(float(self._raw[fw.width]), 1e-3)
        vel = min(max(int((min(vbin, fw.n_vel - 1) + u[U_VEL_IN]) * self._vel_width), 1), 127)
        p = self._pitch_weights(snap, sbin)
        if snap.top_p < 1.0:
            model_pitch = self._nucleus(p, snap.top_p, u[U_PITCH])
        else:
            p.cumsum(0, None, p)
            model_pitch = min(int(p.searchsorted(u[U_PITCH] * p[-1], "right")), N_PITCHES - 1)
        out = model_pitch + snap.transpose
        con = snap.con
        if not con.any_allowed:
            out = int(con.fallback[np.argmin(np.abs(con.fallback - out))])
            model_pitch = min(max(out - snap.transpose, 0), N_PITCHES - 1)
        if advance:
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

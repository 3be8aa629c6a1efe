"""One Euro and EMA filters: smoothing driven by sample timestamps."""

import numpy as np
import pytest

from livernn.controls.filters import EmaFilter, OneEuroFilter


def jitter(values):
    return float(np.mean(np.abs(np.diff(values, 2))))


def test_one_euro_reduces_jitter_of_a_still_noisy_signal():
    rng = np.random.default_rng(0)
    t = np.arange(200) / 25.0
    raw = 0.5 + rng.normal(0, 0.02, len(t))
    f = OneEuroFilter(mincutoff=1.0, beta=0.0)
    smooth = [f(x, ti) for x, ti in zip(raw, t)]
    assert jitter(smooth) < jitter(raw) / 4
    assert abs(np.mean(smooth[50:]) - 0.5) < 0.01


def test_one_euro_follows_fast_moves_with_beta():
    t = np.arange(100) / 25.0
    step = np.where(t < 2.0, 0.0, 1.0)
    slow = OneEuroFilter(mincutoff=0.5, beta=0.0)
    fast = OneEuroFilter(mincutoff=0.5, beta=5.0)
    y_slow = [slow(x, ti) for x, ti in zip(step, t)]
    y_fast = [fast(x, ti) for x, ti in zip(step, t)]
    i = int(np.searchsorted(t, 2.2))
    assert y_fast[i] > y_slow[i] + 0.2


def test_one_euro_holds_on_repeated_or_backwards_timestamps():
    f = OneEuroFilter()
    assert f(1.0, 0.0) == 1.0
    y = f(2.0, 0.1)
    assert f(5.0, 0.1) == y
    assert f(9.0, 0.05) == y


def test_filter_parameters_are_validated():
    with pytest.raises(ValueError):
        OneEuroFilter(mincutoff=0)
    with pytest.raises(ValueError):
        EmaFilter(alpha=0)


def test_ema_moves_part_way():
    f = EmaFilter(alpha=0.5)
    assert f(0.0) == 0.0
    assert f(1.0) == 0.5

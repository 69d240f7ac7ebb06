"""Property tests (hypothesis): finite, non-negative, within the range their parameters
allow, and continuous where the definition is."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jobflow.schedule as S
from jobflow.schedule import mindspore as M
from jobflow.schedule import pytorch as P
from jobflow.schedule import transformers as T

N = 300
lrs = st.floats(1e-4, 10.0)
fracs = st.floats(0.0, 1.0)
steps = st.integers(1, 400)
SETTINGS = settings(max_examples=10, deadline=None)


def _bounded(values, lo, hi):
    assert np.all(np.isfinite(values))
    tol = 1e-6 * max(abs(hi), 1e-30)
    assert values.min() >= lo - tol and values.max() <= hi + tol, (values.min(), values.max(), lo, hi)


@SETTINGS
@given(base=lrs, d=steps, alpha=fracs)
def test_cosine_decay_bounded_monotone_continuous(base, d, alpha):
    v = S.CosineDecayLR(base, d, alpha).values(N).astype(np.float64)
    _bounded(v, base * alpha, base)
    assert np.all(np.diff(v) <= 1e-6 * base)  # non-increasing
    assert np.all(np.abs(np.diff(v)) <= base * (1 - alpha) * math.pi / (2 * d) + 1e-6 * base)  # Lipschitz


@SETTINGS
@given(base=lrs, t0=st.integers(1, 50), mult=st.integers(1, 4), eta=fracs, decay=fracs)
def test_warm_restarts_bounded(base, t0, mult, eta, decay):
    v = S.CosineAnnealingWarmRestarts(base, t0, mult, eta_min=eta * base, decay_rate=decay).values(N)
    _bounded(v, 0.0, base)  # a decayed peak may fall below eta_min: the cosine then rises to eta_min
    assert v[0] == np.float32(base)
    v = S.CosineAnnealingWarmRestarts(base, t0, mult, eta_min=eta * base).values(N)
    _bounded(v, eta * base, base)


@SETTINGS
@given(base=lrs, t=steps, eta=fracs)
def test_cosine_annealing_periodic_and_bounded(base, t, eta):
    v = P.CosineAnnealingLR(base, t, eta * base).values(N)
    _bounded(v, eta * base, base)
    n = min(N, 2 * t)
    np.testing.assert_allclose(v[n:], v[: N - n], rtol=1e-5, atol=1e-6 * base)  # period 2 T_max


@SETTINGS
@given(base=lrs, sf=st.floats(0.01, 1.0), ef=fracs, t=steps)
def test_linear_lr_between_its_factors(base, sf, ef, t):
    v = P.LinearLR(base, sf, ef, t).values(N)
    _bounded(v, base * min(sf, ef), base * max(sf, ef))


@SETTINGS
@given(
    base=lrs,
    ratio=st.floats(1.0, 100.0),
    up=st.integers(1, 60),
    down=st.integers(1, 60),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    gamma=st.floats(0.9, 1.0),
)
def test_cyclic_within_base_and_max(base, ratio, up, down, mode, gamma):
    v = S.CyclicLR(base, base * ratio, up, down, mode=mode, gamma=gamma).values(N)
    _bounded(v, base, base * ratio)
    np.testing.assert_allclose(v[:: up + down][:1], base, rtol=1e-6)


@SETTINGS
@given(
    peak=lrs,
    total=st.integers(20, N),
    pct=st.floats(0.1, 0.45),
    three=st.booleans(),
    strategy=st.sampled_from(["cos", "linear"]),
)
def test_one_cycle_within_min_and_max(peak, total, pct, three, strategy):
    v = S.OneCycleLR(
        peak, total_steps=total, pct_start=pct, three_phase=three, anneal_strategy=strategy
    ).values(N)
    _bounded(v, peak / 25 / 1e4, peak)
    assert v[total - 1] == np.float32(peak / 25 / 1e4) or abs(v[total - 1] / (peak / 25 / 1e4) - 1) < 1e-5


@SETTINGS
@given(
    base=lrs,
    w=st.integers(0, 100),
    extra=st.integers(1, 300),
    name=st.sampled_from(["linear", "cosine", "cosine_with_restarts", "polynomial", "constant_with_warmup"]),
)
def test_transformers_start_at_zero_and_stay_in_range(base, w, extra, name):
    v = T.get_scheduler(name, base, w, w + extra).values(N)
    _bounded(v, 0.0, base)
    if w:
        assert v[0] == 0.0


@SETTINGS
@given(base=lrs, w=st.integers(1, 50), s=st.floats(0.0, 0.99), d=steps)
def test_warmup_wrapper_is_continuous(base, w, s, d):
    inner = S.CosineDecayLR(base, d)
    v = S.with_warmup(inner, w, start_factor=s).values(N).astype(np.float64)
    _bounded(v, 0.0, base)
    jump = abs(v[w] - v[w - 1])
    assert jump <= base * (1 - s) / w + 1e-6 * base  # the ramp meets the schedule


@SETTINGS
@given(
    metrics=st.lists(st.floats(-5, 5, width=32), min_size=1, max_size=80),
    factor=st.floats(0.05, 0.95),
    patience=st.integers(0, 5),
    cooldown=st.integers(0, 3),
    min_lr=st.floats(0.0, 0.05),
)
def test_plateau_non_increasing_and_above_min_lr(metrics, factor, patience, cooldown, min_lr):
    v = S.ReduceLROnPlateau(0.1, factor=factor, patience=patience, cooldown=cooldown, min_lr=min_lr).simulate(
        metrics
    )
    assert np.all(np.diff(np.concatenate([[np.float32(0.1)], v])) <= 0)
    assert np.all(v >= np.float32(min(min_lr, 0.1)) * (1 - 1e-6))


@SETTINGS
@given(
    lr=st.floats(1e-3, 1.0),
    end=fracs,
    total=st.integers(1, 60),
    spe=st.integers(1, 5),
    d=st.integers(1, 10),
    power=st.floats(0.1, 3.0),
    update=st.booleans(),
)
def test_mindspore_polynomial_list_between_end_and_lr(lr, end, total, spe, d, power, update):
    v = np.asarray(M.polynomial_decay_lr(lr, end * lr, total, spe, d, power, update))
    assert len(v) == total
    _bounded(v, end * lr, lr)

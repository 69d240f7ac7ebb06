"""OneFlow's legacy schedulers: kernel formulas, warmup, inclusive boundaries."""

import math

import numpy as np
import pytest

import jobflow as flow
from jobflow.schedule import Constant, Table, as_schedule

opt = flow.optimizer


def test_piecewise_constant_inclusive_boundaries():
    s = opt.PiecewiseConstantScheduler([3, 6], [1.0, 0.5, 0.25])
    np.testing.assert_allclose(s.values(9), [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(opt.PiecewiseConstantScheduler([], [0.1]).values(3), [0.1] * 3)


def test_cosine_with_linear_warmup_uses_absolute_step_after_warmup():
    s = opt.CosineScheduler(base_lr=1.0, steps=10, alpha=0.1, warmup=opt.warmup.linear(4, 0.2))
    got = s.values(14)
    for t in range(14):
        if t < 4:
            want = 0.2 + 0.8 * t / 4
        else:  # decay(t) on the ABSOLUTE step: the jump at t = W (OneFlow #3011)
            c = min(t, 10)
            want = 0.9 * 0.5 * (1 + math.cos(math.pi * c / 10)) + 0.1
        assert got[t] == pytest.approx(want, rel=1e-6), t


def test_constant_warmup_on_piecewise_uses_first_value():
    s = opt.PiecewiseConstantScheduler([5], [0.4, 0.04], warmup=opt.warmup.constant(2, 0.5))
    np.testing.assert_allclose(s.values(8), [0.2, 0.2, 0.4, 0.4, 0.4, 0.4, 0.04, 0.04], rtol=1e-6)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: opt.PiecewiseConstantScheduler([1, 2], [1.0]), r"len\(values\) == len\(boundaries\) \+ 1"),
        (lambda: opt.PiecewiseConstantScheduler([5, 3], [1.0, 2.0, 3.0]), "strictly increasing"),
        (lambda: opt.CosineScheduler(0.1, 0), r"steps\) must be an int >= 1; got steps=0"),
        (lambda: opt.CosineScheduler(float("nan"), 10), "finite"),
        (
            lambda: opt.warmup.linear(10, 1.0),
            r"start_multiplier\) must be >= 0 and < 1; got start_multiplier=1.0",
        ),
        (lambda: opt.warmup.constant(10, 0.0), r"multiplier\) must be > 0 and < 1; got multiplier=0.0"),
        (lambda: opt.warmup.linear(-1, 0.0), "steps"),
        (lambda: opt.CosineScheduler(0.1, 10, warmup=5), "warmup"),
    ],
)
def test_invalid_parameters_raise_at_construction(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


def test_as_schedule_accepts_numbers_lists_callables():
    assert isinstance(as_schedule(0.1), Constant)
    table = as_schedule([0.3, 0.2, 0.1])
    assert isinstance(table, Table)
    np.testing.assert_allclose(table.values(5), [0.3, 0.2, 0.1, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(as_schedule(lambda t: 0.5 * t).values(3), [0, 0.5, 1.0])
    with pytest.raises(TypeError, match="lr_scheduler"):
        as_schedule("fast")
    with pytest.raises(ValueError, match="non-empty"):
        as_schedule([])
    with pytest.raises(ValueError, match="values"):
        Constant(0.1).values(-1)


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "lr.png"
    opt.CosineScheduler(0.1, 100).plot(100, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_piecewise_scaling_scales_base_with_inclusive_boundaries():
    s = opt.PiecewiseScalingScheduler(0.5, [2, 4], [0.1, 0.01])
    np.testing.assert_allclose(s.values(7), [0.5, 0.5, 0.5, 0.05, 0.05, 0.005, 0.005], rtol=1e-6)
    np.testing.assert_allclose(
        opt.PiecewiseScalingScheduler(1.0, [1, 3], 0.5).values(5), [1, 1, 0.5, 0.5, 0.5]
    )


def test_polynomial_with_warmup_boundary_and_cycle():
    # BERT's PolynomialSchduler(lr, iters, 0.0, warmup=linear(W, 0)): ramp, then decay(t) at t = W
    s = opt.PolynomialSchduler(1.0, 10, 0.0, warmup=opt.warmup.linear(3, 0))
    np.testing.assert_allclose(
        s.values(12), [0, 1 / 3, 2 / 3] + [1 - t / 10 for t in range(3, 10)] + [0, 0], atol=1e-7
    )
    cyc = opt.PolynomialScheduler(1.0, 4, end_learning_rate=0.0, power=1.0, cycle=True)
    # c = max(t, 1), D' = 4 ceil(c / 4): t=0,1 -> 3/4; t=4 -> 0; t=5 -> 1 - 5/8
    np.testing.assert_allclose(cyc.values(7), [0.75, 0.75, 0.5, 0.25, 0.0, 0.375, 0.25], atol=1e-7)


def test_linear_cosine_hand_values():
    s = opt.LinearCosineScheduler(2.0, 8, num_periods=1.0, alpha=0.1, beta=0.01)
    want = [
        2.0 * ((0.1 + (8 - min(t, 8)) / 8) * 0.5 * (1 + math.cos(2 * math.pi * min(t, 8) / 8)) + 0.01)
        for t in range(11)
    ]
    np.testing.assert_allclose(s.values(11), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_inverse_time_natural_exp(staircase):
    def p(t):
        return t // 4 if staircase else t / 4

    n = 30
    np.testing.assert_allclose(
        opt.ExponentialScheduler(0.1, 4, 0.7, staircase).values(n),
        [0.1 * 0.7 ** p(t) for t in range(n)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        opt.InverseTimeScheduler(0.1, 4, 0.7, staircase).values(n),
        [0.1 / (1 + 0.7 * p(t)) for t in range(n)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        opt.NaturalExpScheduler(0.1, 4, 0.7, staircase).values(n),
        [0.1 * math.exp(-0.7 * p(t)) for t in range(n)],
        rtol=1e-6,
    )


def test_warmup_boundaries_for_every_decay():
    # at t = W - 1 the ramp, at t = W decay(W) on the absolute step (OneFlow #3011)
    w = opt.warmup.linear(5, 0.5)
    for make in (
        lambda: opt.ExponentialScheduler(1.0, 2, 0.5, warmup=w),
        lambda: opt.InverseTimeScheduler(1.0, 2, 0.5, warmup=w),
        lambda: opt.NaturalExpScheduler(1.0, 2, 0.5, warmup=w),
        lambda: opt.LinearCosineScheduler(1.0, 20, warmup=w),
        lambda: opt.PiecewiseScalingScheduler(1.0, [3], 0.1, warmup=w),
    ):
        s = make()
        plain = type(s).__new__(type(s))
        plain.__dict__.update({**s.__dict__, "warmup": None})
        got, ref = s.values(7), plain.values(7)
        np.testing.assert_allclose(got[:5], [0.5 + 0.5 * t / 5 for t in range(5)], rtol=1e-6)
        np.testing.assert_allclose(got[5:], ref[5:], rtol=1e-6)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (
            lambda: opt.PiecewiseScalingScheduler(0.1, [1, 2], [0.5]),
            r"one entry per boundary; got scale=\[0.5\]",
        ),
        (lambda: opt.PolynomialScheduler(0.1, 10, power=0), r"power\) must be > 0; got power=0"),
        (lambda: opt.ExponentialScheduler(0.1, 10, 0.0), r"decay_rate\) must be > 0; got decay_rate=0.0"),
        (lambda: opt.InverseTimeScheduler(0.1, -3, 0.5), r"steps\) must be an int >= 1; got steps=-3"),
        (
            lambda: opt.NaturalExpScheduler(0.1, 10, 0.5, staircase="yes"),
            r"staircase\) must be True or False",
        ),
        (lambda: opt.LinearCosineScheduler(0.1, 10, warmup=opt.warmup.linear), r"warmup\) must be"),
    ],
)
def test_more_invalid_parameters(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()

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


@pytest.mark.parametrize("make, pattern", [
    (lambda: opt.PiecewiseConstantScheduler([1, 2], [1.0]), r"len\(values\) == len\(boundaries\) \+ 1"),
    (lambda: opt.PiecewiseConstantScheduler([5, 3], [1.0, 2.0, 3.0]), "strictly increasing"),
    (lambda: opt.CosineScheduler(0.1, 0), r"steps\) must be an int > 0; got steps=0"),
    (lambda: opt.CosineScheduler(float("nan"), 10), "finite"),
    (lambda: opt.warmup.linear(10, 1.0), r"start_multiplier\) must be in \[0, 1\)"),
    (lambda: opt.warmup.constant(10, 0.0), r"multiplier\) must be in \(0, 1\)"),
    (lambda: opt.warmup.linear(-1, 0.0), "steps"),
    (lambda: opt.CosineScheduler(0.1, 10, warmup=5), "warmup"),
])
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

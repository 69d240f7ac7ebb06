"""jobflow.schedule.mindspore against MindSpore's own values (goldens written by
tests/goldens/make_mindspore_schedule_goldens.py) and the docstring fixtures of its reference."""

import json
import pathlib

import numpy as np
import pytest

from jobflow.schedule import mindspore as M

GOLDEN = json.loads((pathlib.Path(__file__).parent / "goldens" / "mindspore_schedules.json").read_text())


@pytest.mark.parametrize("key", list(GOLDEN["lists"]))
def test_dynamic_lr_lists_match_mindspore(key):
    case = GOLDEN["lists"][key]
    got = getattr(M, key.split("-")[0])(*case["args"])
    assert isinstance(got, list) and len(got) == len(case["values"])
    np.testing.assert_allclose(got, case["values"], rtol=1e-12)


@pytest.mark.parametrize("key", list(GOLDEN["classes"]))
def test_schedule_classes_match_mindspore(key):
    case = GOLDEN["classes"][key]
    sched = getattr(M, key.split("-")[0])(*case["args"])
    # MindSpore computes in float32 (pow/exp/sin); jobflow's float32 with exact powers
    np.testing.assert_allclose(sched.values(GOLDEN["steps"]), case["values"], rtol=2e-6, atol=1e-9)


FIXTURES = [  # reference: schedules_optimizers_math.md A1 (MindSpore's docstrings)
    (M.exponential_decay_lr, (0.1, 0.9, 6, 2, 1), [0.1, 0.1, 0.09, 0.09, 0.081, 0.081]),
    (M.natural_exp_decay_lr, (0.1, 0.9, 6, 2, 2, True), [0.1, 0.1, 0.1, 0.1, 0.0165299, 0.0165299]),
    (M.inverse_decay_lr, (0.1, 0.5, 6, 1, 1, True), [0.1, 0.0667, 0.05, 0.04, 0.0333, 0.0286]),
    (M.cosine_decay_lr, (0.01, 0.1, 6, 2, 2), [0.1, 0.1, 0.055, 0.055, 0.01, 0.01]),
    (M.polynomial_decay_lr, (0.1, 0.01, 6, 2, 2, 0.5), [0.1, 0.1, 0.0736396, 0.0736396, 0.01, 0.01]),
    (
        M.polynomial_decay_lr,
        (0.1, 0.01, 8, 1, 2, 1.0, True),
        [0.1, 0.055, 0.01, 0.0325, 0.01, 0.025, 0.01, 0.02125],
    ),
    (M.warmup_lr, (0.1, 6, 2, 2), [0, 0, 0.05, 0.05, 0.1, 0.1]),
    (
        M.piecewise_constant_lr,
        ([2, 5, 10], [0.1, 0.05, 0.01]),
        [0.1, 0.1, 0.05, 0.05, 0.05, 0.01, 0.01, 0.01, 0.01, 0.01],
    ),
]


@pytest.mark.parametrize("fn, args, want", FIXTURES)
def test_docstring_fixtures(fn, args, want):
    np.testing.assert_allclose(fn(*args), want, rtol=5e-3 if fn is M.inverse_decay_lr else 1e-5)


def test_lists_are_usable_as_lr_and_hold_their_last_value():
    from jobflow.schedule import as_schedule

    lr = as_schedule(M.warmup_lr(0.1, 6, 2, 2))
    np.testing.assert_allclose(lr.values(9), [0, 0, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1], rtol=1e-6)


def test_name_collisions_mean_mindspore_semantics():
    import jobflow.schedule as S

    # MindSpore's CosineDecayLR(min_lr, max_lr, decay_steps) vs OneFlow's (base_lr, decay_steps, alpha)
    np.testing.assert_allclose(
        M.CosineDecayLR(0.01, 0.1, 4).values(6), [0.1, 0.0868198, 0.055, 0.0231802, 0.01, 0.01], rtol=1e-6
    )
    np.testing.assert_allclose(
        S.CosineDecayLR(0.1, 4, alpha=0.1).values(6), M.CosineDecayLR(0.01, 0.1, 4).values(6), rtol=1e-6
    )
    # MindSpore's WarmUpLR starts at 0; OneFlow's WarmupLR at warmup_factor * base
    assert M.WarmUpLR(0.1, 4).values(1)[0] == 0.0
    assert S.WarmupLR(0.1, 1 / 3, 4).values(1)[0] == pytest.approx(0.1 / 3)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (
            lambda: M.piecewise_constant_lr([5, 3], [0.1, 0.2]),
            r"milestone\) must be non-decreasing; got milestone=\[5, 3\]",
        ),
        (lambda: M.piecewise_constant_lr([2, 3], [0.1]), "one rate per milestone"),
        (
            lambda: M.exponential_decay_lr(0.1, 0.9, 0, 2, 1),
            r"total_step\) must be an int >= 1; got total_step=0",
        ),
        (lambda: M.cosine_decay_lr(0.2, 0.1, 6, 2, 2), "min_lr < max_lr; got min_lr=0.2"),
        (lambda: M.ExponentialDecayLR(0.1, -0.9, 10), r"decay_rate\) must be > 0; got decay_rate=-0.9"),
        (lambda: M.PolynomialDecayLR(0.1, 0.01, 10, 0.0), r"power\) must be > 0; got power=0.0"),
        (lambda: M.WarmUpLR(0.1, 0), r"warmup_steps\) must be an int >= 1; got warmup_steps=0"),
        (
            lambda: M.NaturalExpDecayLR(0.1, 0.1, 10, is_stair=1),
            r"is_stair\) must be True or False; got is_stair=1",
        ),
    ],
)
def test_invalid_arguments(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()

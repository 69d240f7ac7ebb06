"""``flow.optimizer.Optax``: any optax transformation inside a compiled job."""

import functools

import numpy as np
import optax
import pytest

import jobflow as flow
from tests.optimizer_harness import random_problem, run_fixed_grads

O = flow.optimizer
SHAPES = {"w": (3, 2), "b": (2,)}


def _run(make, steps=5):
    flow.clear_default_session()
    w0, grads = random_problem(SHAPES, steps, seed=3)
    traj, job = run_fixed_grads(make, w0, grads)
    return traj[-1], job


def test_factory_form_runs_the_alias_with_the_scheduled_lr():
    # optax.adam(lr) with lr = [0.01, 0.02, ...] per step equals flow.optimizer.pytorch.Adam (same math).
    lrs = [0.01 * (i + 1) for i in range(5)]
    got, job = _run(lambda: O.Optax(optax.adam, lrs))
    assert job.last_info["lr"] == pytest.approx(0.05)
    assert job.num_traces == 1
    # optax's mu / nu are named as slots; its own count is a system variable
    assert set(flow.get_all_variables()) == {
        "w",
        "b",
        "w-m",
        "w-v",
        "b-m",
        "b-v",
        "System-Optimizer-fixed-0-0-count",
        "System-Train-TrainStep-fixed",
    }
    want, _ = _run(lambda: O.pytorch.Adam(lrs))
    for n in SHAPES:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-5)


def test_direction_form_is_scaled_by_minus_lr():
    got, _ = _run(lambda: O.Optax(optax.scale_by_adam(), 0.01))
    want, _ = _run(lambda: O.pytorch.Adam(0.01))
    for n in SHAPES:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-5)


def test_complete_optimizer_is_used_as_is():
    got, job = _run(lambda: O.Optax(optax.sgd(0.1, momentum=0.9)))
    want, _ = _run(lambda: O.Momentum(0.1, 0.9))
    for n in SHAPES:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-6)
    assert "lr" not in job.last_info
    with pytest.raises(RuntimeError, match="optimizer has no learning-rate schedule"):
        _ = job.last_lr


def test_masks_can_key_on_variable_names():
    # weight decay only on "w": b with zero gradient stays, w shrinks by lr * wd
    w0 = {"w": np.ones((3, 2), np.float32), "b": np.ones(2, np.float32)}
    tx = functools.partial(optax.adamw, weight_decay=0.5, mask=lambda p: {n: n == "w" for n in p})
    traj, _ = run_fixed_grads(lambda: O.Optax(tx, 0.1), w0, [{n: np.zeros_like(v) for n, v in w0.items()}])
    np.testing.assert_allclose(traj[0]["w"], np.full((3, 2), 0.95), rtol=1e-6)
    np.testing.assert_array_equal(traj[0]["b"], [1.0, 1.0])


def test_bad_transformations_raise():
    with pytest.raises(TypeError, match=r"Optax\(tx\) must be an optax GradientTransformation or a function"):
        O.Optax(3)
    with pytest.raises(ValueError, match=r"needs an lr_scheduler"):
        O.Optax(optax.adam)
    with pytest.raises(TypeError, match=r"must return an optax GradientTransformation; got 0.0"):
        O.Optax(lambda lr: 0.0, 0.1)

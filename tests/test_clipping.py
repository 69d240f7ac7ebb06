"""Gradient clipping rules, hand-computed, inside real train jobs (SGD, lr 1, momentum 0)."""

import numpy as np
import pytest

import jobflow as flow
from tests.optimizer_harness import run_fixed_grads

clipping = flow.optimizer.grad_clipping


def _sgd(clip):
    return lambda: flow.optimizer.SGD(1.0, momentum=0.0, grad_clipping=clip)


def test_by_value_clips_each_element():
    g = {"w": np.array([3.0, -0.5, -2.0], np.float32)}
    traj, job = run_fixed_grads(_sgd(clipping.by_value(1.0)), {"w": np.zeros(3, np.float32)}, [g])
    np.testing.assert_allclose(traj[0]["w"], [-1.0, 0.5, 1.0])
    assert job.last_info["grad_norm"] == pytest.approx(np.sqrt(9 + 0.25 + 4), rel=1e-6)


def test_by_norm_clips_each_variable_by_its_own_norm():
    # a: ||[3, 4]|| = 5 > 1 -> [0.6, 0.8]; b: ||[0.3, 0.4]|| = 0.5 <= 1 -> unchanged; c: zero stays zero
    w0 = {n: np.zeros(2, np.float32) for n in "abc"}
    g = {
        "a": np.array([3.0, 4.0], np.float32),
        "b": np.array([0.3, 0.4], np.float32),
        "c": np.zeros(2, np.float32),
    }
    traj, job = run_fixed_grads(_sgd(clipping.by_norm(1.0)), w0, [g])
    np.testing.assert_allclose(traj[0]["a"], [-0.6, -0.8], rtol=1e-6)
    np.testing.assert_allclose(traj[0]["b"], [-0.3, -0.4], rtol=1e-6)
    np.testing.assert_array_equal(traj[0]["c"], [0.0, 0.0])
    assert job.last_info["grad_norm"] == pytest.approx(np.sqrt(25 + 0.25), rel=1e-6)


def test_global_norm_clipping_covers_all_variables():
    # ||([3, 0], [0, 4])|| = 5 -> every gradient scaled by 1/5
    w0 = {n: np.zeros(2, np.float32) for n in "ab"}
    g = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([0.0, 4.0], np.float32)}
    traj, _ = run_fixed_grads(_sgd(clipping.by_global_norm(1.0)), w0, [g])
    np.testing.assert_allclose(traj[0]["a"], [-0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(traj[0]["b"], [0.0, -0.8], rtol=1e-6)


def test_regularizers_apply_before_clipping():
    # w0 = [3, 4], l2 = 1, loss gradient 0: g = 0 + 1 * w = [3, 4], norm 5 -> clipped to [0.6, 0.8]
    # (clipping first would leave the full [3, 4] and give w = [0, 0])
    traj, _ = run_fixed_grads(
        _sgd(clipping.by_global_norm(1.0)),
        {"w": np.array([3.0, 4.0], np.float32)},
        [{"w": np.zeros(2, np.float32)}],
        regularizers={"w": flow.regularizers.l2(1.0)},
    )
    np.testing.assert_allclose(traj[0]["w"], [2.4, 3.2], rtol=1e-6)


@pytest.mark.parametrize(
    "make, arg, bad",
    [
        (clipping.by_value, "clip_value", 0.0),
        (clipping.by_value, "clip_value", True),
        (clipping.by_norm, "clip_norm", -1.0),
        (clipping.by_norm, "clip_norm", float("inf")),
        (clipping.by_global_norm, "clip_norm", "1"),
    ],
)
def test_bad_clip_values_raise(make, arg, bad):
    with pytest.raises(ValueError, match=rf"\({arg}\) must be a finite number > 0; got {arg}={bad!r}"):
        make(bad)

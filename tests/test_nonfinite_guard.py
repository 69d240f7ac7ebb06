"""``function_config.skip_nonfinite_steps``: skipping non-finite steps without loss scaling,
and ``max_consecutive_skipped_steps``: the error after too many skips in a row."""

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow import NonFiniteStepsError

STEP = "System-Train-TrainStep-train"
RUN = "System-Train-ConsecutiveSkippedSteps-train"
TOTAL = "System-Train-SkippedSteps-train"
CLEAN = np.array([1.0, 2.0], np.float32)
NAN = np.array([np.nan, 2.0], np.float32)


def guarded_job(limit=1000, loss_offset=False):
    cfg = flow.function_config().skip_nonfinite_steps(True).max_consecutive_skipped_steps(limit)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(w * x)
        if loss_offset:  # -inf when x sums to 0; its gradient with respect to w is 0
            loss = loss + flow.math.log(flow.math.abs(flow.math.reduce_sum(x)))
        sched = flow.optimizer.PiecewiseConstantScheduler([0, 1], [0.1, 0.2, 0.3])
        flow.optimizer.Adam(sched).minimize(loss)
        return loss

    return train


def snapshot():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


def test_a_nan_step_is_skipped_without_loss_scaling():
    train = guarded_job()
    train(CLEAN)
    before = snapshot()
    train(NAN)
    info = train.last_info
    assert info["skipped"] is True and info["loss_scale"] == 1.0 and np.isnan(info["loss"])
    assert info["step"] == 1 and info["lr"] == pytest.approx(0.2)
    after = snapshot()
    for name in ("w", "w-m", "w-v", STEP):
        assert after[name].tobytes() == before[name].tobytes(), name
    assert (after[RUN], after[TOTAL]) == (1, 1)
    train(CLEAN)  # the next step uses the same counter and rate
    assert train.last_info["step"] == 1 and train.last_info["lr"] == pytest.approx(0.2)
    assert train.last_info["skipped"] is False
    v = flow.get_all_variables()
    assert (v[RUN], v[TOTAL], v[STEP]) == (0, 1, 2)


def test_a_non_finite_loss_with_finite_gradients_is_skipped_too():
    train = guarded_job(loss_offset=True)
    train(np.array([1.0, -1.0], np.float32))  # log|0| = -inf; d/dw = x is finite
    assert train.last_info["skipped"] is True
    assert np.all(flow.get_all_variables()["w"] == 1.0)


def test_without_the_switch_a_nan_step_is_applied():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(flow.math.reduce_sum(w * x))
        return w

    train(NAN)
    assert train.last_info["skipped"] is False and "skipped_steps" not in train.last_info
    assert np.isnan(flow.get_all_variables()["w"][0])
    assert not any("Skipped" in n for n in flow.get_all_variables())


def test_too_many_consecutive_skips_raise_before_the_next_call_runs():
    train = guarded_job(limit=2)
    train(NAN)
    train(CLEAN)  # resets the run
    train(NAN)
    train(NAN)  # the second in a row: the limit is reached ...
    before = snapshot()
    match = r"skipped its last 2 steps.*max_consecutive_skipped_steps is 2.*flow.load_variables\(\{'System-Train-C"
    with pytest.raises(NonFiniteStepsError, match=match):
        train(CLEAN)  # ... so the next call refuses to run, whatever its data
    after = snapshot()
    assert all(after[k].tobytes() == before[k].tobytes() for k in before)
    with pytest.raises(NonFiniteStepsError):
        train(CLEAN)  # still refused
    flow.load_variables({RUN: np.int32(0)})  # the documented way to go on
    train(CLEAN)
    assert train.last_info["skipped"] is False
    assert flow.get_all_variables()[TOTAL] == 3


def test_the_limit_applies_to_a_dynamic_loss_scale_too():
    cfg = flow.function_config().max_consecutive_skipped_steps(3)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        policy = flow.optimizer.loss_scale.dynamic_loss_scale(8.0)
        flow.optimizer.SGD(0.1, loss_scale_policy=policy).minimize(flow.math.reduce_sum(w * x))
        return w

    for _ in range(3):
        train(NAN)
    with pytest.raises(NonFiniteStepsError, match=r"3 steps.*loss scale now 1\b"):
        train(CLEAN)


def test_no_limit():
    train = guarded_job(limit=None)
    for _ in range(5):
        train(NAN)
    assert flow.get_all_variables()[RUN] == 5


@pytest.mark.parametrize(
    "set_, exc, match",
    [
        (
            lambda c: c.skip_nonfinite_steps("yes"),
            TypeError,
            r"skip_nonfinite_steps expects True or False; got 'ye",
        ),
        (
            lambda c: c.max_consecutive_skipped_steps(0),
            ValueError,
            r"max_consecutive_skipped_steps.*>= 1; got 0",
        ),
        (lambda c: c.max_consecutive_skipped_steps(2.5), ValueError, r"got 2.5"),
    ],
)
def test_bad_settings(set_, exc, match):
    cfg = flow.function_config()
    with pytest.raises(exc, match=match):
        set_(cfg)
    settings = cfg.settings
    assert settings["skip_nonfinite_steps"] is False and settings["max_consecutive_skipped_steps"] == 1000


def test_the_limit_check_in_a_loop_that_never_waits():
    """A loop that never reads results still hits the limit, and the check never waits
    for an unfinished step (it reads the newest finished count instead)."""
    cfg = flow.function_config().skip_nonfinite_steps(True).max_consecutive_skipped_steps(3)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((2,))):  # no annotation: a future, nothing waits
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        flow.optimizer.SGD(0.1).minimize(flow.math.reduce_sum(w * x))
        return w

    from jobflow._src.runtime import step_guard as _step_guard

    with pytest.raises(NonFiniteStepsError, match="skipped its last 3 steps"):
        for _ in range(3 + _step_guard.SKIP_WINDOW + 2):
            train(NAN)
    assert train.last_info["consecutive_skipped_steps"] >= 3

    class Pending:  # an unfinished result: reading it would wait
        def is_ready(self):
            return False

        def __array__(self, *a, **k):
            raise AssertionError("check_limit waited for an unfinished step")

    guard = train._guard
    guard._recent.clear()
    guard._recent.append(Pending())
    assert guard._latest_finished_count({RUN: Pending()}) is None


# ------------------------------------------------- non-finite learning rates, counters


def _nan_at_one(step):
    return jnp.where(step == 1, jnp.float32(np.nan), jnp.float32(0.1))


def nan_rate_job(skip: bool):
    """A train job whose schedule gives nan at step 1 (0.1 at every other step)."""
    cfg = flow.function_config().skip_nonfinite_steps(skip)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        flow.optimizer.SGD(_nan_at_one, momentum=0.9).minimize(flow.math.reduce_sum(w * x))
        return w

    return train


def test_a_nan_learning_rate_is_a_skipped_step():
    train = nan_rate_job(skip=True)
    train(CLEAN)
    before = snapshot()
    train(CLEAN)  # step 1: lr(1) is nan
    info = train.last_info
    assert info["skipped"] is True and np.isnan(info["lr"]) and info["step"] == 1
    after = snapshot()
    assert set(after) == set(before)
    for name in ("w", "w-momentum", STEP):
        assert after[name].tobytes() == before[name].tobytes(), name
    assert np.all(np.isfinite(after["w"]))
    assert (after[RUN], after[TOTAL]) == (1, 1)
    train(CLEAN)  # the counter did not advance: the rate is nan again, skipped again
    assert train.last_info["skipped"] is True and snapshot()[TOTAL] == 2


def test_without_the_switch_a_nan_learning_rate_is_applied():
    train = nan_rate_job(skip=False)
    train(CLEAN)
    train(CLEAN)
    assert train.last_info["skipped"] is False and np.isnan(train.last_info["lr"])
    assert np.all(np.isnan(flow.get_all_variables()["w"]))


def test_skip_counters_saturate_at_the_int32_maximum():
    train = guarded_job(limit=None)
    train(CLEAN)
    top = np.int32(2**31 - 1)
    flow.load_variables({TOTAL: top, RUN: top - 1})
    train(NAN)
    train(NAN)
    v = flow.get_all_variables()
    assert (v[TOTAL], v[RUN]) == (top, top)  # no wrap to negative counts
    assert v[TOTAL].dtype == np.int32

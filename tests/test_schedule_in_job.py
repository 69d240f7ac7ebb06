"""Schedules inside compiled train jobs: one compile over many calls, stateful schedules in
the store (ReduceLROnPlateau stepped from the host and from the body), CustomScheduler."""

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.schedule import pytorch as P

X = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
Y = np.array([1.0, 2.0], np.float32)


def _job(make_lr, momentum=0.0, feed=None):
    """A linear-regression train job; ``make_lr(loss)`` builds the lr_scheduler in the body."""

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 2)), y: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        loss = flow.math.square(flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y)
        flow.optimizer.SGD(make_lr(loss), momentum=momentum).minimize(loss)
        if feed is not None:
            feed(loss)
        return loss

    return train


def test_lr_follows_schedule_over_1000_calls_with_one_compile():
    sched = flow.schedule.WarmupLR(flow.schedule.CosineDecayLR(0.05, 900, alpha=0.1), 0.2, 100)
    train = _job(lambda loss: sched)
    seen = []
    for _ in range(1000):
        train(X * 0.01, Y * 0.01)
        seen.append(train.last_lr)
    assert train.num_traces == 1
    np.testing.assert_allclose(seen, sched.values(1000), rtol=1e-6)
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 1000


def test_custom_scheduler_uses_the_lr_computed_in_the_body_at_the_same_step():
    # lr = 0.1 / (1 + mean(loss)); step 0: loss = [1, 4], lr = 0.1 / 3.5; g = [-7, -10]
    train = _job(lambda loss: flow.optimizer.CustomScheduler(0.1 / (1.0 + flow.math.reduce_mean(loss))))
    train(X, Y)
    lr0 = 0.1 / 3.5
    assert train.last_lr == pytest.approx(lr0, rel=1e-6)
    np.testing.assert_allclose(flow.get_all_variables()["w"], [7 * lr0, 10 * lr0], rtol=1e-6)
    w = np.array([7 * lr0, 10 * lr0])
    loss1 = np.square(X @ w - Y)
    train(X, Y)
    assert train.last_lr == pytest.approx(0.1 / (1.0 + loss1.mean()), rel=1e-5)
    assert train.num_traces == 1


def test_custom_scheduler_outside_a_job_or_with_bad_value():
    with pytest.raises(RuntimeError, match="inside the"):
        flow.optimizer.CustomScheduler(0.1)
    train = _job(lambda loss: flow.optimizer.CustomScheduler(loss))  # shape (2,): not a scalar
    with pytest.raises(TypeError, match="CustomScheduler\\(lbn\\) needs a floating-point scalar"):
        train(X, Y)


def test_plateau_stepped_from_the_host_lives_in_the_store_and_never_recompiles():
    sched = flow.schedule.ReduceLROnPlateau(0.01, factor=0.5, patience=1)
    train = _job(lambda loss: sched)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85]
    lrs = []
    for m in metrics:
        train(X * 0.01, Y * 0.01)
        lrs.append(train.last_lr)
        sched.step(m)
    train(X * 0.01, Y * 0.01)
    lrs.append(train.last_lr)
    assert train.num_traces == 1
    # by hand (bad > patience=1 reduces): 0.95 twice after 0.9 -> 0.005; 0.85 twice after 0.8 -> 0.0025
    expected = [0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.005, 0.0025]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    store = flow.get_all_variables()
    assert store["System-Optimizer-train-0-lr-lr"] == pytest.approx(0.0025)
    assert store["System-Optimizer-train-0-lr-best"] == pytest.approx(0.8)
    (state,) = sched.state()
    assert state["bad"] == 0 and state["cooldown_left"] == 0


def test_plateau_state_is_restored_by_load_variables():
    sched = flow.schedule.ReduceLROnPlateau(0.01, factor=0.1, patience=0)
    train = _job(lambda loss: sched)
    train(X, Y)
    sched.step(1.0)
    sched.step(2.0)  # worse -> bad = 1 > 0 -> lr 0.001
    saved = flow.get_all_variables()
    sched.step(3.0)  # -> 1e-4
    train(X, Y)
    assert train.last_lr == pytest.approx(1e-4, rel=1e-6)
    flow.load_variables({k: v for k, v in saved.items() if "-lr-" in k})
    train(X, Y)
    assert train.last_lr == pytest.approx(1e-3, rel=1e-6)
    assert train.num_traces == 1


def test_plateau_stepped_in_the_body_with_the_loss():
    sched = flow.schedule.ReduceLROnPlateau(0.2, factor=0.5, patience=2, threshold=0.0)
    train = _job(lambda loss: sched, feed=lambda loss: sched.step(flow.math.reduce_mean(loss)))
    rng = np.random.default_rng(0)
    lrs, losses = [], []
    for _ in range(40):
        x = rng.normal(size=(2, 2)).astype(np.float32)
        losses.append(float(np.mean(train(x, x[:, 0] * 3 + rng.normal(size=2).astype(np.float32)))))
        lrs.append(train.last_lr)
    assert train.num_traces == 1
    # the metric of step t changes the rate from step t + 1 (PyTorch: opt.step(); sched.step(m))
    expected = [0.2, *P.ReduceLROnPlateau(0.2, factor=0.5, patience=2, threshold=0.0).simulate(losses[:-1])]
    np.testing.assert_allclose(lrs, expected, rtol=1e-5)
    assert min(lrs) < 0.2


def test_plateau_step_errors():
    sched = flow.schedule.ReduceLROnPlateau(0.1)
    with pytest.raises(RuntimeError, match="before any job"):
        sched.step(1.0)

    @flow.global_function(type="predict")
    def evaluate(x: tp.Numpy.Placeholder((2, 2))) -> tp.Numpy:
        sched.step(flow.math.reduce_mean(x))
        return x

    with pytest.raises(RuntimeError, match="predict job 'evaluate'"):
        evaluate(X)


def test_multiplicative_lr_state_advances_once_per_step():
    sched = P.MultiplicativeLR(0.1, lambda t: jnp.where(t % 3 == 0, 0.5, 1.0))
    train = _job(lambda loss: sched)
    seen = []
    for _ in range(10):
        train(X * 0.01, Y * 0.01)
        seen.append(train.last_lr)
    np.testing.assert_allclose(seen, sched.values(10), rtol=1e-6)
    np.testing.assert_allclose(seen, [0.1 * 0.5 ** (t // 3) for t in range(10)], rtol=1e-6)
    assert flow.get_all_variables()["System-Optimizer-train-0-lr-step"] == 9


def test_optax_schedule_and_list_as_lr():
    optax = pytest.importorskip("optax")
    train = _job(lambda loss: optax.linear_schedule(0.1, 0.0, 4))
    seen = []
    for _ in range(6):
        train(X * 0.01, Y * 0.01)
        seen.append(train.last_lr)
    np.testing.assert_allclose(seen, [0.1, 0.075, 0.05, 0.025, 0.0, 0.0], atol=1e-7)

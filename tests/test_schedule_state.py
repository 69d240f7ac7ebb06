"""Stateful schedules evaluated explicitly: ``evaluate(schedule, step, states, feeds)`` is a
pure function of its arguments (a bound copy of the schedule tree, no thread-local), and
the store handles the runtime attaches for host-side stepping."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.schedule import state as schedule_state
from jobflow.schedule import pytorch as P

X = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
Y = np.array([1.0, 2.0], np.float32)


def _halving():
    """lr(t) = 0.1 * 0.5**t as a stateful running product."""
    return P.MultiplicativeLR(0.1, lambda t: jnp.float32(0.5))


def _state(**fields):
    return {k: jnp.asarray(v) for k, v in fields.items()}


def test_evaluate_reads_the_given_state_and_returns_the_next_one():
    sched = _halving()
    lr, (new,) = schedule_state.evaluate(
        sched, jnp.int32(3), [_state(step=np.int32(2), factor=np.float32(0.25))]
    )
    assert float(lr) == pytest.approx(0.1 * 0.125)
    assert int(new["step"]) == 3 and float(new["factor"]) == pytest.approx(0.125)


def test_evaluate_leaves_the_schedule_objects_unchanged():
    inner = _halving()
    sched = flow.schedule.with_warmup(inner, 2)
    before = {id(s): copy.copy(vars(s)) for s in (sched, inner)}
    schedule_state.evaluate(sched, jnp.int32(5), [_state(step=np.int32(4), factor=np.float32(1.0))])
    for s in (sched, inner):
        assert vars(s).keys() == before[id(s)].keys()
    assert sched.schedule is inner


def test_a_composite_binds_each_stateful_part_in_order():
    a, b = _halving(), P.MultiplicativeLR(0.2, lambda t: jnp.float32(2.0))
    sched = flow.schedule.product(a, b)
    assert schedule_state.stateful_leaves(sched) == [a, b]
    states = [
        _state(step=np.int32(0), factor=np.float32(1.0)),
        _state(step=np.int32(0), factor=np.float32(1.0)),
    ]
    lr, (na, nb) = schedule_state.evaluate(sched, jnp.int32(1), states)
    assert float(lr) == pytest.approx((0.1 * 0.5) * (0.2 * 2.0))
    assert float(na["factor"]) == pytest.approx(0.5) and float(nb["factor"]) == pytest.approx(2.0)


def test_a_part_shared_twice_is_bound_once():
    a = _halving()
    sched = flow.schedule.product(a, a)
    lr, (new,) = schedule_state.evaluate(
        sched, jnp.int32(2), [_state(step=np.int32(1), factor=np.float32(0.5))]
    )
    assert float(lr) == pytest.approx((0.1 * 0.25) ** 2)
    assert float(new["factor"]) == pytest.approx(0.25)


def test_the_number_of_states_must_match_the_stateful_parts():
    with pytest.raises(ValueError, match="1 stateful part"):
        schedule_state.evaluate(_halving(), jnp.int32(0), [])


def test_plateau_transitions_only_on_its_fed_metric():
    sched = flow.schedule.ReduceLROnPlateau(0.1, factor=0.5, patience=0)
    state = {k: jnp.asarray(v) for k, v in sched.init_state().items()}
    state["best"] = jnp.float32(1.0)
    lr, (same,) = schedule_state.evaluate(sched, jnp.int32(0), [state], {})
    assert float(lr) == pytest.approx(0.1)
    assert all(np.array_equal(same[k], state[k]) for k in state)
    _, (worse,) = schedule_state.evaluate(sched, jnp.int32(0), [state], {sched.feed_key: jnp.float32(2.0)})
    assert float(worse["lr"]) == pytest.approx(0.05) and int(worse["bad"]) == 0
    other = flow.schedule.ReduceLROnPlateau(0.1, factor=0.5, patience=0)
    _, (ignored,) = schedule_state.evaluate(sched, jnp.int32(0), [state], {other.feed_key: jnp.float32(2.0)})
    assert float(ignored["lr"]) == pytest.approx(0.1)


def test_evaluate_is_jit_safe_and_pure():
    sched = flow.schedule.with_warmup(_halving(), 3)
    run = jax.jit(lambda t, s: schedule_state.evaluate(sched, t, [s]))
    s0 = _state(step=np.int32(0), factor=np.float32(1.0))
    lr1, (s1,) = run(jnp.int32(4), s0)
    lr2, (s2,) = run(jnp.int32(4), s0)
    assert float(lr1) == float(lr2) and float(s1["factor"]) == float(s2["factor"])


def _job(make_lr, feed=None):
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 2)), y: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        loss = flow.math.square(flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y)
        sched = make_lr()
        flow.optimizer.SGD(sched, momentum=0.0).minimize(loss)
        if feed is not None:
            feed(sched, loss)
        return loss

    return train


def test_plateau_built_and_stepped_inside_the_body():
    # each trace builds its own schedule object; the metric of the traced one is used
    train = _job(
        lambda: flow.schedule.ReduceLROnPlateau(0.1, factor=0.5, patience=0, threshold=0.0),
        feed=lambda sched, loss: sched.step(-flow.math.reduce_mean(loss) * 0.0 + 1.0),
    )
    lrs = []
    for _ in range(4):
        train(X * 0.01, Y * 0.01)
        lrs.append(train.last_lr)
    # metric 1.0 every step: step 0 sets best = 1, then no improvement -> halve each step
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.025], rtol=1e-6)
    assert train.num_traces == 1


def test_host_stepping_follows_the_current_session_only():
    sched = flow.schedule.ReduceLROnPlateau(0.01, factor=0.5, patience=0)
    train = _job(lambda: sched)
    train(X, Y)
    sched.step(1.0)
    sched.step(2.0)
    (state,) = sched.state()
    assert state["lr"] == pytest.approx(0.005)
    flow.clear_default_session()
    assert sched.state() == []
    with pytest.raises(RuntimeError, match="before any job"):
        sched.step(1.0)
    train = _job(lambda: sched)
    train(X, Y)
    (state,) = sched.state()
    assert state["lr"] == pytest.approx(0.01)  # the new session starts from init_state


def test_one_schedule_in_two_jobs_is_stepped_in_both():
    sched = flow.schedule.ReduceLROnPlateau(0.01, factor=0.5, patience=0)
    a = _job(lambda: sched)

    @flow.global_function(type="train")
    def b(x: tp.Numpy.Placeholder((2, 2))) -> tp.Numpy:
        v = flow.get_variable("v", (2,), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_sum(flow.matmul(x, flow.reshape(v, (2, 1))))
        flow.optimizer.SGD(sched).minimize(loss)
        return loss

    a(X, Y)
    b(X)
    sched.step(1.0)
    sched.step(2.0)
    assert [s["lr"] for s in sched.state()] == pytest.approx([0.005, 0.005])
    a(X, Y)
    b(X)
    assert a.last_lr == pytest.approx(0.005) and b.last_lr == pytest.approx(0.005)

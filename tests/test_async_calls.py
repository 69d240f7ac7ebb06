"""The call path without avoidable host syncs (correctness only; timings are benchmarks).

* a call whose result is not read (no annotation, ``tp.Callback``, ``-> None``) returns
  before the device has finished the step; the results are those of a blocking loop;
* the caller may refill an input buffer right after a call returns (inputs are copied);
* a call's cached state never hides a write by someone else (another job, a load);
* the fast path for repeated numpy signatures keeps every input check.
"""

import threading

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl
from jobflow._src.runtime.session import default_session

N = 384  # a step of ~1e9 flops: long enough for "not finished yet" to be certain


def _heavy(returns, name="heavy"):
    """A train job whose step takes a while; its loss depends on x only at the very end."""

    def body(x: tp.Numpy.Placeholder((N, N))):
        w = flow.get_variable("w", (N, N), initializer=flow.random_normal_initializer(stddev=N**-0.5))
        h = w
        for _ in range(12):
            h = flow.math.tanh(flow.matmul(h, w))
        loss = flow.math.reduce_mean(h) + flow.math.reduce_mean(x)
        flow.optimizer.SGD(1e-3, momentum=0.0).minimize(loss)
        return None if returns is None else loss

    body.__name__ = name
    if returns is not _NONE:
        body.__annotations__["return"] = returns
    return flow.global_function(type="train")(body)


_NONE = object()  # no annotation: a tp.Future


def _counter_ready(job) -> bool:
    return default_session().store[f"System-Train-TrainStep-{job.__name__}"].is_ready()


def _x(value=1.0):
    return np.full((N, N), value, np.float32)


@pytest.mark.parametrize("returns", [_NONE, tp.Callback[tp.Numpy], None], ids=["future", "callback", "none"])
def test_a_call_whose_result_is_not_read_does_not_wait_for_the_device(returns):
    blocking = _heavy(tp.Numpy, name="blocking")
    expected = [float(blocking(_x(i))) for i in range(3)]
    flow.clear_default_session()
    flow.config.seed(0)

    job = _heavy(returns, name="blocking")
    job.compile()
    results, received = [], []
    for i in range(3):
        results.append(job(_x(i)))
        assert not _counter_ready(job)  # returned while the step still runs
        if returns is not _NONE and returns is not None:
            results[-1](received.append)
    flow.sync_default_session()
    assert _counter_ready(job)
    if returns is _NONE:
        received = [r.get() for r in results]
    if returns is None:
        assert results == [None, None, None]
        received = [job.last_info["loss"]]
        expected = expected[-1:]
    np.testing.assert_allclose(np.asarray(received, np.float64), expected, rtol=1e-6)


@pytest.mark.parametrize("mirrored", [False, True], ids=["consistent", "mirrored"])
def test_input_buffers_may_be_refilled_right_after_a_call(mirrored):
    cfg = flow.function_config()
    if mirrored:
        cfg.default_logical_view(flow.scope.mirrored_view())
        cfg.default_placement_scope(flow.scope.placement("cpu", "0:0-1"))
    placeholder = (tp.ListNumpy if mirrored else tp.Numpy).Placeholder((N, N))

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: placeholder):
        w = flow.get_variable("w", (N, N), initializer=flow.random_normal_initializer(stddev=N**-0.5))
        h = w
        for _ in range(12):
            h = flow.math.tanh(flow.matmul(h, w))
        return flow.math.reduce_mean(h) * 0 + flow.math.reduce_sum(x)

    def call(buffer):
        return job([buffer, buffer] if mirrored else buffer)

    buffer = _x(1.0)
    expected = np.asarray(call(buffer).get()).sum()
    futures = []
    for value in (2.0, 3.0):
        buffer[:] = value
        futures.append(call(buffer))
    buffer[:] = 1000.0  # the caller reuses its buffer while the last call may still run
    got = [np.asarray(f.get()).sum() for f in futures]
    np.testing.assert_allclose(got, [2 * expected, 3 * expected], rtol=1e-6)


def _linear_jobs(config_a, config_b):
    """Two train jobs updating one variable w by SGD on mean((x.w - y)^2)."""

    def make(name, cfg):
        def body(x: tp.Numpy.Placeholder((4, 2)), y: tp.Numpy.Placeholder((4,))) -> tp.Numpy:
            w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
            loss = flow.math.square(flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y)
            flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
            return loss

        body.__name__ = name
        return flow.global_function(type="train", function_config=cfg)(body)

    return make("a", config_a), make("b", config_b)


def test_state_written_elsewhere_is_never_stale():
    two = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-1"))
    a, b = _linear_jobs(two, flow.function_config())  # w is split... replicated on 2 devices vs 1
    x = np.array([[1, 0], [0, 1], [1, 1], [2, 1]], np.float32)
    y = np.array([1, 2, 3, 4], np.float32)
    w = np.zeros(2)

    def sgd(w):
        return w - 0.1 * 2 * x.T @ (x @ w - y) / 4

    for job in (a, a, b, a, b, b, a):  # alternating jobs: each reads what the other wrote
        job(x, y)
        w = sgd(w)
        np.testing.assert_allclose(flow.get_all_variables()["w"], w, rtol=1e-5)

    flow.load_variables({"w": np.array([5.0, -1.0], np.float32)})  # a write between two calls of a
    a(x, y)
    np.testing.assert_allclose(flow.get_all_variables()["w"], sgd(np.array([5.0, -1.0])), rtol=1e-5)


def test_repeated_numpy_signatures_keep_every_check():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((2, 3)), k: tp.Numpy.Placeholder((), dtype=flow.int32)) -> tp.Numpy:
        return x * k.astype(x.dtype)

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    k = np.asarray(2, np.int32)
    np.testing.assert_array_equal(job(x, k), 2 * x)  # the fast path knows this signature now
    np.testing.assert_array_equal(job(x.astype(np.float64), k), 2 * x)  # cast, as on the first call
    np.testing.assert_array_equal(job(jnp.asarray(x), k), 2 * x)
    np.testing.assert_array_equal(job(x.view(session_impl.Blob), k), 2 * x)
    np.testing.assert_array_equal(job(x, k=k), 2 * x)
    np.testing.assert_array_equal(job(x, np.int32(3)), 3 * x)
    with pytest.raises(TypeError, match=r"job 'job' argument 'x': expected a numpy array .* got list"):
        job(x.tolist(), k)
    with pytest.raises(TypeError, match=r"argument 'k': expected dtype int32; got float32"):
        job(x, np.asarray(2, np.float32))
    with pytest.raises(
        ValueError, match=r"argument 'x': expected shape \(2, 3\) dtype float32; got shape \(3, 2\)"
    ):
        job(x.T.copy(), k)
    with pytest.raises(TypeError, match=r"takes 2 arguments \(x, k\); got 3"):
        job(x, k, k)
    assert job.num_traces == 1


def test_callbacks_of_a_non_blocking_loop_arrive_in_order_with_blocking_values():
    def make(returns):
        def job(x: tp.Numpy.Placeholder((4, 2)), y: tp.Numpy.Placeholder((4,))):
            w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
            loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y))
            flow.optimizer.SGD(0.1).minimize(loss)
            return loss

        job.__annotations__["return"] = returns
        return flow.global_function(type="train")(job)

    rng = np.random.default_rng(0)
    data = [
        (rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)) for _ in range(20)
    ]
    blocking = make(tp.Numpy)
    expected = [float(blocking(x, y)) for x, y in data]
    flow.clear_default_session()
    got, threads = [], set()

    def record(loss):
        threads.add(threading.current_thread().name)
        got.append(float(loss))

    job = make(tp.Callback[tp.Numpy])
    for x, y in data:
        job(x, y)(record)
    flow.sync_default_session()
    assert got == expected  # in call order, the values of the blocking loop
    assert threading.main_thread().name not in threads

"""``job.run_steps(*stacks)``: K steps in one call over batches stacked along a new leading
axis. The independent expectation is K single calls of the same job on the same batches
from the same initial state: the whole store (variables, momentum, the step counter, the
RNG) must agree bitwise, with dropout, a warmup schedule and clipping; the per-step
outputs agree to float rounding (inside the loop XLA may vectorize a transcendental op of
an output, such as the log of the cross-entropy, differently: last-bit differences)."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

K, BATCH, DIM = 4, 6, 5


def _train_job(returns=tp.Numpy, name="train", batch=BATCH, config=None):
    def body(x: tp.Numpy.Placeholder((batch, DIM)), y: tp.Numpy.Placeholder((batch,), dtype=flow.int32)):
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, 8, activation=flow.nn.relu, kernel_initializer=init, name="h")
        h = flow.nn.dropout(h, rate=0.4)
        logits = flow.layers.dense(h, 3, kernel_initializer=init, name="o")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        sched = flow.optimizer.CosineScheduler(0.3, 10, warmup=flow.optimizer.warmup.linear(2, 0))
        flow.optimizer.SGD(
            sched, momentum=0.9, grad_clipping=flow.optimizer.grad_clipping.by_global_norm(1.0)
        ).minimize(loss)
        return loss

    body.__name__ = name
    if returns is not None:
        body.__annotations__["return"] = returns
    return flow.global_function(type="train", function_config=config)(body)


def _stacks(k=K, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(k, batch, DIM)).astype(np.float32), rng.integers(0, 3, (k, batch)).astype(
        np.int32
    )


def _store():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


def _assert_same_store(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _assert_outputs(got, want):
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=0)


def _single_calls(make, xs, ys):
    job = make()
    outs = [job(x, y) for x, y in zip(xs, ys)]
    return outs, _store(), job.last_info


def test_run_steps_equals_single_calls():
    xs, ys = _stacks()
    outs, ref, ref_info = _single_calls(_train_job, xs, ys)
    flow.clear_default_session()
    flow.config.seed(0)
    job = _train_job()
    stacked = job.run_steps(xs, ys)
    assert stacked.shape == (K, BATCH)
    _assert_outputs(stacked, np.stack(outs))
    _assert_same_store(_store(), ref)
    assert _store()["System-Train-TrainStep-train"] == K
    assert job.last_info == pytest.approx(ref_info, rel=2e-7)  # the last step's lr, loss, step, norms
    assert job.num_traces == 1

    # The next call continues from there: a second stack equals further single calls.
    xs2, ys2 = _stacks(seed=1)
    more = job.run_steps(xs2, ys2)
    assert job.num_traces == 1  # same K and shapes: no retrace
    flow.clear_default_session()
    flow.config.seed(0)
    single = _train_job()
    for x, y in zip(np.concatenate([xs, xs2]), np.concatenate([ys, ys2])):
        last = single(x, y)
    _assert_outputs(more[-1], last)
    assert _store()["System-Train-TrainStep-train"] == 2 * K


def test_each_stack_size_compiles_once_and_single_calls_still_work():
    job = _train_job()
    xs, ys = _stacks(k=3)
    job.run_steps(xs, ys)
    job.run_steps(xs[:2], ys[:2])
    job.run_steps(xs, ys)
    job(xs[0], ys[0])
    assert job.num_traces == 3  # K=3, K=2, single
    assert _store()["System-Train-TrainStep-train"] == 3 + 2 + 3 + 1


@pytest.mark.parametrize("returns", [None, tp.Callback[tp.Numpy]], ids=["future", "callback"])
def test_non_blocking_returns_give_stacked_outputs(returns):
    xs, ys = _stacks()
    ref = _train_job().run_steps(xs, ys)
    flow.clear_default_session()
    flow.config.seed(0)
    result = _train_job(returns=returns).run_steps(xs, ys)
    if returns is None:
        got = result.get()
    else:
        received = []
        result(received.append)
        flow.sync_default_session()
        (got,) = received
    np.testing.assert_array_equal(got, ref)


def test_predict_job_run_steps_equals_single_calls():
    _train_job().compile()

    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((BATCH, DIM))) -> tuple[tp.Numpy, tp.Numpy]:
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, 8, activation=flow.nn.relu, kernel_initializer=init, name="h")
        return flow.layers.dense(h, 3, kernel_initializer=init, name="o"), flow.math.reduce_sum(x)

    xs, _ = _stacks()
    logits, sums = predict.run_steps(xs)
    assert logits.shape == (K, BATCH, 3) and sums.shape == (K,)
    for k in range(K):
        one_logits, one_sum = predict(xs[k])
        _assert_outputs(logits[k], one_logits)
        _assert_outputs(sums[k], one_sum)


def test_run_steps_on_four_devices_equals_single_calls():
    config = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-3"))
    xs, ys = _stacks(batch=8)
    outs, ref, _ = _single_calls(lambda: _train_job(batch=8, config=config), xs, ys)
    flow.clear_default_session()
    flow.config.seed(0)
    job = _train_job(batch=8, config=config)
    _assert_outputs(job.run_steps(xs, ys), np.stack(outs))
    _assert_same_store(_store(), ref)
    assert len(job.devices) == 4


def test_mirrored_run_steps_equals_single_calls():
    devices, per_device = 2, 3
    config = flow.function_config().default_logical_view(flow.scope.mirrored_view())
    config.default_placement_scope(flow.scope.placement("cpu", f"0:0-{devices - 1}"))

    def make():
        @flow.global_function(type="train", function_config=config)
        def mirrored(
            x: tp.ListNumpy.Placeholder((per_device, DIM)),
            y: tp.ListNumpy.Placeholder((per_device,), dtype=flow.int32),
        ) -> tuple[tp.Numpy, tp.ListNumpy]:
            h = flow.layers.dense(x, 3, kernel_initializer=flow.xavier_uniform_initializer(), name="o")
            loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, flow.nn.dropout(h, rate=0.3))
            flow.optimizer.SGD(0.1).minimize(loss)
            return loss, loss

        return mirrored

    xs, ys = _stacks(batch=devices * per_device)
    per_dev_x = [xs[:, d * per_device : (d + 1) * per_device] for d in range(devices)]
    per_dev_y = [ys[:, d * per_device : (d + 1) * per_device] for d in range(devices)]
    job = make()
    singles = [job([a[k] for a in per_dev_x], [a[k] for a in per_dev_y]) for k in range(K)]
    ref = _store()
    flow.clear_default_session()
    flow.config.seed(0)
    loss, per_device_loss = make().run_steps(per_dev_x, per_dev_y)
    assert loss.shape == (K, devices * per_device)
    _assert_outputs(loss, np.stack([s[0] for s in singles]))
    assert len(per_device_loss) == devices
    for d in range(devices):
        assert per_device_loss[d].shape == (K, per_device)
        _assert_outputs(per_device_loss[d], np.stack([s[1][d] for s in singles]))
    _assert_same_store(_store(), ref)


def test_run_steps_with_gradient_accumulation_equals_single_calls():
    config = flow.function_config()
    config.train.gradient_accumulation_steps(2)
    xs, ys = _stacks()
    outs, ref, _ = _single_calls(lambda: _train_job(config=config), xs, ys)
    flow.clear_default_session()
    flow.config.seed(0)
    stacked = _train_job(config=config).run_steps(xs, ys)
    assert stacked.shape == (K, 2, BATCH // 2)
    _assert_outputs(stacked, np.stack(outs))
    _assert_same_store(_store(), ref)


@pytest.mark.parametrize(
    "args, exc, pattern",
    [
        (
            (np.zeros((3, BATCH, DIM), np.float32), np.zeros((2, BATCH), np.int32)),
            ValueError,
            r"job 'train' run_steps: .* same number of steps .*\{'x': 3, 'y': 2\}",
        ),
        (
            (np.zeros((0, BATCH, DIM), np.float32), np.zeros((0, BATCH), np.int32)),
            ValueError,
            r"run_steps needs at least one step",
        ),
        (
            (np.zeros((BATCH, DIM), np.float32), np.zeros((3, BATCH), np.int32)),
            ValueError,
            r"job 'train' run_steps argument 'x': expected rank 3 \(shape \(None, 6, 5\) dtype float32\); "
            r"got shape \(6, 5\)",
        ),
        (
            (np.zeros((3, BATCH, DIM), np.float32), np.zeros((3, BATCH), np.float32)),
            TypeError,
            r"job 'train' run_steps argument 'y': expected dtype int32; got float32",
        ),
        ((np.zeros((3, BATCH, DIM), np.float32),), TypeError, r"missing argument\(s\) \['y'\]"),
    ],
)
def test_bad_stacks_raise_and_change_nothing(args, exc, pattern):
    job = _train_job()
    xs, ys = _stacks()
    job.run_steps(xs, ys)
    before = _store()
    with pytest.raises(exc, match=pattern):
        job.run_steps(*args)
    _assert_same_store(_store(), before)


def test_bad_first_run_steps_creates_nothing():
    from jobflow._src.runtime.session import default_session

    job = _train_job()
    with pytest.raises(ValueError, match="same number of steps"):
        job.run_steps(np.zeros((2, BATCH, DIM), np.float32), np.zeros((3, BATCH), np.int32))
    assert default_session().store == {}


def test_scalar_arguments_and_jobs_without_arguments():
    @flow.global_function()
    def scale(x: tp.Numpy.Placeholder((2,)), s: tp.Numpy.Placeholder(())) -> tp.Numpy:
        return x * s

    out = scale.run_steps(np.ones((3, 2), np.float32), np.array([1, 2, 3], np.float32))
    np.testing.assert_array_equal(out, [[1, 1], [2, 2], [3, 3]])

    @flow.global_function()
    def constant() -> tp.Numpy:
        return flow.math.reduce_sum(flow.get_variable("c", (2,), initializer=flow.ones_initializer()))

    with pytest.raises(TypeError, match=r"job 'constant' run_steps: the job takes no arguments to stack"):
        constant.run_steps()

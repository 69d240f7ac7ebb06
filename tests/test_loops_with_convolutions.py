"""Loops holding convolutions on the CPU (runtime/steps.py): XLA's CPU backend runs a
convolution inside a loop body without its fast kernels, so ``run_steps`` of a conv net is
compiled with its scan unrolled (up to ``steps.MAX_UNROLLED`` steps); gradient
accumulation keeps its loop (memory). Independent expectations: K single calls of the same
job (``run_steps``), one step on the whole batch (accumulation of a mean loss), and the
optimized program itself (no loop left, or the loop kept)."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import steps

BATCH = 4


def _conv_job(config=None, name="conv_train"):
    def body(x: tp.Numpy.Placeholder((BATCH, 2, 8, 8)), y: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32)):
        init = flow.xavier_uniform_initializer()
        h = flow.layers.conv2d(
            x, 4, 3, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="c"
        )
        h = flow.nn.max_pool2d(h, 2, 2, "VALID")
        logits = flow.layers.dense(flow.reshape(h, (h.shape[0], -1)), 3, kernel_initializer=init, name="o")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    body.__name__ = name
    body.__annotations__["return"] = tp.Numpy
    return flow.global_function(type="train", function_config=config)(body)


def _stacks(k, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(k, BATCH, 2, 8, 8)).astype(np.float32), rng.integers(0, 3, (k, BATCH)).astype(
        np.int32
    )


def _store():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


def _loops(text: str) -> int:
    return text.count(" while(")


def test_run_steps_of_a_conv_net_is_unrolled_and_equals_single_calls():
    xs, ys = _stacks(3)
    single = _conv_job()
    losses = [single(x, y) for x, y in zip(xs, ys)]
    want = _store()
    flow.clear_default_session()
    job = _conv_job()
    got = job.run_steps(xs, ys)
    assert _loops(job.compiled_text()) == 0 and "convolution" in job.compiled_text()
    np.testing.assert_allclose(got, np.stack(losses), rtol=1e-6)
    for name, value in _store().items():
        np.testing.assert_allclose(value, want[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_accumulation_keeps_its_loop_and_equals_one_step():
    xs, ys = _stacks(1)
    whole = _conv_job()
    whole(xs[0], ys[0])
    want = _store()
    flow.clear_default_session()
    config = flow.function_config()
    config.train.gradient_accumulation_steps(2)
    job = _conv_job(config)
    job(xs[0], ys[0])
    assert _loops(job.compiled_text()) >= 1  # unrolled, memory would grow with the micro-batches
    for name, value in _store().items():
        np.testing.assert_allclose(value, want[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_longer_scans_stay_loops(monkeypatch):
    monkeypatch.setattr(steps, "MAX_UNROLLED", 2)
    xs, ys = _stacks(3)
    job = _conv_job()
    job.run_steps(xs, ys)
    assert _loops(job.compiled_text()) >= 1


@pytest.mark.parametrize("k", [2])
def test_loops_without_convolutions_are_not_unrolled(k):
    @flow.global_function(type="train")
    def dense_train(x: tp.Numpy.Placeholder((BATCH, 5))):
        w = flow.get_variable("w", (5, 1), initializer=flow.ones_initializer())
        loss = flow.math.reduce_mean(flow.matmul(x, w))
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
        return loss

    dense_train.run_steps(np.ones((k, BATCH, 5), np.float32))
    assert _loops(dense_train.compiled_text()) >= 1

"""A job on 2 fake CPU devices (consistent view): same results as on one device."""

import jax
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl


def _train_job(placement=None, in_body=None):
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((8, 4)), y: tp.Numpy.Placeholder((8,), dtype=flow.int32)) -> tp.Numpy:
        def body():
            h = flow.layers.dense(
                x, 16, activation=flow.nn.relu, kernel_initializer=flow.xavier_uniform_initializer(), name="h"
            )
            logits = flow.layers.dense(h, 3, kernel_initializer=flow.xavier_uniform_initializer(), name="o")
            return flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)

        if in_body is not None:
            with in_body:
                loss = body()
        else:
            loss = body()
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    return train


def _run(job, steps=5):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)
    losses = [job(x, y) for _ in range(steps)]
    return losses, {k: v.numpy() for k, v in flow.get_all_variables().items()}


@pytest.mark.parametrize("how", ["config", "body"])
def test_two_devices_match_one_device(how):
    assert len(jax.devices("cpu")) >= 2
    ref_losses, ref_vars = _run(_train_job())
    flow.clear_default_session()
    two = flow.scope.placement("cpu", "0:0-1")
    job = _train_job(placement=two) if how == "config" else _train_job(in_body=two)
    losses, variables = _run(job)
    for a, b in zip(losses, ref_losses):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for k in ref_vars:
        np.testing.assert_allclose(variables[k], ref_vars[k], rtol=1e-5, atol=1e-6)
    assert len(session_impl.default_session().store["h-weight"].sharding.device_set) == 2


def test_missing_devices_error_lists_available_devices():
    with pytest.raises(
        ValueError, match=r"names device 0:99, which does not exist; available devices: cpu 0:0-"
    ):
        flow.scope.placement("cpu", "0:0-99").devices()


def test_placement_argument_errors():
    with pytest.raises(ValueError, match="device_tag"):
        flow.scope.placement("fpga", "0:0")
    with pytest.raises(ValueError, match="'0:0' or '0:0-3'"):
        flow.scope.placement("cpu", "zero")
    with pytest.raises(ValueError, match="empty"):
        flow.scope.placement("cpu", "0:3-1")


def test_batch_not_divisible_by_device_count_raises():
    job = _train_job(placement=flow.scope.placement("cpu", "0:0-2"))
    x = np.zeros((8, 4), np.float32)
    with pytest.raises(ValueError, match="size 8, which does not divide across the job's 3 devices"):
        job(x, np.zeros(8, np.int32))

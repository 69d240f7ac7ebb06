"""Consistent view on the 8 fake CPU devices: the same results as one device.

The global batch is split along each placeholder's batch axis, variables are replicated
and XLA reduces the gradients; a single-device run of the same job on the same batches
is the independent expectation (same initial values, same dropout masks: JAX's
partitionable threefry draws the same bits whatever the sharding).
"""

import jax
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.graph import scope
from jobflow._src.graph import settings as settings_impl
from jobflow._src.runtime import session as session_impl

BATCH = 16


def _conv_jobs(placement=None, batch=BATCH):
    """A small conv net with dropout (train) and its predict job sharing the weights."""
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)

    def net(x, train):
        init = flow.xavier_uniform_initializer()
        h = flow.layers.conv2d(
            x, 4, 3, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv"
        )
        h = flow.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")
        h = flow.reshape(h, [h.shape[0], -1])
        if train:
            h = flow.nn.dropout(h, rate=0.3)
        return flow.layers.dense(h, 5, kernel_initializer=init, name="fc")

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((batch, 1, 6, 6)), y: tp.Numpy.Placeholder((batch,), dtype=flow.int32)
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, net(x, True))
        flow.optimizer.SGD(0.2, momentum=0.9).minimize(loss)
        return loss

    @flow.global_function(type="predict", function_config=cfg)
    def predict(x: tp.Numpy.Placeholder((None, 1, 6, 6))) -> tp.Numpy:
        return net(x, False)

    return train, predict


def _data(steps=4):
    rng = np.random.default_rng(3)
    return [
        (rng.normal(size=(BATCH, 1, 6, 6)).astype(np.float32), rng.integers(0, 5, BATCH).astype(np.int32))
        for _ in range(steps)
    ]


def _train_and_predict(placement):
    train, predict = _conv_jobs(placement)
    losses = [train(x, y) for x, y in _data()]
    x = _data(1)[0][0]
    logits = [predict(x), predict(x[:8])]  # two batch sizes: two compiled programs
    variables = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    return losses, logits, variables, train


def test_eight_devices_match_one_device_with_dropout_and_momentum():
    assert len(jax.devices("cpu")) == 8
    ref = _train_and_predict(None)
    flow.clear_default_session()
    eight = flow.scope.placement("cpu", "0:0-7")
    losses, logits, variables, train = _train_and_predict(eight)
    for a, b in zip(losses, ref[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(logits, ref[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert sorted(variables) == sorted(ref[2])
    for k in ref[2]:
        np.testing.assert_allclose(variables[k], ref[2][k], rtol=1e-5, atol=1e-6, err_msg=k)
    store = session_impl.default_session().store
    assert store["conv-weight"].sharding.device_set == set(jax.devices("cpu"))
    assert store["conv-weight"].sharding.is_fully_replicated
    # the gradient reduction is XLA's own collective in the compiled program
    assert "all-reduce" in train.compiled_text()
    assert train.num_traces == 1


def test_inputs_are_split_along_the_batch_axis():
    cfg = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-3"))

    @flow.global_function(type="predict", function_config=cfg)
    def shards(x: tp.Numpy.Placeholder((3, 8), batch_axis=1)) -> tp.ListNumpy:
        return x * 2.0

    x = np.arange(24, dtype=np.float32).reshape(3, 8)
    pieces = shards(x)  # tp.ListNumpy in the consistent view: each device's piece, in mesh order
    assert len(pieces) == 4
    for i, p in enumerate(pieces):
        np.testing.assert_array_equal(p, 2 * x[:, 2 * i : 2 * i + 2])


def test_placement_in_body_equals_config_and_several_placements_take_their_union():
    two = flow.scope.placement("cpu", "0:0-1")

    def job(cfg, body_placement):
        @flow.global_function(type="predict", function_config=cfg)
        def sums(x: tp.Numpy.Placeholder((4, 2))) -> tp.Numpy:
            with body_placement:
                return flow.math.reduce_sum(x, axis=1)

        return sums

    x = np.ones((4, 2), np.float32)
    same = job(flow.function_config().default_placement_scope(two), two)
    np.testing.assert_array_equal(same(x), [2, 2, 2, 2])
    assert len(same._last_program.devices) == 2
    other = job(flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:2-3")), two)
    np.testing.assert_array_equal(other(x), [2, 2, 2, 2])
    assert other._last_program.devices == [jax.devices("cpu")[i] for i in (2, 3, 0, 1)]


def test_missing_devices_raise_at_the_call_and_leave_the_store_untouched():
    train, _ = _conv_jobs(flow.scope.placement("cpu", ["0:0-3", "1:0-3"]))
    x, y = _data(1)[0]
    with pytest.raises(
        ValueError, match=r"names device 1:3, which does not exist; available devices: cpu 0:0-7"
    ):
        train(x, y)
    assert session_impl.default_session().store == {}


def test_default_placement_is_every_accelerator_else_cpu(monkeypatch):
    assert flow.scope.default_placement() == flow.scope.placement("cpu", "0:0")

    class FakeGpu:
        def __init__(self, i):
            self.id, self.process_index, self.platform = i, 0, "gpu"

    gpus = [FakeGpu(i) for i in range(4)]
    real = scope._platform_devices
    monkeypatch.setattr(scope, "_platform_devices", lambda tag: gpus if tag == "gpu" else real(tag))
    assert flow.scope.default_placement() == flow.scope.placement("gpu", "0:0-3")
    assert flow.scope.default_placement().devices() == gpus
    flow.config.gpu_device_num(2)
    try:
        assert flow.scope.default_placement() == flow.scope.placement("gpu", "0:0-1")
        flow.config.gpu_device_num(0)
        assert flow.scope.default_placement() == flow.scope.placement("cpu", "0:0")
    finally:
        settings_impl._settings["gpu_device_num"] = None


def test_placement_forms_and_errors():
    assert flow.scope.placement("cpu", ["0:0-1", "0:4"]).devices() == [
        jax.devices("cpu")[i] for i in (0, 1, 4)
    ]
    assert flow.scope.placement("CUDA", "0:1") == flow.scope.placement("gpu", "0:1")
    with pytest.raises(ValueError, match="names a device twice"):
        flow.scope.placement("cpu", ["0:0-2", "0:2"]).devices()
    with pytest.raises(ValueError, match=r"machine_device_ids must be a string like '0:0-3' or a list"):
        flow.scope.placement("cpu", 3)
    with pytest.raises(TypeError, match="default_placement_scope expects flow.scope.placement"):
        flow.function_config().default_placement_scope("0:0-3")

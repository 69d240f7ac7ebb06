"""flow.config.cpu_device_num(n) / gpu_device_num(n) set the default placement to n
devices of that kind (OneFlow's meaning): jobs without a placement run on all of them."""

import jax
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.graph import scope
from jobflow._src.graph import settings as settings_impl

BATCH = 8


@pytest.fixture
def settings(monkeypatch):
    jax.devices()  # JAX has started (with the 8 test devices) before cpu_device_num runs
    monkeypatch.setitem(settings_impl._settings, "cpu_device_num", None)
    monkeypatch.setitem(settings_impl._settings, "gpu_device_num", None)
    return settings_impl._settings


def _data(steps=3):
    rng = np.random.default_rng(1)
    return [
        (rng.normal(size=(BATCH, 4)).astype(np.float32), rng.integers(0, 3, BATCH).astype(np.int32))
        for _ in range(steps)
    ]


def _net(x):
    init = flow.xavier_uniform_initializer()
    h = flow.layers.dense(x, 8, activation=flow.nn.tanh, kernel_initializer=init, name="h")
    return flow.layers.dense(h, 3, kernel_initializer=init, name="o")


def _train_consistent():
    @flow.global_function(type="train")
    def train(
        x: tp.Numpy.Placeholder((BATCH, 4)), y: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32)
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, _net(x))
        flow.optimizer.SGD(0.3, momentum=0.9).minimize(loss)
        return loss

    losses = [train(x, y) for x, y in _data()]
    return train, losses, {k: np.array(v) for k, v in flow.get_all_variables().items()}


def test_consistent_view_runs_on_n_cpu_devices_and_equals_one_device(settings):
    job1, losses1, values1 = _train_consistent()
    assert len(job1.devices) == 1
    flow.clear_default_session()
    flow.config.cpu_device_num(4)
    assert flow.scope.default_placement() == flow.scope.placement("cpu", "0:0-3")
    job4, losses4, values4 = _train_consistent()
    assert list(job4.devices) == jax.devices("cpu")[:4]
    assert "all-reduce" in job4.compiled_text()
    np.testing.assert_allclose(np.concatenate(losses4), np.concatenate(losses1), rtol=1e-5, atol=1e-6)
    for k in values1:
        np.testing.assert_allclose(values4[k], values1[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_mirrored_view_takes_one_array_per_device(settings):
    flow.config.cpu_device_num(4)
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())

    @flow.global_function(type="predict", function_config=cfg)
    def centered(x: tp.ListNumpy.Placeholder((2, 3))) -> tp.ListNumpy:
        return x - flow.math.reduce_mean(x, axis=0, keepdims=True)

    xs = [np.full((2, 3), i, np.float32) + np.arange(2, dtype=np.float32)[:, None] for i in range(4)]
    out = centered(xs)
    assert len(out) == 4 and len(centered.devices) == 4
    for got in out:
        np.testing.assert_allclose(got, [[-0.5] * 3, [0.5] * 3])


def test_gpu_device_num_zero_uses_the_cpu_devices(settings, monkeypatch):
    class FakeGpu:
        def __init__(self, i):
            self.id, self.process_index, self.platform = i, 0, "gpu"

    gpus = [FakeGpu(i) for i in range(4)]
    real = scope._platform_devices
    monkeypatch.setattr(scope, "_platform_devices", lambda tag: gpus if tag == "gpu" else real(tag))
    flow.config.cpu_device_num(2)
    assert flow.scope.default_placement() == flow.scope.placement("gpu", "0:0-3")  # GPUs first, as OneFlow
    flow.config.gpu_device_num(3)
    assert flow.scope.default_placement() == flow.scope.placement("gpu", "0:0-2")
    flow.config.gpu_device_num(0)
    assert flow.scope.default_placement() == flow.scope.placement("cpu", "0:0-1")


def test_more_devices_than_jax_has_is_a_clear_error(settings):
    with pytest.raises(ValueError, match=r"cpu_device_num\(64\): JAX has already started with 8 CPU device"):
        flow.config.cpu_device_num(64)
    assert settings["cpu_device_num"] is None
    assert flow.scope.default_placement() == flow.scope.placement("cpu", "0:0")

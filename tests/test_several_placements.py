"""Several placements in one job: one program over the union of their devices.

The model is OneFlow's hybrid-parallel LeNet tutorial (``hybrid_parallelism_lenet.py`` in
oneflow-documentation: the hidden layer under ``placement("gpu", "0:0")``, the output layer
under ``placement("gpu", "0:1")``), written here in OneFlow's own form and run through
``tools/run_oneflow_tests.rewrite``: ``import oneflow`` becomes ``import jobflow`` and, on a
machine without GPUs, ``placement("gpu", ...)`` becomes ``placement("cpu", ...)``. The
expectation is the same program without any placement, on one device.
"""

import importlib.util
import pathlib
import types

import jax
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.core.errors import JobDefinitionError
from jobflow._src.graph import scope
from jobflow._src.runtime import plan as plan_impl
from jobflow._src.runtime import session as session_impl


def _runner():
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "run_oneflow_tests.py"
    spec = importlib.util.spec_from_file_location("run_oneflow_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rewrite = _runner().rewrite

LENET = """
import oneflow as flow
import oneflow.typing as tp

BATCH_SIZE = 100


def lenet(data, train=False):
    initializer = flow.truncated_normal(0.1)
    conv1 = flow.layers.conv2d(data, 32, 5, padding="SAME", activation=flow.nn.relu,
                               kernel_initializer=initializer, name="conv1")
    pool1 = flow.nn.max_pool2d(conv1, ksize=2, strides=2, padding="SAME", name="pool1")
    conv2 = flow.layers.conv2d(pool1, 64, 5, padding="SAME", activation=flow.nn.relu,
                               kernel_initializer=initializer, name="conv2")
    pool2 = flow.nn.max_pool2d(conv2, ksize=2, strides=2, padding="SAME", name="pool2")
    reshape = flow.reshape(pool2, [pool2.shape[0], -1])
    with flow.scope.placement("gpu", "0:0"):
        hidden = flow.layers.dense(reshape, 512, activation=flow.nn.relu,
                                   kernel_initializer=initializer, name="hidden")
    if train:
        hidden = flow.nn.dropout(hidden, rate=0.5)
    with flow.scope.placement("gpu", "0:1"):
        output = flow.layers.dense(hidden, 10, kernel_initializer=initializer, name="outlayer")
    return output


def get_train_config():
    config = flow.function_config()
    config.default_data_type(flow.float)
    return config


@flow.global_function(type="train", function_config=get_train_config())
def train_job(
    images: tp.Numpy.Placeholder((BATCH_SIZE, 1, 28, 28), dtype=flow.float),
    labels: tp.Numpy.Placeholder((BATCH_SIZE,), dtype=flow.int32),
) -> tp.Numpy:
    logits = lenet(images, train=True)
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits, name="softmax_loss")
    lr_scheduler = flow.optimizer.PiecewiseConstantScheduler([], [0.1])
    flow.optimizer.SGD(lr_scheduler, momentum=0).minimize(loss)
    return loss
"""


def _load(source: str):
    module = types.ModuleType("oneflow_doc_program")
    exec(compile(source, "hybrid_parallelism_lenet.py", "exec"), module.__dict__)
    return module


def _batches(steps=3):
    rng = np.random.default_rng(0)
    return [
        (rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100).astype(np.int32))
        for _ in range(steps)
    ]


def _train(module):
    losses = [module.train_job(x, y) for x, y in _batches()]
    return losses, {k: v.numpy() for k, v in flow.get_all_variables().items()}


def test_oneflow_lenet_with_layers_on_two_devices_equals_one_device():
    without_placements = LENET.replace('with flow.scope.placement("gpu", "0:0"):', "if True:")
    without_placements = without_placements.replace('with flow.scope.placement("gpu", "0:1"):', "if True:")
    ref_losses, ref_vars = _train(_load(rewrite(without_placements)))
    flow.clear_default_session()

    module = _load(rewrite(LENET))
    losses, variables = _train(module)

    devices = module.train_job._last_program.devices
    assert devices == jax.devices("cpu")[:2]  # the union of cpu 0:0 and cpu 0:1, in that order
    store = session_impl.default_session().store
    for name in ("conv1-weight", "hidden-weight", "outlayer-weight"):
        assert store[name].sharding.device_set == set(devices)
        assert store[name].sharding.is_fully_replicated
    for a, b in zip(losses, ref_losses):  # dropout included: same random bits on 1 and 2 devices
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert sorted(variables) == sorted(ref_vars)
    for k in ref_vars:
        np.testing.assert_allclose(variables[k], ref_vars[k], rtol=1e-5, atol=1e-5, err_msg=k)


def _two_layer_job(outer, inner, cfg_placement=None):
    cfg = flow.function_config()
    if cfg_placement is not None:
        cfg.default_placement_scope(cfg_placement)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((8, 4)), y: tp.Numpy.Placeholder((8,), dtype=flow.int32)) -> tp.Numpy:
        init = flow.xavier_uniform_initializer()
        with outer:
            h = flow.layers.dense(x, 16, activation=flow.nn.relu, kernel_initializer=init, name="h")
        with inner:
            logits = flow.layers.dense(h, 3, kernel_initializer=init, name="o")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    return train


def _run(job, steps=4):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)
    return [job(x, y) for _ in range(steps)], {k: v.numpy() for k, v in flow.get_all_variables().items()}


@pytest.mark.parametrize(
    ("outer", "inner", "cfg", "expected"),
    [
        ("0:0-1", "0:2-3", None, [0, 1, 2, 3]),
        ("0:2-3", "0:0-1", None, [2, 3, 0, 1]),  # first appearance, not sorted
        ("0:1", "0:0-3", None, [1, 0, 2, 3]),  # overlapping placements: each device once
        ("0:0", "0:1", "0:2-3", [2, 3, 0, 1]),  # the config's placement comes first
    ],
)
def test_union_of_placements_in_order_and_same_numbers(outer, inner, cfg, expected):
    ref = _run(_two_layer_job(scope.placement("cpu", "0:0"), scope.placement("cpu", "0:0")))
    flow.clear_default_session()
    job = _two_layer_job(
        scope.placement("cpu", outer),
        scope.placement("cpu", inner),
        None if cfg is None else scope.placement("cpu", cfg),
    )
    losses, variables = _run(job)
    cpus = jax.devices("cpu")
    assert job._last_program.devices == [cpus[i] for i in expected]
    for a, b in zip(losses, ref[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for k in ref[1]:
        np.testing.assert_allclose(variables[k], ref[1][k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_a_gpu_placement_without_gpus_raises_as_alone_and_leaves_the_store_untouched():
    if jax.devices("cpu") and not scope._platform_devices("gpu"):
        job = _two_layer_job(scope.placement("cpu", "0:0"), scope.placement("gpu", "0:1"))
        with pytest.raises(
            ValueError, match=r"names device 0:1, which does not exist; available devices: cpu"
        ):
            _run(job, steps=1)
        assert session_impl.default_session().store == {}


class _FakeDevice:
    def __init__(self, platform, i):
        self.platform, self.id, self.process_index = platform, i, 0

    def __repr__(self):
        return f"{self.platform}{self.id}"


def _fake_platforms(monkeypatch, **counts):
    devices = {tag: [_FakeDevice(tag, i) for i in range(n)] for tag, n in counts.items()}
    monkeypatch.setattr(scope, "_platform_devices", lambda tag: devices.get(tag, []))
    return devices


def _stub(placements, cfg=None):
    config = flow.function_config()
    if cfg is not None:
        config.default_placement_scope(cfg)
    definition = types.SimpleNamespace(name="job", config=config, mirrored=False)
    disc = types.SimpleNamespace(placements=placements, data_placements=())
    return definition, disc


def test_cpu_placements_in_an_accelerator_job_are_hints(monkeypatch):
    devices = _fake_platforms(monkeypatch, cpu=2, gpu=2)
    definition, disc = _stub([scope.placement("cpu", "0:0"), scope.placement("gpu", "0:1")])
    assert plan_impl.job_devices(definition, disc) == [devices["gpu"][1]]
    definition, disc = _stub([scope.placement("gpu", "0:1")], cfg=scope.placement("cpu", "0:0-1"))
    assert plan_impl.job_devices(definition, disc) == [devices["gpu"][1]]


def test_two_kinds_of_accelerator_raise(monkeypatch):
    _fake_platforms(monkeypatch, gpu=1, tpu=1)
    definition, disc = _stub([scope.placement("gpu", "0:0"), scope.placement("tpu", "0:0")])
    with pytest.raises(JobDefinitionError, match="several kinds of accelerator"):
        plan_impl.job_devices(definition, disc)


def test_without_placements_the_default_placement_is_used(monkeypatch):
    devices = _fake_platforms(monkeypatch, cpu=3)
    definition, disc = _stub([])
    assert plan_impl.job_devices(definition, disc) == devices["cpu"][:1]


def test_the_hierarchy_of_a_placement_shapes_the_union_mesh():
    grid = scope.placement("cpu", "0:0-3", hierarchy=[2, 2])
    definition, disc = _stub([scope.placement("cpu", "0:1")], cfg=grid)
    mesh = plan_impl.job_mesh(definition, disc)
    assert mesh.axis_names == ("data", "model") and mesh.devices.shape == (2, 2)
    assert list(mesh.devices.flat) == jax.devices("cpu")[:4]
    definition, disc = _stub([scope.placement("cpu", "0:4-5")], cfg=grid)  # the union has 6 devices
    with pytest.raises(JobDefinitionError, match=r"runs on 6 devices .* hierarchies \[\(2, 2\)\]"):
        plan_impl.job_mesh(definition, disc)

"""Model parallelism with ``flow.distribute`` on 4 fake CPU devices (and a 2 x 2 mesh).

The independent expectation is the same job on one device: the same initial values (they
are drawn on the host from the variable's name), the same batches, so after 20 training
steps the losses, every variable and every optimizer slot must agree within 1e-5 whatever
the layout. The layout itself is read back from the arrays: their ``PartitionSpec`` and
the bytes each device holds (1/n of a split variable and of its slots).
"""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.graph import settings as settings_impl
from jobflow._src.runtime import session as session_impl
from jobflow._src.runtime import sharding as _sharding
from jobflow.errors import JobDefinitionError

BATCH, FEATURES, HIDDEN, CLASSES, VOCAB, WORDS = 8, 12, 16, 4, 16, 3
FOUR = flow.scope.placement("cpu", "0:0-3")
MESH_2X2 = flow.scope.placement("cpu", "0:0-3", (2, 2))
STEPS = 20

OPTIMIZERS = {
    "momentum": lambda: flow.optimizer.SGD(0.1, momentum=0.9),
    "adam": lambda: flow.optimizer.Adam(0.001),
    "lazy_adam": lambda: flow.optimizer.LazyAdam(0.001),
}


def _dense_net(distribute):
    """x -> dense(HIDDEN, tanh, model_distribute) -> dense(CLASSES)."""

    def net(x, ids):
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(
            x,
            HIDDEN,
            activation=flow.math.tanh,
            kernel_initializer=init,
            model_distribute=distribute,
            name="h",
        )
        return flow.layers.dense(h, CLASSES, kernel_initializer=init, name="o")

    return net


def _embedding_net(distribute):
    """ids -> rows of a (VOCAB, 8) table (get_variable + flow.gather) -> dense(CLASSES)."""

    def net(x, ids):
        table = flow.get_variable(
            "table",
            (VOCAB, 8),
            initializer=flow.random_normal_initializer(stddev=0.5),
            distribute=distribute,
        )
        emb = flow.reshape(flow.gather(table, ids), (BATCH, WORDS * 8))
        return flow.layers.dense(emb, CLASSES, kernel_initializer=flow.xavier_uniform_initializer(), name="o")

    return net


MODELS = {
    "dense_split0": (_dense_net, flow.distribute.split(0), "h-weight"),
    "dense_split1": (_dense_net, flow.distribute.split(1), "h-weight"),
    "embedding_split0": (_embedding_net, flow.distribute.split(0), "table"),
}


def _train_job(model, distribute, optimizer, placement, zero=False):
    build, _, _ = MODELS[model]
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)
    cfg.shard_optimizer_state(zero)
    net = build(distribute)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((BATCH, FEATURES)),
        ids: tp.Numpy.Placeholder((BATCH, WORDS), dtype=flow.int32),
        y: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32),
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, net(x, ids))
        OPTIMIZERS[optimizer]().minimize(loss)
        return loss

    return train


def _batches(steps=STEPS):
    rng = np.random.default_rng(11)
    return [
        (
            rng.normal(size=(BATCH, FEATURES)).astype(np.float32),
            rng.integers(0, VOCAB // 2, (BATCH, WORDS)).astype(np.int32),  # half the rows stay untouched
            rng.integers(0, CLASSES, BATCH).astype(np.int32),
        )
        for _ in range(steps)
    ]


def _run(model, optimizer, placement, distribute, zero=False):
    flow.clear_default_session()
    train = _train_job(model, distribute, optimizer, placement, zero)
    losses = np.stack([train(*b) for b in _batches()])
    store = session_impl.default_session().store
    return train, losses, {k: np.asarray(v) for k, v in store.items()}


def _assert_equal_runs(run, ref):
    np.testing.assert_allclose(run[1], ref[1], rtol=0, atol=1e-5)
    assert sorted(run[2]) == sorted(ref[2])
    for k, v in ref[2].items():
        np.testing.assert_allclose(run[2][k], v, rtol=0, atol=1e-5, err_msg=k)


def _store():
    return session_impl.default_session().store


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("model", list(MODELS))
def test_model_parallel_training_equals_one_device(model, optimizer):
    _, distribute, var = MODELS[model]
    ref = _run(model, optimizer, None, None)
    run = _run(model, optimizer, FOUR, distribute)
    _assert_equal_runs(run, ref)
    axes = [None] * distribute.axis + ["data"]
    store = _store()
    slots = [n for n in store if n.startswith(f"{var}-")]
    assert slots  # momentum, or m and v
    for name in [var, *slots]:
        assert store[name].sharding.spec == P(*axes), name
        sizes = {s.data.shape for s in store[name].addressable_shards}
        full = list(store[name].shape)
        full[distribute.axis] //= 4
        assert sizes == {tuple(full)}, name
    # the job's batch is still split over the same 4 devices (data and model parallel at once)
    assert run[0].input_shardings["x"].spec == P("data", None)


def test_a_split_variable_and_its_slots_take_a_quarter_of_the_bytes_per_device():
    _run("embedding_split0", "adam", FOUR, flow.distribute.split(0))
    store = _store()
    names = ["table", "table-m", "table-v"]
    per_device = _sharding.bytes_per_device([store[n] for n in names])
    whole = sum(store[n].nbytes for n in names)
    assert len(per_device) == 4 and set(per_device.values()) == {whole // 4}
    replicated = _sharding.bytes_per_device([store["o-weight"]])
    assert set(replicated.values()) == {store["o-weight"].nbytes}


def test_dense_split0_splits_the_bias_and_split1_replicates_it():
    _run("dense_split0", "momentum", FOUR, flow.distribute.split(0))
    assert _store()["h-bias"].sharding.spec == P("data")
    assert _store()["h-bias-momentum"].sharding.spec == P("data")
    _run("dense_split1", "momentum", FOUR, flow.distribute.split(1))
    assert _store()["h-bias"].sharding.spec == P()


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_data_and_model_parallel_on_a_2x2_mesh_equal_one_device(optimizer):
    ref = _run("dense_split0", optimizer, None, None)
    run = _run("dense_split0", optimizer, MESH_2X2, flow.distribute.split(0))
    _assert_equal_runs(run, ref)
    store = _store()
    assert store["h-weight"].sharding.spec == P("model")
    assert store["h-weight"].sharding.mesh.shape == {"data": 2, "model": 2}
    assert store["o-weight"].sharding.spec == P()
    assert run[0].input_shardings["x"].spec == P("data", None)  # the batch splits over "data" only
    # each device holds half the split weight: it is replicated over "data"
    assert {s.data.shape for s in store["h-weight"].addressable_shards} == {(HIDDEN // 2, FEATURES)}


def test_on_a_2x2_mesh_zero_splits_the_other_slots_over_all_four_devices():
    ref = _run("dense_split0", "adam", None, None)
    run = _run("dense_split0", "adam", MESH_2X2, flow.distribute.split(0), zero=True)
    _assert_equal_runs(run, ref)
    store = _store()
    assert store["h-weight-m"].sharding.spec == P("model")  # the variable's layout wins
    assert store["o-weight-m"].sharding.spec == P(("data", "model"))  # (4, 16): rows over all 4
    assert store["o-weight"].sharding.spec == P()


def test_a_two_entry_layout_names_both_mesh_axes():
    ref = _run("embedding_split0", "adam", None, None)
    run = _run("embedding_split0", "adam", MESH_2X2, [flow.distribute.split(0), flow.distribute.split(1)])
    _assert_equal_runs(run, ref)
    assert _store()["table"].sharding.spec == P("data", "model")
    assert _store()["table-v"].sharding.spec == P("data", "model")
    run = _run("embedding_split0", "adam", MESH_2X2, ["S(0)", "S(0)"])
    _assert_equal_runs(run, ref)
    assert _store()["table"].sharding.spec == P(("data", "model"))


def test_broadcast_keeps_a_variable_whole_under_shard_variables():
    cfg = flow.function_config().default_placement_scope(FOUR).shard_variables(True)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((BATCH, FEATURES))) -> tp.Numpy:
        init = flow.ones_initializer()
        w = flow.get_variable("w", (FEATURES, 8), initializer=init, distribute=flow.distribute.broadcast())
        v = flow.get_variable("v", (8, 4), initializer=init, distribute=flow.distribute.auto())
        loss = flow.math.reduce_mean(flow.matmul(flow.matmul(x, w), v))
        flow.optimizer.SGD(0.1).minimize(loss)
        return loss

    train(np.ones((BATCH, FEATURES), np.float32))
    assert _store()["w"].sharding.spec == P()
    assert _store()["v"].sharding.spec == P("data")  # auto: the ZeRO switch decides


# ------------------------------------------------------------------------------ bad inputs


def _job_with(distribute, shape=(FEATURES, 6), placement=FOUR, mirrored=False):
    cfg = flow.function_config().default_placement_scope(placement)
    if mirrored:
        cfg.default_logical_view(flow.scope.mirrored_view())
        ph = tp.ListNumpy.Placeholder((BATCH // 4, FEATURES))
    else:
        ph = tp.Numpy.Placeholder((BATCH, FEATURES))

    def body(x):
        w = flow.get_variable("w", shape, initializer=flow.ones_initializer(), distribute=distribute)
        u = flow.get_variable("u", (3,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_mean(flow.matmul(x, w)) + flow.math.reduce_sum(u)
        flow.optimizer.Adam(0.1).minimize(loss)
        return loss

    body.__annotations__ = {"x": ph, "return": tp.ListNumpy if mirrored else tp.Numpy}
    return flow.global_function(type="train", function_config=cfg)(body)


def _assert_store_empty():
    assert not [n for n in _store() if n in ("w", "u") or n.startswith("w-")]


def _uneven_run(distribute, placement, shape):
    """Three Adam steps of ``_job_with``: (job, losses, {name: value})."""
    flow.clear_default_session()
    job = _job_with(distribute, shape=shape, placement=placement)
    x = np.random.default_rng(3).normal(size=(BATCH, FEATURES)).astype(np.float32)
    losses = np.stack([job(x) for _ in range(3)])
    return job, losses, {k: np.asarray(v) for k, v in _store().items()}


@pytest.mark.parametrize(
    ("distribute", "placement", "shape", "spec", "parts"),
    [
        # split(1) of a (12, 6) variable on 4 devices: 6 does not divide by 4
        (flow.distribute.split(1), FOUR, (FEATURES, 6), P(), ["axis 1 has size 6", "4 devices"]),
        # one distribute on a 2 x 2 mesh names the "model" axis: 5 does not divide by 2
        (
            flow.distribute.split(1),
            MESH_2X2,
            (FEATURES, 5),
            P(),
            ["axis 1 has size 5", "2 devices", "'model'"],
        ),
        # ["S(1)", "S(1)"] splits axis 1 over all 4 devices of the 2 x 2 mesh: 6 does not divide by 4
        (
            ["S(1)", "S(1)"],
            MESH_2X2,
            (FEATURES, 6),
            P(),
            ["axis 1 has size 6", "4 devices", "'data', 'model'"],
        ),
        # a two-entry layout keeps its even split (axis 0 over "data") and stores axis 1 whole
        (
            [flow.distribute.split(0), flow.distribute.split(1)],
            MESH_2X2,
            (FEATURES, 5),
            P("data"),
            ["axis 1 has size 5", "2 devices", "'model'"],
        ),
    ],
)
def test_an_uneven_split_is_stored_whole_with_one_warning_and_equals_one_device(
    distribute, placement, shape, spec, parts
):
    ref = _uneven_run(None, flow.scope.placement("cpu", "0:0"), shape)
    with pytest.warns(flow.errors.LayoutWarning) as record:
        run = _uneven_run(distribute, placement, shape)
    assert len(record) == 1  # one warning for the job and variable, not one per call
    msg = str(record[0].message)
    for part in ("job 'body'", "variable 'w'", str(shape), *parts, "stores", "whole", "not divided"):
        assert part in msg, (part, msg)
    assert issubclass(flow.errors.LayoutWarning, UserWarning)
    _assert_equal_runs(run, ref)
    store = _store()
    for name in ("w", "w-m", "w-v"):  # the variable and its Adam slots
        assert store[name].sharding.spec == spec, name
        assert store[name].sharding.is_fully_replicated == (spec == P()), name
        assert len(store[name].sharding.device_set) == 4, name
    if spec == P():
        assert {s.data.shape for s in store["w"].addressable_shards} == {shape}  # whole on every device


def test_an_uneven_split_warns_once_per_job_and_variable_across_calls_and_jobs():
    job = _job_with(flow.distribute.split(1))
    x = np.ones((BATCH, FEATURES), np.float32)
    with pytest.warns(flow.errors.LayoutWarning, match=r"'w' \(shape \(12, 6\)\)") as record:
        job(x)
        job(x)
        job.run_steps(np.stack([x, x]))
    assert len(record) == 1
    assert record[0].filename == __file__  # it points at the job's call, not into jobflow


def test_split_of_an_axis_the_variable_lacks_raises_and_creates_nothing():
    job = _job_with(flow.distribute.split(5))
    with pytest.raises(ValueError, match=r"get_variable\('w'\).*split\(5\).*\(12, 6\)"):
        job(np.ones((BATCH, FEATURES), np.float32))
    _assert_store_empty()


def test_a_distribute_of_a_wrong_type_raises_echoing_it_and_creates_nothing():
    job = _job_with(0)
    with pytest.raises(TypeError, match=r"get_variable\('w'\) distribute must be .*got 0"):
        job(np.ones((BATCH, FEATURES), np.float32))
    _assert_store_empty()


def test_a_two_entry_layout_on_a_one_axis_mesh_raises():
    job = _job_with([flow.distribute.broadcast(), flow.distribute.split(0)])
    with pytest.raises(JobDefinitionError, match=r"'w' has the 2-D layout \[.*\].*hierarchy=\(data, model\)"):
        job(np.ones((BATCH, FEATURES), np.float32))
    _assert_store_empty()


def test_a_split_variable_in_the_mirrored_view_raises():
    job = _job_with(flow.distribute.split(0), mirrored=True)
    with pytest.raises(
        JobDefinitionError, match=r"'w' has distribute=flow.distribute.split\(0\).*consistent view"
    ):
        job([np.ones((BATCH // 4, FEATURES), np.float32)] * 4)
    _assert_store_empty()


def test_the_mirrored_view_on_a_2d_hierarchy_raises():
    job = _job_with(None, placement=MESH_2X2, mirrored=True)
    with pytest.raises(JobDefinitionError, match=r"mirrored view .*hierarchy=\(2, 2\)"):
        job([np.ones((BATCH // 4, FEATURES), np.float32)] * 4)
    _assert_store_empty()


def test_on_a_2d_mesh_the_batch_divides_by_the_data_axis_only():
    cfg = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-3", (2, 2)))

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.Numpy.Placeholder((6, 4))) -> tp.Numpy:  # 6 divides by 2, not by 4
        return x * 2

    np.testing.assert_array_equal(job(np.ones((6, 4), np.float32)), np.full((6, 4), 2, np.float32))


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_of_split_variables_keeps_values_and_layout(tmp_path):
    train = _train_job("embedding_split0", flow.distribute.split(0), "adam", FOUR)
    batches = _batches(4)
    for b in batches[:2]:
        train(*b)
    saved = {k: np.asarray(v) for k, v in _store().items()}
    flow.checkpoint.save(str(tmp_path / "ckpt"))
    after_save = [train(*b) for b in batches[2:]]
    flow.checkpoint.load(str(tmp_path / "ckpt"))
    for k, v in saved.items():
        np.testing.assert_array_equal(np.asarray(_store()[k]), v, err_msg=k)
    assert _store()["table"].sharding.spec == P("data")
    assert _store()["table-m"].sharding.spec == P("data")
    np.testing.assert_array_equal([train(*b) for b in batches[2:]], after_save)  # resumes exactly


# ------------------------------------------------- OneFlow's hybrid-parallel tutorial program

# The MLP of OneFlow's "model_mixed_parallel" tutorial (oneflow-documentation,
# extended_topics/model_mixed_parallel.md), written as a OneFlow program would be: the hidden
# layer data-parallel, the output layer model-parallel with model_distribute=split(axis=0).
# Only the import names jobflow; the harness gives it fake CPU devices and synthetic MNIST.
TUTORIAL_MLP = """
import jobflow as flow
import jobflow.typing as tp

BATCH_SIZE = 100


def mlp(data):
    initializer = flow.truncated_normal(0.1)
    reshape = flow.reshape(data, [data.shape[0], -1])
    hidden = flow.layers.dense(reshape, 512, activation=flow.nn.relu, kernel_initializer=initializer, name="dense1")
    return flow.layers.dense(
        hidden, 10, kernel_initializer=initializer, model_distribute=flow.distribute.split(axis=0), name="dense2"
    )


def get_train_config():
    config = flow.function_config()
    config.default_data_type(flow.float)
    return config


@flow.global_function(type="train", function_config=get_train_config())
def train_job(
    images: tp.Numpy.Placeholder((BATCH_SIZE, 1, 28, 28), dtype=flow.float),
    labels: tp.Numpy.Placeholder((BATCH_SIZE,), dtype=flow.int32),
) -> tp.Numpy:
    logits = mlp(images)
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits, name="softmax_loss")
    lr_scheduler = flow.optimizer.PiecewiseConstantScheduler([], [0.1])
    flow.optimizer.SGD(lr_scheduler, momentum=0).minimize(loss)
    return loss


flow.config.gpu_device_num(2)
check_point = flow.train.CheckPoint()
check_point.init()
"""


def _tutorial_run(devices):
    flow.clear_default_session()
    flow.config.cpu_device_num(devices)  # no GPUs here: the default placement is n CPU devices
    program: dict = {}
    exec(compile(TUTORIAL_MLP, "mixed_parallel_mlp.py", "exec"), program)
    rng = np.random.default_rng(2)
    losses = [
        program["train_job"](
            rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100).astype(np.int32)
        )
        for _ in range(5)
    ]
    job = program["train_job"]
    return job, np.stack(losses), {k: np.asarray(v) for k, v in _store().items()}


def test_the_tutorials_hybrid_parallel_mlp_runs_unchanged_and_equals_one_device(monkeypatch):
    jax.devices()  # JAX has started (with the 8 test devices) before cpu_device_num runs
    monkeypatch.setitem(settings_impl._settings, "cpu_device_num", None)
    monkeypatch.setitem(settings_impl._settings, "gpu_device_num", None)
    ref = _tutorial_run(1)
    run = _tutorial_run(2)
    assert len(run[0].devices) == 2
    _assert_equal_runs(run, ref)
    assert run[0].state_shardings["dense2-weight"].spec == P("data")  # (10, 512): 5 rows per device
    assert run[0].state_shardings["dense1-weight"].spec == P()
    assert run[0].input_shardings["images"].spec == P("data", None, None, None)


def test_on_4_devices_the_tutorials_10_unit_split_layer_is_stored_whole_and_equals_one_device(monkeypatch):
    jax.devices()
    monkeypatch.setitem(settings_impl._settings, "cpu_device_num", None)
    monkeypatch.setitem(settings_impl._settings, "gpu_device_num", None)
    ref = _tutorial_run(1)
    # CheckPoint.init() plans the job: one warning per split variable of 10 rows (weight, bias)
    with pytest.warns(
        flow.errors.LayoutWarning, match=r"'dense2-(weight|bias)' .*axis 0 has size 10.* 4 devices"
    ) as record:
        run = _tutorial_run(4)
    assert sorted(str(w.message).split("'")[3] for w in record) == ["dense2-bias", "dense2-weight"]
    assert len(run[0].devices) == 4
    _assert_equal_runs(run, ref)
    for name in ("dense2-weight", "dense2-bias"):
        assert run[0].state_shardings[name].spec == P()
        assert _store()[name].sharding.is_fully_replicated
    assert run[0].input_shardings["images"].spec == P("data", None, None, None)  # the batch is still split


def test_a_job_sharing_a_split_variable_uses_its_own_layout():
    train = _train_job("dense_split0", flow.distribute.split(0), "momentum", FOUR)
    for b in _batches(2):
        train(*b)
    assert _store()["h-weight"].sharding.spec == P("data")
    cfg = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-2"))
    net = _dense_net(None)  # the same variables, no layout: replicated on these 3 devices

    @flow.global_function(type="predict", function_config=cfg)
    def predict(x: tp.Numpy.Placeholder((6, FEATURES))) -> tp.Numpy:
        return net(x, None)

    x = np.random.default_rng(0).normal(size=(6, FEATURES)).astype(np.float32)
    w = {k: np.asarray(v) for k, v in _store().items()}
    h = np.tanh(x @ w["h-weight"].T + w["h-bias"])
    np.testing.assert_allclose(predict(x), h @ w["o-weight"].T + w["o-bias"], rtol=1e-5, atol=1e-6)
    assert predict.state_shardings["h-weight"].spec == P()
    np.testing.assert_allclose(np.asarray(train(*_batches(1)[0])).shape, (BATCH,))  # the train job still runs
    assert _store()["h-weight"].sharding.spec == P("data")


def _accumulating_run(placement, distribute):
    flow.clear_default_session()
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)
    cfg.train.gradient_accumulation_steps(2)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((16, FEATURES)), y: tp.Numpy.Placeholder((16,), dtype=flow.int32)
    ) -> tp.Numpy:
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(
            x,
            HIDDEN,
            activation=flow.math.tanh,
            kernel_initializer=init,
            model_distribute=distribute,
            name="h",
        )
        h = flow.parallel_cast(h, distribute=distribute)
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(
            y, flow.layers.dense(h, CLASSES, kernel_initializer=init, name="o")
        )
        flow.optimizer.Adam(0.001).minimize(loss)
        return loss

    rng = np.random.default_rng(4)
    xs = rng.normal(size=(6, 16, FEATURES)).astype(np.float32)
    ys = rng.integers(0, CLASSES, (6, 16)).astype(np.int32)
    losses = [train(xs[i], ys[i]) for i in range(3)]
    losses.extend(train.run_steps(xs[3:], ys[3:]))
    return train, np.stack(losses), {k: np.asarray(v) for k, v in _store().items()}


def test_gradient_accumulation_and_run_steps_with_split_variables_equal_one_device():
    ref = _accumulating_run(None, None)
    run = _accumulating_run(MESH_2X2, flow.distribute.split(1))
    _assert_equal_runs(run, ref)
    assert _store()["h-weight"].sharding.spec == P(None, "model")

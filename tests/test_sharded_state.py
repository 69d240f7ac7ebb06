"""Sharded state (``cfg.shard_optimizer_state(True)``, ``cfg.shard_variables(True)``).

Optimizer slots (and optionally trainable variables) are split across the job's 8 fake
CPU devices through their shardings. The expectation is the replicated run of the same
job: equal losses, variables and slots (float tolerance), with each device holding
1/8 of every split array (read from the arrays' shards and from XLA's memory analysis).
"""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl
from jobflow._src.runtime import sharding as _sharding

EIGHT = flow.scope.placement("cpu", "0:0-7")


def _jobs(shard_slots=False, shard_vars=False):
    cfg = flow.function_config().default_placement_scope(EIGHT)
    cfg.shard_optimizer_state(shard_slots).shard_variables(shard_vars)

    def net(x):
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, 32, activation=flow.nn.relu, kernel_initializer=init, name="h")
        return flow.layers.dense(h, 3, kernel_initializer=init, name="o")

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((16, 16)), y: tp.Numpy.Placeholder((16,), dtype=flow.int32)
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, net(x))
        flow.optimizer.SGD(
            0.1,
            momentum=0.9,
            grad_clipping=flow.optimizer.grad_clipping.by_global_norm(1.0),
        ).minimize(loss)
        return loss

    @flow.global_function(type="predict")  # default placement (cpu 0:0), shares the variables
    def predict(x: tp.Numpy.Placeholder((16, 16))) -> tp.Numpy:
        return net(x)

    return train, predict


def _data(steps=4):
    rng = np.random.default_rng(7)
    return [
        (rng.normal(size=(16, 16)).astype(np.float32), rng.integers(0, 3, 16).astype(np.int32))
        for _ in range(steps)
    ]


def _run(shard_slots=False, shard_vars=False):
    train, predict = _jobs(shard_slots, shard_vars)
    losses = [train(x, y) for x, y in _data()]
    logits = predict(_data(1)[0][0])
    return train, losses, logits, {k: v.numpy() for k, v in flow.get_all_variables().items()}


def _store():
    return session_impl.default_session().store


def _assert_same(run, ref):
    for a, b in zip(run[1], ref[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run[2], ref[2], rtol=1e-5, atol=1e-5)
    assert sorted(run[3]) == sorted(ref[3])
    for k in ref[3]:
        np.testing.assert_allclose(run[3][k], ref[3][k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_sharded_optimizer_state_equals_replicated_and_uses_an_eighth_of_the_memory():
    ref = _run()
    ref_train = ref[0]
    slots = sorted(n for n in _store() if n.endswith("-momentum"))
    ref_bytes = _sharding.bytes_per_device(_store()[n] for n in slots)
    ref_args = ref_train._last_program.compiled.memory_analysis().argument_size_in_bytes
    flow.clear_default_session()

    run = _run(shard_slots=True)
    _assert_same(run, ref)
    store = _store()
    # h-weight-momentum (32, 16) and h-bias-momentum (32,) split on axis 0, o-weight-momentum
    # (3, 32) on axis 1; o-bias-momentum (3,) has no dimension divisible by 8: replicated
    assert store["h-weight-momentum"].sharding.spec == P("data")
    assert {s.data.shape for s in store["h-weight-momentum"].addressable_shards} == {(4, 16)}
    assert store["o-weight-momentum"].sharding.spec == P(None, "data")
    assert store["o-bias-momentum"].sharding.is_fully_replicated
    assert all(store[n].sharding.is_fully_replicated for n in ("h-weight", "o-weight", "h-bias"))
    # the store keeps the layout the program asks for: no resharding at the next call
    program = run[0]._last_program
    assert all(store[n].sharding == program.state_shardings[n] for n in program.mutable)
    sharded_bytes = _sharding.bytes_per_device(store[n] for n in slots)
    assert len(sharded_bytes) == 8
    expected = (32 * 16 + 32 + 3 * 32) * 4 // 8 + 3 * 4
    assert set(sharded_bytes.values()) == {expected}
    assert set(ref_bytes.values()) == {(32 * 16 + 32 + 3 * 32 + 3) * 4}
    saved = (32 * 16 + 32 + 3 * 32) * 4 * 7 // 8
    assert program.compiled.memory_analysis().argument_size_in_bytes == ref_args - saved


def test_sharded_variables_equal_replicated_and_load_keeps_the_layout():
    ref = _run()
    flow.clear_default_session()
    run = _run(shard_slots=True, shard_vars=True)
    _assert_same(run, ref)
    store = _store()
    assert store["h-weight"].sharding.spec == P("data")
    assert store["h-weight-momentum"].sharding.spec == P("data")
    assert "all-gather" in run[0].compiled_text()

    # load_variables writes into the existing layout; a further step matches the
    # replicated job after the same load
    values = {k: v * 0.5 for k, v in run[3].items() if k in ("h-weight", "o-weight")}
    flow.load_variables(values)
    assert _store()["h-weight"].sharding.spec == P("data")
    np.testing.assert_array_equal(flow.get_all_variables()["h-weight"], values["h-weight"])
    x, y = _data(1)[0]
    after = run[0](x, y)
    flow.clear_default_session()
    train, _ = _jobs()
    train(x, y)  # creates the state, then overwrite it with the sharded run's state
    flow.load_variables({**run[3], **values})
    np.testing.assert_allclose(after, train(x, y), rtol=1e-5, atol=1e-6)


def test_switches_take_booleans():
    cfg = flow.function_config()
    assert cfg.settings["shard_optimizer_state"] is False and cfg.settings["shard_variables"] is False
    with pytest.raises(
        TypeError, match=r"function_config.shard_optimizer_state expects True or False; got 'yes'"
    ):
        cfg.shard_optimizer_state("yes")
    with pytest.raises(TypeError, match=r"function_config.shard_variables expects True or False; got 1"):
        cfg.shard_variables(1)
    assert cfg.settings["shard_optimizer_state"] is False


@pytest.mark.parametrize(
    "shape, n, spec",
    [
        ((16, 3), 8, P("data")),
        ((3, 16), 8, P(None, "data")),
        ((3,), 8, P()),
        ((), 8, P()),
        ((4, 8), 8, P(None, "data")),
        ((24,), 8, P("data")),
        ((16,), 1, P()),
    ],
)
def test_split_rule_takes_the_first_dimension_the_device_count_divides(shape, n, spec):
    assert _sharding.split_spec(shape, n) == spec


def test_single_device_sharding_is_replication():
    cfg = flow.function_config().shard_optimizer_state(True)

    @flow.global_function(type="train", function_config=cfg)
    def fit(x: tp.Numpy.Placeholder((4, 2))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(x * flow.reshape(w, (1, 2)), axis=1)
        flow.optimizer.SGD(0.5, momentum=0.5).minimize(loss)
        return loss

    fit(np.ones((4, 2), np.float32))
    assert _store()["w-momentum"].sharding.device_set == {jax.devices("cpu")[0]}
    np.testing.assert_allclose(flow.get_all_variables()["w"], [0.5, 0.5])

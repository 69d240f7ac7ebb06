"""Row-sparse updates of embedding tables (``jobflow/_src/optimizer/sparse_rows.py``).

A table read only through ``flow.gather`` under a lazy rule (LazyAdam, or
``indexed_slices_optimizer_conf`` with an elementwise rule: SGD, SGDW, Adam, AdamW,
Momentum, RMSProp, Adagrad, FTRL) gets its gradient as
(unique ids, summed rows) and its update reads and writes only those rows.

Expectations: the dense-masked path of the same job (``plan.ROW_SPARSE = False``, the
implementation before row-sparse updates: dense gradient, rows with an all-zero gradient
kept) over 20 steps with duplicate ids, two gathers of the table, a gathered row whose
gradient is exactly zero, a negative id and an out-of-range id; a float64 numpy LazyAdam; invariants
(rows never touched keep their bits); the compiled step's flops, which must not grow
with the table.
"""

import re

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.optimizer.sparse_rows import RowWrite, coalesce, take_rows, write
from jobflow._src.runtime import plan as plan_impl

O = flow.optimizer
ROWS, DIM, STEPS = 40, 4, 20
NEVER = list(range(14, ROWS - 1))  # rows no step gathers (ids are drawn from [0, 14), and -1)


def _data(steps=STEPS, n=ROWS):
    """Per step: ids (8, 3) with duplicates, row 0 only at masked-out places (gathered,
    exactly-zero gradient), an out-of-range id; ids2 (4,) a second gather; y (8,)."""
    rng = np.random.default_rng(3)
    out = []
    for _ in range(steps):
        ids = rng.integers(1, 14, size=(8, 3)).astype(np.int32)
        ids[1, :] = ids[1, 0]  # the same row three times in one example
        mask = np.ones((8, 3), np.float32)
        ids[7, 2], mask[7, 2] = 0, 0.0  # gathered, contributes nothing
        ids[6, 2] = n + 5  # out of range: flow.gather reads zeros, no gradient
        ids[5, 0] = -1  # the last row, as flow.gather (jnp.take) reads it
        ids2 = rng.integers(1, 14, size=(4,)).astype(np.int32)
        out.append((ids, ids2, mask, rng.normal(size=8).astype(np.float32)))
    return out


def _job(make_opt, conf=True, cfg=None, use_table=None, n=ROWS, regularizer=None, distribute=None):
    cfg = cfg or flow.function_config()
    if conf:
        cfg.indexed_slices_optimizer_conf(dict(include_op_names=dict(op_name=["emb"])))

    @flow.global_function(type="train", function_config=cfg)
    def train(
        ids: tp.Numpy.Placeholder((8, 3), dtype=flow.int32),
        ids2: tp.Numpy.Placeholder((4,), dtype=flow.int32),
        mask: tp.Numpy.Placeholder((8, 3)),
        y: tp.Numpy.Placeholder((8,)),
    ) -> tp.Numpy:
        table = flow.get_variable(
            "emb",
            (n, DIM),
            initializer=flow.random_normal_initializer(stddev=0.1, seed=1),
            regularizer=regularizer,
            distribute=distribute,
        )
        w = flow.get_variable("w", (DIM,), initializer=flow.ones_initializer())
        e = flow.gather(table, ids) * flow.reshape(mask, (8, 3, 1))
        pred = flow.math.reduce_sum(e * flow.reshape(w, (1, 1, DIM)), axis=[1, 2]) + flow.math.reduce_sum(
            flow.gather(table, ids2)
        )
        loss = flow.math.square(pred - y)
        if use_table is not None:
            loss = loss + use_table(table)
        make_opt().minimize(loss)
        return loss

    return train


INITIAL: dict = {}  # the variables before the first step of the last _run


def _run(train, data=None, sparse=True):
    """``(states, infos)`` after each step of ``data``, the row-sparse path on or off."""
    plan_impl.ROW_SPARSE = sparse
    try:
        train.compile()
        INITIAL.clear()
        INITIAL.update({k: np.array(v) for k, v in flow.get_all_variables().items()})
        states, infos = [], []
        for ids, ids2, mask, y in data or _data():
            train(ids, ids2, mask, y)
            states.append({k: np.array(v) for k, v in flow.get_all_variables().items()})
            infos.append(dict(train.last_info))
    finally:
        plan_impl.ROW_SPARSE = True
    return states, infos


def _gathered(train) -> list:
    return [n for p in train._plans.values() for n in p.gathered]


def _assert_close_states(got, want, rtol=2e-5, atol=2e-6):
    """Equal up to float32 rounding: XLA compiles the two programs' multiply-adds
    differently (a contraction into an fma in one of them); the difference is a few
    ulps per step."""
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in g:
            np.testing.assert_allclose(g[k], w[k], rtol=rtol, atol=atol, err_msg=k)


OPTIMIZERS = {
    "sgd": (lambda: O.SGD(0.01, momentum=0), True, []),
    "sgd_momentum": (lambda: O.SGD(0.01, momentum=0.9), True, ["momentum"]),
    "sgdw": (lambda: O.SGDW(0.01, momentum=0.9, weight_decay=0.1), True, ["momentum"]),
    "adam": (lambda: O.Adam(0.05), True, ["m", "v"]),
    "adamw": (lambda: O.AdamW(0.05, weight_decay=0.1, do_bias_correction=True), True, ["m", "v"]),
    "pytorch_adamw": (lambda: O.pytorch.AdamW(0.05, weight_decay=0.1), True, ["m", "v"]),
    "momentum_coupled_decay": (lambda: O.Momentum(0.01, 0.9, weight_decay=0.1), True, ["momentum"]),
    "rmsprop_centered": (lambda: O.RMSProp(0.01, centered=True, momentum=0.5), True, ["momentum"]),
    "adagrad": (lambda: O.Adagrad(0.05, weight_decay=0.1), True, []),
    "ftrl": (lambda: O.Ftrl(0.05, l1=0.001, l2=0.01), True, ["linear"]),
    "proximal_adagrad": (lambda: O.ProximalAdagrad(0.05, l1=0.001, l2=0.01), True, []),
    "lazy_adam": (lambda: O.LazyAdam(0.05), False, ["m", "v"]),
    "lazy_adam_global_clip": (
        lambda: O.LazyAdam(0.05, grad_clipping=O.grad_clipping.by_global_norm(0.5)),
        False,
        ["m", "v"],
    ),
    "lazy_adam_norm_clip": (
        lambda: O.LazyAdam(0.05, grad_clipping=O.grad_clipping.by_norm(0.5)),
        False,
        ["m", "v"],
    ),
    "lazy_adam_value_clip": (
        lambda: O.LazyAdam(0.05, grad_clipping=O.grad_clipping.by_value(0.2)),
        False,
        ["m", "v"],
    ),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_row_sparse_equals_the_dense_masked_update(name):
    make_opt, conf, slots = OPTIMIZERS[name]
    dense, dense_info = _run(_job(make_opt, conf), sparse=False)
    flow.clear_default_session()
    train = _job(make_opt, conf)
    sparse, sparse_info = _run(train)
    assert _gathered(train) == ["emb"]
    _assert_close_states(sparse, dense)
    first = sparse[0]["emb"]
    init = INITIAL["emb"]
    for s in sparse:
        # never gathered, and gathered only with a zero gradient (row 0): the bits of the start
        assert np.array_equal(s["emb"][NEVER], init[NEVER])
        assert np.array_equal(s["emb"][0], init[0])
        for slot in slots:
            assert not np.any(s[f"emb-{slot}"][[0, *NEVER]])
    assert not np.array_equal(first[1:14], init[1:14])  # the touched rows moved
    if "clip" in name:
        for a, b in zip(sparse_info, dense_info):
            np.testing.assert_allclose(a["grad_norm"], b["grad_norm"], rtol=1e-6)
            np.testing.assert_allclose(a["global_grad_norm"], b["global_grad_norm"], rtol=1e-6)


def test_lazy_adam_matches_a_float64_reference():
    # OneFlow's LazyAdam, t = step + 1: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); on the rows
    # whose summed gradient is non-zero: m, v updated, w -= lr_t m / (sqrt(v) + eps)
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    train = _job(lambda: O.LazyAdam(lr, beta1=b1, beta2=b2, epsilon=eps), conf=False)
    data = _data()
    states, _ = _run(train, data)
    t = INITIAL["emb"].astype(np.float64)
    w = INITIAL["w"].astype(np.float64)
    state = {"emb": (np.zeros_like(t), np.zeros_like(t)), "w": (np.zeros_like(w), np.zeros_like(w))}

    def lazy_adam(name, x, g, step):
        m, v = state[name]
        active = np.any(g != 0, axis=1, keepdims=True) if g.ndim > 1 else g != 0
        m_new, v_new = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2 ** (step + 1)) / (1 - b1 ** (step + 1))
        state[name] = (np.where(active, m_new, m), np.where(active, v_new, v))
        return np.where(active, x - lr_t * m_new / (np.sqrt(v_new) + eps), x)

    for step, ((ids, ids2, mask, y), got) in enumerate(zip(data, states)):
        valid = (ids < ROWS) & (ids >= -ROWS)
        e = np.where(valid[..., None], t[np.where(valid, ids, 0)], 0.0) * mask[..., None]
        pred = (e * w).sum(axis=(1, 2)) + t[ids2].sum()
        dl = 2 * (pred - y) / 8  # d mean((pred - y)^2) / d pred
        g, gw = np.zeros_like(t), (dl[:, None, None] * e).sum(axis=(0, 1))
        for b in range(8):
            for j in range(3):
                if valid[b, j]:
                    g[ids[b, j]] += dl[b] * mask[b, j] * w
            np.add.at(g, ids2, dl[b])
        t, w = lazy_adam("emb", t, g, step), lazy_adam("w", w, gw, step)
        np.testing.assert_allclose(got["emb"], t, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["w"], w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["emb-m"], state["emb"][0], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(got["emb-v"], state["emb"][1], rtol=1e-4, atol=1e-9)


def test_only_tables_read_only_through_gather_under_a_lazy_rule_go_row_sparse():
    cases = {
        "used densely too": dict(
            make_opt=lambda: O.LazyAdam(0.05), conf=False, use_table=lambda t: 0.1 * flow.math.reduce_mean(t)
        ),
        "dense Adam": dict(make_opt=lambda: O.Adam(0.05), conf=False),
        "custom clipping": dict(
            make_opt=lambda: O.LazyAdam(0.05, grad_clipping=lambda g: (g, 0.0)), conf=False
        ),
        "regularizer": dict(
            make_opt=lambda: O.LazyAdam(0.05), conf=False, regularizer=flow.regularizers.l2(0.1)
        ),
    }
    for case, kwargs in cases.items():
        flow.clear_default_session()
        train = _job(**kwargs)
        _run(train, _data(2))
        assert _gathered(train) == [], case
    # a table used densely as well gets the dense gradient (and so every row's update)
    flow.clear_default_session()
    train = _job(lambda: O.SGD(0.01, momentum=0), conf=True, use_table=lambda t: flow.math.reduce_sum(t))
    states, _ = _run(train, _data(1))
    assert not np.array_equal(states[0]["emb"][NEVER], INITIAL["emb"][NEVER])


def test_dynamic_loss_scale_and_a_skipped_step():
    def make():
        return O.LazyAdam(0.05, loss_scale_policy=O.loss_scale.dynamic_loss_scale(1024.0, increment_period=4))

    data = _data(8)
    ids, ids2, mask, y = data[3]
    data[3] = (ids, ids2, mask, np.full_like(y, np.inf))  # non-finite loss and gradients
    dense, dense_info = _run(_job(make, conf=False), data, sparse=False)
    flow.clear_default_session()
    train = _job(make, conf=False)
    sparse, info = _run(train, data)
    assert _gathered(train) == ["emb"]
    assert [bool(i["skipped"]) for i in info] == [i == 3 for i in range(8)]
    for k in ("emb", "emb-m", "emb-v"):
        assert np.array_equal(sparse[3][k], sparse[2][k])  # the skipped step wrote nothing
    assert [float(i["loss_scale"]) for i in info] == [float(i["loss_scale"]) for i in dense_info]
    _assert_close_states(sparse, dense)


def test_four_devices_with_sharded_tables_and_slots():
    def cfg():
        c = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-3"))
        return c.shard_variables(True).shard_optimizer_state(True)

    make = lambda: O.LazyAdam(0.05, grad_clipping=O.grad_clipping.by_global_norm(0.5))
    dense, _ = _run(_job(make, conf=False), sparse=False)  # one device, dense masked
    flow.clear_default_session()
    train = _job(make, conf=False, cfg=cfg())
    sparse, _ = _run(train)
    assert _gathered(train) == ["emb"]
    assert len(train.devices) == 4
    spec = train.state_shardings["emb-m"].spec
    assert spec and spec[0] is not None  # the slot is split by rows over the devices
    _assert_close_states(sparse, dense)


def test_a_table_split_by_rows_over_four_devices():
    # model parallelism: distribute=split(0) puts a quarter of the rows (and of m, v) on each device
    cfg = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-3"))
    make = lambda: O.LazyAdam(0.05, grad_clipping=O.grad_clipping.by_global_norm(0.5))
    dense, _ = _run(_job(make, conf=False), sparse=False)  # one device, dense masked
    flow.clear_default_session()
    train = _job(make, conf=False, cfg=cfg, distribute=flow.distribute.split(0))
    sparse, _ = _run(train)
    assert _gathered(train) == ["emb"]
    for name in ("emb", "emb-m", "emb-v"):
        assert train.state_shardings[name].spec[0] is not None, name  # split by rows
    _assert_close_states(sparse, dense)


def test_checkpoint_round_trip(tmp_path):
    make = lambda: O.LazyAdam(0.05)
    data = _data(10)
    straight, _ = _run(_job(make, conf=False), data)
    flow.clear_default_session()
    train = _job(make, conf=False)
    _run(train, data[:5])
    flow.checkpoint.save(tmp_path / "ckpt")
    flow.clear_default_session()
    train = _job(make, conf=False)
    train.compile()
    flow.checkpoint.load(tmp_path / "ckpt")
    resumed, _ = _run(train, data[5:])
    assert _gathered(train) == ["emb"]
    for k, v in straight[-1].items():
        assert np.array_equal(resumed[-1][k], v), k


def _compiled_step(n: int, sparse: bool):
    flow.clear_default_session()
    train = _job(lambda: O.LazyAdam(0.05), conf=False, n=n)
    plan_impl.ROW_SPARSE = sparse
    try:
        train.compile()
    finally:
        plan_impl.ROW_SPARSE = True
    compiled = train._last_program.compiled
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]), compiled.as_text()


def test_step_cost_does_not_grow_with_the_table():
    small, _ = _compiled_step(10_000, True)
    large, text = _compiled_step(1_000_000, True)
    dense_small, _ = _compiled_step(10_000, False)
    dense_large, _ = _compiled_step(1_000_000, False)
    assert large <= 1.01 * small  # row-sparse: the same flops for 100x the rows
    assert dense_large > 50 * dense_small  # the dense-masked update: O(table)
    # the only full-table instructions of the step: its parameters and the row scatters
    entry = text[text.index("ENTRY") :]
    full = [l for l in entry.splitlines() if re.search(r"= f32\[1000000,4\]", l)]
    assert len(full) == 6  # emb, emb-m, emb-v: a parameter and a scatter each
    for line in full:
        assert " parameter(" in line or "scatter" in line, line


def test_run_steps_equals_single_calls():
    make = lambda: O.LazyAdam(0.05)
    data = _data(4)
    single, _ = _run(_job(make, conf=False), data)
    flow.clear_default_session()
    plan_impl.ROW_SPARSE = True
    train = _job(make, conf=False)
    train.run_steps(*(np.stack([d[i] for d in data]) for i in range(4)))
    assert _gathered(train) == ["emb"]
    for k, v in flow.get_all_variables().items():
        np.testing.assert_allclose(np.asarray(v), single[-1][k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_a_body_that_gathers_differently_when_traced_again_is_refused():
    traces = []

    @flow.global_function(type="train")
    def train(ids: tp.Numpy.Placeholder((4,), dtype=flow.int32)) -> tp.Numpy:
        table = flow.get_variable("emb", (10, 2), initializer=flow.zeros_initializer())
        traces.append(1)
        e = flow.gather(table, ids)
        if len(traces) > 1:  # a second gather from the second trace on
            e = e + flow.gather(table, ids)
        loss = flow.math.reduce_sum(e)
        O.LazyAdam(0.1).minimize(loss)
        return loss

    with pytest.raises(
        flow.errors.JobDefinitionError,
        match=r"gathers from 'emb' differently .* \(gather 1 with ids shaped \(4,\)\)",
    ):
        train.compile()


def test_coalesce_by_hand():
    ids = jnp.array([3, 1, 3, -1, 7, 5], jnp.int32)  # 5 rows: -1 is row 4; 7 and 5 are out of range
    rows = jnp.array([[1.0], [2.0], [4.0], [8.0], [16.0], [32.0]])
    g = coalesce(ids, rows, 5)
    # the distinct valid ids sorted, then distinct out-of-range padding (5 + position)
    assert g.ids.tolist() == [1, 3, 4, 8, 9, 10]
    assert g.rows[:, 0].tolist() == [2.0, 5.0, 8.0, 0.0, 0.0, 0.0]
    table = jnp.arange(5.0).reshape(5, 1)
    assert take_rows(table, g.ids)[:, 0].tolist() == [1.0, 3.0, 4.0, 0.0, 0.0, 0.0]
    written = write(table, RowWrite(g.ids, -jnp.ones((6, 1))))
    assert written[:, 0].tolist() == [0.0, -1.0, 2.0, -1.0, -1.0]  # padding dropped


def test_a_one_dimensional_table():
    # a per-id bias (the "wide" part of Wide&Deep): rows are scalars
    def job():
        @flow.global_function(type="train")
        def train(
            ids: tp.Numpy.Placeholder((6,), dtype=flow.int32), y: tp.Numpy.Placeholder((6,))
        ) -> tp.Numpy:
            bias = flow.get_variable("bias", (30,), initializer=flow.random_normal_initializer(seed=2))
            loss = flow.math.square(flow.gather(bias, ids) - y)
            O.LazyAdam(0.1).minimize(loss)
            return loss

        return train

    rng = np.random.default_rng(0)
    data = [
        (rng.integers(0, 10, 6).astype(np.int32), rng.normal(size=6).astype(np.float32)) for _ in range(5)
    ]
    results = []
    for sparse in (False, True):
        flow.clear_default_session()
        plan_impl.ROW_SPARSE = sparse
        try:
            train = job()
            train.compile()
            start = np.array(flow.get_all_variables()["bias"])
            for ids, y in data:
                train(ids, y)
        finally:
            plan_impl.ROW_SPARSE = True
        assert _gathered(train) == (["bias"] if sparse else [])
        results.append({k: np.array(v) for k, v in flow.get_all_variables().items()})
    _assert_close_states([results[1]], [results[0]])
    assert np.array_equal(results[1]["bias"][10:], start[10:])  # never looked up


def test_a_job_with_in_job_data():
    # flow.data ops feed hidden inputs; the probe trace sees them as the step does
    def job():
        @flow.global_function(type="train")
        def train(ids: tp.Numpy.Placeholder((8,), dtype=flow.int32)) -> tp.Numpy:
            x = flow.data.decode_random((DIM,), flow.float32, batch_size=8)
            table = flow.get_variable("emb", (20, DIM), initializer=flow.random_normal_initializer(seed=3))
            loss = flow.math.reduce_sum(flow.gather(table, ids) * x, axis=[1])
            O.LazyAdam(0.05).minimize(loss)
            return loss

        return train

    ids = [np.arange(i, i + 8, dtype=np.int32) % 12 for i in range(4)]
    results = []
    for sparse in (False, True):
        flow.clear_default_session()
        flow.config.seed(0)
        plan_impl.ROW_SPARSE = sparse
        try:
            train = job()
            for i in ids:
                train(i)
        finally:
            plan_impl.ROW_SPARSE = True
        assert _gathered(train) == (["emb"] if sparse else [])
        results.append(np.array(flow.get_all_variables()["emb"]))
    np.testing.assert_allclose(results[1], results[0], rtol=2e-5, atol=2e-6)

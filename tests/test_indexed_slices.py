"""function_config.indexed_slices_optimizer_conf: rows of the named variables whose
gradient is all zero (not looked up through flow.gather) stay untouched, decay included.

Expected values: the optimizers' OneFlow formulas in numpy (float64), applied to the
active rows only."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

O = flow.optimizer
E0 = np.array([[1, 1], [2, 2], [3, 3], [4, 4]], np.float64)
STEPS = [  # (ids, c): the gradient of row r is the sum of the rows of c whose id is r
    ([0, 2], [[1, 2], [3, -1]]),
    ([2, 2], [[1, 1], [1, 1]]),
    ([1, 0], [[-1, 1], [2, 0.5]]),
]


def _grad(ids, c):
    g = np.zeros((4, 2))
    for i, row in zip(ids, c):
        g[i] += row
    return g


def _job(make_optimizer, names=("emb",), enable=True, regularizer=None):
    cfg = flow.function_config()
    cfg.indexed_slices_optimizer_conf(dict(include_op_names=dict(op_name=list(names)), enable=enable))

    @flow.global_function(type="train", function_config=cfg)
    def train(ids: tp.Numpy.Placeholder((2,), dtype=flow.int32), c: tp.Numpy.Placeholder((2, 2))) -> tp.Numpy:
        table = flow.get_variable(
            "emb", (4, 2), initializer=flow.zeros_initializer(), regularizer=regularizer
        )
        dense = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(flow.gather(table, ids) * c) + flow.math.reduce_sum(dense * 0.0)
        make_optimizer().minimize(loss)
        return loss

    flow.load_variables({"emb": E0.astype(np.float32)})
    return train


def _run(train):
    states = []
    for ids, c in STEPS:
        train(np.array(ids, np.int32), np.array(c, np.float32))
        states.append({k: np.array(v) for k, v in flow.get_all_variables().items()})
    return states


def _sgdw_reference(lr=0.1, beta=0.9, wd=0.5, sparse=True):
    w, buf, out = E0.copy(), np.zeros((4, 2)), []
    for ids, c in STEPS:
        g = _grad(ids, c)
        active = np.any(g != 0, axis=1, keepdims=True) if sparse else np.ones((4, 1), bool)
        new_buf = beta * buf - lr * g
        w = np.where(active, w + new_buf - lr * wd * w, w)
        buf = np.where(active, new_buf, buf)
        out.append((w, buf))
    return out


def test_sgdw_rows_not_looked_up_keep_weight_momentum_and_skip_decay():
    states = _run(_job(lambda: O.SGDW(0.1, momentum=0.9, weight_decay=0.5)))
    for got, (w, buf) in zip(states, _sgdw_reference()):
        np.testing.assert_allclose(got["emb"], w, rtol=1e-6)
        np.testing.assert_allclose(got["emb-momentum"], buf, rtol=1e-6, atol=1e-7)
    # row 3 is never looked up: bitwise its initial value; row 0 skips step 1
    assert np.array_equal(states[-1]["emb"][3], E0[3].astype(np.float32))
    assert np.array_equal(states[1]["emb"][0], states[0]["emb"][0])
    # the variable outside the conf is dense: zero gradient, but SGDW decays it every step
    np.testing.assert_allclose(states[-1]["w"], (1 - 0.05) ** 3 * np.ones(2), rtol=1e-6)


def test_enable_false_is_the_dense_update():
    states = _run(_job(lambda: O.SGDW(0.1, momentum=0.9, weight_decay=0.5), enable=False))
    w, buf = _sgdw_reference(sparse=False)[-1]
    np.testing.assert_allclose(states[-1]["emb"], w, rtol=1e-6)


def test_adamw_with_bias_correction_row_sparse():
    # OneFlow's AdamW, t = step + 1: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
    # w -= lr_t (m / (sqrt(v) + eps) + wd w) on the active rows only
    lr, b1, b2, eps, wd = 0.1, 0.5, 0.75, 1e-3, 0.2
    states = _run(
        _job(lambda: O.AdamW(lr, beta1=b1, beta2=b2, epsilon=eps, do_bias_correction=True, weight_decay=wd))
    )
    w, m, v = E0.copy(), np.zeros((4, 2)), np.zeros((4, 2))
    for step, ((ids, c), got) in enumerate(zip(STEPS, states)):
        g, t = _grad(ids, c), step + 1
        active = np.any(g != 0, axis=1, keepdims=True)
        m_new, v_new = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = np.where(active, w - lr_t * (m_new / (np.sqrt(v_new) + eps) + wd * w), w)
        m, v = np.where(active, m_new, m), np.where(active, v_new, v)
        np.testing.assert_allclose(got["emb"], w, rtol=2e-6)
        np.testing.assert_allclose(got["emb-m"], m, rtol=2e-6)
        np.testing.assert_allclose(got["emb-v"], v, rtol=2e-6)


def test_bad_confs_are_clear_errors():
    cfg = flow.function_config()
    with pytest.raises(ValueError, match=r"indexed_slices_optimizer_conf expects dict\(include_op_names="):
        cfg.indexed_slices_optimizer_conf(["emb"])
    with pytest.raises(ValueError, match=r"include_op_names must be dict\(op_name=\[variable names\]\)"):
        cfg.indexed_slices_optimizer_conf(dict(include_op_names=["emb"]))
    with pytest.raises(TypeError, match=r"enable must be True or False"):
        cfg.indexed_slices_optimizer_conf(dict(include_op_names=dict(op_name=["emb"]), enable=1))
    assert cfg.indexed_slices_optimizer_conf(None).settings["indexed_slices_optimizer_conf"] is None

    # checked when the job is compiled; load_variables skips the broken job with a warning
    with pytest.warns(UserWarning, match="job 'train' was skipped"):
        train = _job(lambda: O.SGD(0.1), names=("emb", "embedding"))
    with pytest.raises(ValueError, match=r"names \['embedding'\], which the job does not use as trainable"):
        train.compile()
    flow.clear_default_session()
    with pytest.warns(UserWarning, match="job 'train' was skipped"):
        train = _job(lambda: O.SGD(0.1), regularizer=flow.regularizers.l2(0.1))
    with pytest.raises(ValueError, match=r"variables \['emb'\] have a regularizer"):
        train.compile()

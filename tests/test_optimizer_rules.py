"""OneFlow's update rules against values derived by hand, three steps each, in real jobs.

The gradients are fed directly (loss = sum(w * g), see tests/optimizer_harness.py), so
each expected number below follows from the rule in the comment with pencil-and-paper
arithmetic (decimals rounded to the digits shown, compared with rtol 1e-6).
"""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from tests.optimizer_harness import run_fixed_grads

O = flow.optimizer
RTOL = 1e-6


def _steps(*grads, name="w"):
    return [{name: np.asarray(g, np.float32)} for g in grads]


def _w(traj, name="w"):
    return [s[name] for s in traj]


def test_sgd_momentum_sign_and_lr_inside_the_buffer():
    # OneFlow: buf = 0.9 * buf - lr * g; w += buf, with lr = [0.1, 0.2, 0.05] by step.
    # step 0: buf = -0.1 * [1, 2]                     = [-0.1, -0.2];  w = [0.9, -2.2]
    # step 1: buf = 0.9 * buf - 0.2 * [-2, 0]         = [0.31, -0.18]; w = [1.21, -2.38]
    # step 2: buf = 0.9 * buf - 0.05 * [0.5, 1]       = [0.254, -0.212]; w = [1.464, -2.592]
    # (PyTorch's buf = 0.9 buf + g; w -= lr buf would give w = [1.12, -2.56] after step 1.)
    w0 = {"w": np.array([1.0, -2.0], np.float32)}
    traj, _ = run_fixed_grads(
        lambda: O.SGD([0.1, 0.2, 0.05], momentum=0.9), w0, _steps([1, 2], [-2, 0], [0.5, 1])
    )
    np.testing.assert_allclose(_w(traj), [[0.9, -2.2], [1.21, -2.38], [1.464, -2.592]], rtol=RTOL)
    np.testing.assert_allclose(flow.get_all_variables()["w-momentum"], [0.254, -0.212], rtol=RTOL)


def test_sgdw_decay_is_outside_the_buffer():
    # SGDW(lr 0.1, momentum 0.9, wd 0.5): buf = 0.9 buf - 0.1 g; w = w + buf - 0.1 * 0.5 * w
    # step 0: buf = [-0.1, -0.2];   w = [1, -2] + buf - 0.05 [1, -2]         = [0.85, -2.1]
    # step 1: buf = [0.11, -0.18];  w = [0.85, -2.1] + buf - 0.05 [0.85, -2.1] = [0.9175, -2.175]
    # step 2: buf = [0.049, -0.262]; w = ... - 0.05 [0.9175, -2.175]         = [0.920625, -2.32825]
    w0 = {"w": np.array([1.0, -2.0], np.float32)}
    traj, _ = run_fixed_grads(
        lambda: O.SGDW(0.1, momentum=0.9, weight_decay=0.5), w0, _steps([1, 2], [-2, 0], [0.5, 1])
    )
    np.testing.assert_allclose(_w(traj), [[0.85, -2.1], [0.9175, -2.175], [0.920625, -2.32825]], rtol=RTOL)


def test_sgdw_without_momentum():
    # w -= lr (g + wd w): [1, -2] - 0.1 ([1, 2] + 0.5 [1, -2]) = [0.85, -2.1]
    traj, _ = run_fixed_grads(
        lambda: O.SGDW(0.1, momentum=0.0, weight_decay=0.5),
        {"w": np.array([1.0, -2.0], np.float32)},
        _steps([1, 2]),
    )
    np.testing.assert_allclose(traj[0]["w"], [0.85, -2.1], rtol=RTOL)


def test_lars_trust_ratio_and_zero_norm_guards():
    # LARS(lr 1, momentum_beta 0.5, epsilon 0, lars_coefficient 0.1), two variables.
    # w (||w0|| = 5):
    #  step 0: g = [0, 2]:  trust = 0.1 * 5 / 2 = 0.25; buf = [0, -0.5];  w = [3, 3.5]
    #  step 1: g = 0:       ||g|| = 0 -> trust = 1;     buf = [0, -0.25]; w = [3, 3.25]
    #  step 2: g = [4, -3]: trust = 0.1 * sqrt(19.5625) / 5 = 0.08845903
    #          buf = 0.5 [0, -0.25] - 0.08845903 [4, -3] = [-0.35383612, 0.14037709]
    #          w = [2.64616388, 3.39037709]
    # z starts at 0: ||z|| = 0 -> trust = 1: buf = -[1, -1], z = [-1, 1]; then g = 0 (trust 1):
    #  the momentum keeps going: z = [-1.5, 1.5], [-1.75, 1.75].
    w0 = {"w": np.array([3.0, 4.0], np.float32), "z": np.zeros(2, np.float32)}
    grads = [
        {"w": np.array(g, np.float32), "z": np.array(gz, np.float32)}
        for g, gz in (([0, 2], [1, -1]), ([0, 0], [0, 0]), ([4, -3], [0, 0]))
    ]
    traj, _ = run_fixed_grads(
        lambda: O.LARS(1.0, momentum_beta=0.5, epsilon=0.0, lars_coefficient=0.1), w0, grads
    )
    np.testing.assert_allclose(_w(traj), [[3, 3.5], [3, 3.25], [2.64616388, 3.39037709]], rtol=RTOL)
    np.testing.assert_allclose(_w(traj, "z"), [[-1, 1], [-1.5, 1.5], [-1.75, 1.75]], rtol=RTOL)
    np.testing.assert_allclose(flow.get_all_variables()["w-momentum"], [-0.35383612, 0.14037709], rtol=RTOL)


def test_lars_weight_decay():
    # wd 0.5: trust = 0.1 * 5 / (2 + 0.5 * 5) = 1/9; w = w - trust g - trust * 0.5 * w
    #        = [3, 4] - [0, 2/9] - [1/6, 2/9] = [2.8333333, 3.5555556]
    traj, _ = run_fixed_grads(
        lambda: O.LARS(1.0, momentum_beta=0.5, epsilon=0.0, lars_coefficient=0.1, weight_decay=0.5),
        {"w": np.array([3.0, 4.0], np.float32)},
        _steps([0, 2]),
    )
    np.testing.assert_allclose(traj[0]["w"], [2.8333333, 3.5555556], rtol=RTOL)


def test_rmsprop_epsilon_inside_the_square_root():
    # RMSProp(lr 0.1, decay_rate 0.5, epsilon 1): ms = 0.5 ms + 0.5 g^2; w -= 0.1 g / sqrt(ms + 1)
    # step 0: g = [0, 4]:  ms = [0, 8];  sqrt(ms + 1) = [1, 3];    w = [1, 1 - 0.4/3]  = [1, 0.86666667]
    # step 1: g = [4, 4]:  ms = [8, 12]; sqrt = [3, sqrt(13)];     w = [0.86666667, 0.75572663]
    # step 2: g = [-2, 0]: ms = [6, 6];  sqrt = [sqrt(7), ...];    w = [0.94225956, 0.75572663]
    # (PyTorch's 0.1 g / (sqrt(ms) + 1) gives w = [1, 0.89052429] after step 0.)
    grads = _steps([0, 4], [4, 4], [-2, 0])
    traj, _ = run_fixed_grads(
        lambda: O.RMSProp(0.1, decay_rate=0.5, epsilon=1.0), {"w": np.ones(2, np.float32)}, grads
    )
    np.testing.assert_allclose(
        _w(traj), [[1, 0.86666667], [0.86666667, 0.75572663], [0.94225956, 0.75572663]], rtol=RTOL
    )
    np.testing.assert_allclose(flow.get_all_variables()["w-mean_square"], [6, 6], rtol=RTOL)


def test_rmsprop_centered():
    # centered: mg = 0.5 mg + 0.5 g; w -= 0.1 g / sqrt(ms - mg^2 + 1)
    # step 0: ms = [0, 8], mg = [0, 2]:  den = [1, 5];  w = [1, 1 - 0.4/sqrt(5)] = [1, 0.82111456]
    # step 1: ms = [8, 12], mg = [2, 3]: den = [5, 4];  w = [0.82111456, 0.62111456]
    # step 2: ms = [6, 6], mg = [0, 1.5]: den = [7, 4.75]; w = [0.89670746, 0.62111456]
    grads = _steps([0, 4], [4, 4], [-2, 0])
    traj, _ = run_fixed_grads(
        lambda: O.RMSProp(0.1, decay_rate=0.5, epsilon=1.0, centered=True),
        {"w": np.ones(2, np.float32)},
        grads,
    )
    np.testing.assert_allclose(
        _w(traj), [[1, 0.82111456], [0.82111456, 0.62111456], [0.89670746, 0.62111456]], rtol=RTOL
    )
    np.testing.assert_allclose(flow.get_all_variables()["w-mean_gradient"], [0, 1.5], atol=1e-7)


def test_ftrl_l1_branch():
    # Ftrl(lr 0.1, initial_accum 0.1, l1 0.01, l2 0.02), w0 = [0.5, -1, 0], g = [0.3, 0.2, 0.005]:
    # accum' = [0.19, 0.14, 0.100025]
    # linear = g - (sqrt(accum') - sqrt(0.1)) / 0.1 * w = [-0.29831064, 0.77937973, 0.005]
    # quadratic = sqrt(accum') / 0.1 + 0.04 = [4.39889894, 3.78165739, 3.20267292]
    # w = (sign(linear) * 0.01 - linear) / quadratic = [0.06554155, -0.2034504], and 0 where |linear| <= l1
    traj, _ = run_fixed_grads(
        lambda: O.Ftrl(0.1, initial_accum=0.1, l1=0.01, l2=0.02),
        {"w": np.array([0.5, -1.0, 0.0], np.float32)},
        _steps([0.3, 0.2, 0.005]),
    )
    np.testing.assert_allclose(traj[0]["w"], [0.06554155, -0.2034504, 0.0], rtol=RTOL)
    np.testing.assert_allclose(
        flow.get_all_variables()["w-linear"], [-0.29831064, 0.77937973, 0.005], rtol=RTOL
    )


# ----------------------------------------------------------------------------- LazyAdam


def _embedding_job(make_optimizer):
    @flow.global_function(type="train")
    def train(ids: tp.Numpy.Placeholder((2,), dtype=flow.int32), c: tp.Numpy.Placeholder((2, 2))) -> tp.Numpy:
        table = flow.get_variable("emb", (4, 2), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_sum(flow.gather(table, ids) * c)
        make_optimizer().minimize(loss)
        return loss

    return train


LAZY_STEPS = [  # (ids, c): the gradient of row r is the sum of the rows of c whose id is r
    ([0, 2], [[1, 2], [3, -1]]),
    ([2, 2], [[1, 1], [1, 1]]),
    ([1, 0], [[-1, 1], [2, 0.5]]),
]


def test_lazy_adam_updates_only_rows_read_through_gather():
    # LazyAdam(lr 0.1, beta1 0.5, beta2 0.75), t = step + 1, bc1 = 1 - 0.5^t, bc2 = 1 - 0.75^t.
    # step 0 (rows 0, 2; t = 1): m = 0.5 g, v = 0.25 g^2, m/bc1 / (sqrt(v/bc2) + eps) = sign(g):
    #   row 0 = [1, 1] - 0.1 = [0.9, 0.9];  row 2 = [3, 3] - 0.1 [1, -1] = [2.9, 3.1]
    # step 1 (row 2 only, g = [2, 2]; t = 2, bc1 = 0.75, bc2 = 0.4375):
    #   m = [1.75, 0.75], v = [2.6875, 1.1875]; row 2 -= 0.1 m/bc1 / sqrt(v/bc2) = [0.09414377, 0.0606977]
    #   row 0 keeps m = [0.5, 1], v = [0.25, 1] and its weight exactly.
    # step 2 (rows 1, 0; t = 3, bc1 = 0.875, bc2 = 0.578125): row 0, g = [2, 0.5]:
    #   m = [1.25, 0.75], v = [1.1875, 0.8125]; row 0 = [0.80032276, 0.82769765]
    #   row 1, g = [-1, 1]: m = [-0.5, 0.5], v = [0.25, 0.25]; row 1 = [2.08689661, 1.91310339]
    # Row 3 is never read: its weight, m and v never change.
    expected_rows = [
        {0: [0.9, 0.9], 2: [2.9, 3.1]},
        {2: [2.80585623, 3.0393023]},
        {0: [0.80032276, 0.82769765], 1: [2.08689661, 1.91310339]},
    ]
    train = _embedding_job(lambda: O.LazyAdam(0.1, beta1=0.5, beta2=0.75))
    flow.load_variables({"emb": np.array([[1, 1], [2, 2], [3, 3], [4, 4]], np.float32)})
    before = {k: np.array(v) for k, v in flow.get_all_variables().items() if k.startswith("emb")}
    for (ids, c), rows in zip(LAZY_STEPS, expected_rows, strict=True):
        train(np.array(ids, np.int32), np.array(c, np.float32))
        after = {k: np.array(v) for k, v in flow.get_all_variables().items() if k.startswith("emb")}
        for r in range(4):
            if r in rows:
                np.testing.assert_allclose(after["emb"][r], rows[r], rtol=RTOL)
            else:  # untouched rows: weight, m and v bitwise unchanged
                for k in ("emb", "emb-m", "emb-v"):
                    assert np.array_equal(after[k][r], before[k][r]), (k, r)
        before = after
    np.testing.assert_allclose(before["emb-m"], [[1.25, 0.75], [-0.5, 0.5], [1.75, 0.75], [0, 0]], rtol=RTOL)
    np.testing.assert_allclose(
        before["emb-v"], [[1.1875, 0.8125], [0.25, 0.25], [2.6875, 1.1875], [0, 0]], rtol=RTOL
    )
    assert train.num_traces == 1


def test_dense_adam_moves_rows_lazy_adam_leaves_alone():
    # The contrast: at step 1 only row 2 has a gradient, yet Adam's decayed moments move row 0.
    train = _embedding_job(lambda: O.Adam(0.1, beta1=0.5, beta2=0.75, do_bias_correction=True))
    for ids, c in LAZY_STEPS[:2]:
        train(np.array(ids, np.int32), np.array(c, np.float32))
    # row 0 after step 1: m = [0.25, 0.5], v = [0.1875, 0.75]; -0.1 (m/0.75) / sqrt(v/0.4375)
    np.testing.assert_allclose(
        flow.get_all_variables()["emb"][0], [-0.1 - 0.05091751, -0.1 - 0.05091751], rtol=RTOL
    )


@pytest.mark.parametrize("make", [lambda: O.LazyAdam(0.1), lambda: O.SGD(0.1, momentum=0.0)])
def test_slots_are_variables_named_after_their_variable(make):
    train = _embedding_job(make)
    train(np.array([0, 1], np.int32), np.ones((2, 2), np.float32))
    names = set(flow.get_all_variables())
    expected = {"emb-m", "emb-v"} if isinstance(make(), O.Adam) else set()
    assert {n for n in names if n.startswith("emb-")} == expected

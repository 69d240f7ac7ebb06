"""flow.math element-wise ops, activations and reductions against numpy / scipy-free
hand formulas (OneFlow's kernel rules: floor modulo, half-to-even rounding, 0 where x == 0
for xdivy / xlogy / reciprocal_no_nan, literal in_top_k ties, ...)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow

RNG = np.random.default_rng(0)
X = RNG.uniform(-2.5, 2.5, size=(3, 5)).astype(np.float32)
POS = RNG.uniform(0.1, 3.0, size=(3, 5)).astype(np.float32)
UNIT = RNG.uniform(-0.9, 0.9, size=(3, 5)).astype(np.float32)
ABOVE1 = RNG.uniform(1.1, 3.0, size=(3, 5)).astype(np.float32)


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol)


_erf = np.vectorize(math.erf)
_lgamma = np.vectorize(math.lgamma)

UNARY = [
    ("acos", UNIT, np.arccos),
    ("acosh", ABOVE1, np.arccosh),
    ("asin", UNIT, np.arcsin),
    ("asinh", X, np.arcsinh),
    ("atan", X, np.arctan),
    ("atanh", UNIT, np.arctanh),
    ("ceil", X, np.ceil),
    ("cos", X, np.cos),
    ("cosh", X, np.cosh),
    ("erf", X, _erf),
    ("erfc", X, lambda x: 1 - _erf(x)),
    ("expm1", X, np.expm1),
    ("floor", X, np.floor),
    ("lgamma", POS, _lgamma),
    ("log1p", POS, np.log1p),
    ("log_sigmoid", X, lambda x: -np.log1p(np.exp(-x))),
    ("reciprocal", POS, lambda x: 1 / x),
    ("rint", X, np.rint),
    ("sigmoid_v2", X, lambda x: 1 / (1 + np.exp(-x))),
    ("sign", X, np.sign),
    ("sin", X, np.sin),
    ("sinh", X, np.sinh),
    ("softplus", X, lambda x: np.log1p(np.exp(x))),
    ("tan", UNIT, np.tan),
    ("tanh_v2", X, np.tanh),
]


@pytest.mark.parametrize("name, x, ref", UNARY, ids=[u[0] for u in UNARY])
def test_unary_math_ops(name, x, ref):
    close(getattr(flow.math, name)(jnp.asarray(x)), ref(x.astype(np.float64)), 1e-5)


def test_round_is_half_to_even_and_reciprocal_no_nan_is_zero_at_zero():
    close(flow.math.round(jnp.asarray([0.5, 1.5, 2.5, -0.5, -1.7])), [0.0, 2.0, 2.0, -0.0, -2.0])
    close(flow.math.reciprocal_no_nan(jnp.asarray([0.0, 2.0, -4.0])), [0.0, 0.5, -0.25])
    g = jax.grad(lambda x: jnp.sum(flow.math.reciprocal_no_nan(x)))(jnp.asarray([0.0, 2.0]))
    assert np.all(np.isfinite(np.asarray(g)))


Y = RNG.uniform(-2.5, 2.5, size=(5,)).astype(np.float32)  # broadcasts against X
Y = np.where(np.abs(Y) < 0.2, 0.7, Y).astype(np.float32)
BINARY = [
    ("atan2", np.arctan2),
    ("floordiv", lambda x, y: np.floor(x / y)),
    ("mod", np.mod),
    ("xdivy", lambda x, y: x / y),
    ("squared_difference", lambda x, y: (x - y) ** 2),
    ("greater_equal", np.greater_equal),
    ("less_equal", np.less_equal),
    ("logical_and", lambda x, y: (x > 0) & (y > 0)),
]


@pytest.mark.parametrize("name, ref", BINARY, ids=[b[0] for b in BINARY])
def test_binary_math_ops_broadcast(name, ref):
    x, y = X, Y
    if name == "logical_and":  # zeros are false
        x, y = np.where(X > 0, X, 0).astype(np.float32), np.where(Y > 0, Y, 0).astype(np.float32)
    close(
        getattr(flow.math, name)(jnp.asarray(x), jnp.asarray(y)),
        ref(x.astype(np.float64), y.astype(np.float64)),
    )


def test_mod_takes_the_divisors_sign_and_zero_rules():
    close(
        flow.math.mod(jnp.asarray([5.0, -5.0, 5.0, -5.0]), jnp.asarray([3.0, 3.0, -3.0, -3.0])),
        [2, 1, -1, -2],
    )
    close(flow.math.mod(jnp.asarray([7, -7]), jnp.asarray([2, 2])), [1, 1])
    close(flow.math.xdivy(jnp.asarray([0.0, 3.0]), jnp.asarray([0.0, 2.0])), [0.0, 1.5])
    close(flow.math.xlogy(jnp.asarray([0.0, 2.0]), jnp.asarray([0.0, np.e])), [0.0, 2.0])


def _torch_act(name, x):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tx = torch.from_numpy(x.copy())
    fns = {
        "elu": lambda: F.elu(tx, alpha=0.7),
        "hardsigmoid": lambda: F.hardsigmoid(tx),
        "hardswish": lambda: F.hardswish(tx),
        "hardtanh": lambda: F.hardtanh(tx, -0.5, 1.5),
        "relu6": lambda: F.relu6(tx * 4),
        "mish": lambda: F.mish(tx),
        "swish": lambda: tx * torch.sigmoid(1.5 * tx),
    }
    return fns[name]().numpy()


ACTS = {
    "elu": lambda x: flow.nn.elu(x, alpha=0.7),
    "hardsigmoid": flow.nn.hardsigmoid,
    "hardswish": flow.nn.hardswish,
    "hardtanh": lambda x: flow.nn.hardtanh(x, min_val=-0.5, max_val=1.5),
    "relu6": lambda x: flow.nn.relu6(x * 4),
    "mish": flow.nn.mish,
    "swish": lambda x: flow.nn.swish(x, beta=1.5),
}


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activations_against_torch(name):
    close(ACTS[name](jnp.asarray(X)), _torch_act(name, X), 1e-5)


def test_hardtanh_needs_min_below_max():
    with pytest.raises(ValueError, match="max_val"):
        flow.nn.hardtanh(jnp.asarray(X), min_val=1.0, max_val=1.0)


def test_polyval_is_horner():
    close(flow.math.polyval([2.0, -1.0, 3.0], jnp.asarray(X)), 2 * X**2 - X + 3)
    close(flow.math.polyval([], jnp.asarray(X)), np.zeros_like(X))


A = RNG.normal(size=(2, 3, 4)).astype(np.float32)

REDUCTIONS = [
    ("reduce_euclidean_norm", lambda a, ax, kd: np.sqrt(np.sum(a**2, axis=ax, keepdims=kd))),
    ("reduce_logsumexp", lambda a, ax, kd: np.log(np.sum(np.exp(a), axis=ax, keepdims=kd))),
    ("reduce_std", lambda a, ax, kd: np.std(a, axis=ax, keepdims=kd)),
    ("reduce_variance", lambda a, ax, kd: np.var(a, axis=ax, keepdims=kd)),
    ("two_stage_reduce_max", lambda a, ax, kd: np.max(a, axis=ax, keepdims=kd)),
    ("two_stage_reduce_min", lambda a, ax, kd: np.min(a, axis=ax, keepdims=kd)),
]


@pytest.mark.parametrize("name, ref", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, True), ([0, 2], False)])
def test_reductions(name, ref, axis, keepdims):
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    close(
        getattr(flow.math, name)(jnp.asarray(A), axis, keepdims), ref(A.astype(np.float64), np_axis, keepdims)
    )


def test_reduce_all_any_and_empty_axis():
    b = np.array([[1, 0, 2], [3, 4, 5]], np.float32)
    np.testing.assert_array_equal(flow.math.reduce_all(jnp.asarray(b), axis=1), [False, True])
    np.testing.assert_array_equal(flow.math.reduce_any(jnp.asarray(b * 0), axis=[0, 1]), False)
    np.testing.assert_array_equal(flow.math.reduce_any(jnp.asarray(b), axis=[]), b != 0)
    close(flow.math.reduce_variance(jnp.asarray(b), axis=[]), np.zeros_like(b))


def test_element_counts():
    assert flow.math.reduced_shape_elem_cnt(jnp.zeros((3, 4, 5)), axis=[0, 1]).tolist() == [12]
    assert flow.math.reduced_shape_elem_cnt(jnp.zeros((3, 4, 5))).tolist() == [60]
    assert flow.elem_cnt(jnp.zeros((3, 4)), dtype=flow.float32).tolist() == [12.0]
    bad = jnp.asarray([0.0, np.nan, np.inf, -np.inf, 1.0])
    assert flow.count_not_finite(bad).tolist() == [3]
    assert flow.multi_count_not_finite([bad, jnp.asarray([np.nan])]).tolist() == [4]


def test_in_top_k_counts_strictly_larger_entries():
    pred = jnp.asarray([[0.1, 0.5, 0.5, 0.2], [0.9, 0.1, 0.3, 0.0], [0.1, np.nan, 0.3, 0.4]], jnp.float32)
    targets = jnp.asarray([2, 2, 3], jnp.int32)
    np.testing.assert_array_equal(
        flow.math.in_top_k(targets, pred, 1), [True, False, False]
    )  # tie wins; NaN row
    np.testing.assert_array_equal(flow.in_top_k(targets, pred, 2), [True, True, False])
    np.testing.assert_array_equal(flow.math.in_top_k(jnp.asarray([7, 0, 0]), pred, 4), [False, True, False])


def test_l2_normalize_floors_the_norm_at_epsilon():
    out = flow.math.l2_normalize(jnp.asarray(A), axis=-1, epsilon=1e-12)
    close(out, A / np.sqrt(np.sum(A**2, axis=-1, keepdims=True)))
    close(flow.math.l2_normalize(jnp.zeros((2, 3)), axis=1, epsilon=0.25), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="axis"):
        flow.math.l2_normalize(jnp.asarray(A))


def test_unsorted_segment_sums():
    data = jnp.asarray(np.arange(24, dtype=np.float32).reshape(2, 4, 3))
    ids = jnp.asarray([0, 2, 0, 5])  # 5 is out of range: dropped
    ref = np.zeros((2, 3, 3), np.float32)
    for i, s in enumerate([0, 2, 0, 5]):
        if s < 3:
            ref[:, s] += np.asarray(data)[:, i]
    close(flow.math.unsorted_segment_sum(data, ids, 3, axis=1), ref)
    close(flow.unsorted_segment_sum_like(data, ids, jnp.zeros((2, 3)), axis=1), ref)
    batch_ids = jnp.asarray([[0, 1, 1, 0], [2, 2, 2, 2]])
    out = flow.math.unsorted_batch_segment_sum(data, batch_ids, 3)
    d = np.asarray(data)
    close(out[0], np.stack([d[0, 0] + d[0, 3], d[0, 1] + d[0, 2], np.zeros(3)]))
    close(out[1], np.stack([np.zeros(3), np.zeros(3), d[1].sum(0)]))


def test_clip_aliases_and_their_checks():
    x = jnp.asarray([-2.0, 0.5, 3.0])
    for fn in (flow.clip_by_value, flow.clip, flow.clip_by_scalar, flow.clamp, flow.math.clip_by_value):
        close(fn(x, min_value=-1, max_value=1), [-1.0, 0.5, 1.0])
    close(flow.clamp(x, max_value=0), [-2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="min_value or max_value"):
        flow.clip(x)


def test_explicit_gradient_ops():
    x = jnp.asarray(X)
    y = jax.nn.softmax(x, axis=1)
    dy = jnp.asarray(RNG.normal(size=X.shape).astype(np.float32))
    _, vjp = jax.vjp(lambda a: jax.nn.softmax(a, axis=1), x)
    close(flow.nn.softmax_grad(y, dy, axis=1), vjp(dy)[0])
    s = jax.nn.sigmoid(x)
    close(flow.math.sigmoid_grad(s, dy), jax.vjp(jax.nn.sigmoid, x)[1](dy)[0])
    gelu = lambda a: jax.nn.gelu(a, approximate=False)
    close(flow.math.gelu_grad(x, dy), jax.vjp(gelu, x)[1](dy)[0])
    close(flow.nn.logsoftmax(x), np.log(np.asarray(jax.nn.softmax(x))))

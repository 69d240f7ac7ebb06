"""Top-level array and indexing ops against numpy: gather (OneFlow's zero fill and
batch_gather), the n-d gathers and scatters, Python-style slices, where, masked_fill,
one_hot, sort / argsort, concat's keyword forms, expand / broadcast_like, creation ops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow

RNG = np.random.default_rng(0)
A = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def eq(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_gather_fills_out_of_range_indices_with_zeros():
    out = flow.gather(jnp.asarray(A), jnp.asarray([2, 5, 0]), axis=1)
    ref = np.concatenate([A[:, [2]], np.zeros((2, 1, 4), np.float32), A[:, [0]]], axis=1)
    eq(out, ref)
    g = jax.grad(lambda p: jnp.sum(flow.gather(p, jnp.asarray([1, 1, 9]))))(jnp.asarray(A))
    eq(g, np.stack([np.zeros((3, 4)), 2 * np.ones((3, 4))]))


def test_gather_with_batch_dims_is_batch_gather():
    params = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    idx = np.array([[4, 0, 4], [1, 2, 3]], np.int32)
    out = flow.gather(jnp.asarray(params), jnp.asarray(idx), axis=1, batch_dims=1)
    eq(out, np.stack([params[0, idx[0]], params[1, idx[1]]]))
    eq(flow.gather(jnp.asarray(params), jnp.asarray(idx), batch_dims=1), out)  # axis defaults to batch_dims
    with pytest.raises(ValueError, match="batch_gather"):
        flow.gather(jnp.asarray(params), jnp.asarray(idx), axis=2, batch_dims=1)


def test_gather_nd_scatter_nd_and_tensor_scatters():
    idx = jnp.asarray([[1, 2], [0, 0], [1, 2]])
    eq(flow.gather_nd(jnp.asarray(A), idx), A[[1, 0, 1], [2, 0, 2]])
    upd = jnp.asarray(np.ones((3, 4), np.float32))
    ref = np.zeros((2, 3, 4), np.float32)
    ref[1, 2] += 2
    ref[0, 0] += 1
    eq(flow.scatter_nd(idx, upd, (2, 3, 4)), ref)  # duplicates summed
    eq(flow.tensor_scatter_nd_add(jnp.asarray(A), idx, upd), A + ref)
    replaced = A.copy()
    replaced[1, 2] = 2  # OneFlow zeroes the slices, then adds: duplicates sum
    replaced[0, 0] = 1
    eq(flow.tensor_scatter_nd_update(jnp.asarray(A), idx, upd), replaced)


def test_dim_gather_is_torch_gather():
    index = np.array([[[0, 2, 1, 1]], [[2, 2, 0, 1]]], np.int32)  # (2, 1, 4) along dim 1
    eq(flow.dim_gather(jnp.asarray(A), 1, jnp.asarray(index)), np.take_along_axis(A, index, axis=1))
    with pytest.raises(ValueError, match="except along dim"):
        flow.dim_gather(jnp.asarray(A), 1, jnp.asarray(index[:, :, :2]))


def test_slice_v2_slice_update_and_reverse():
    x = jnp.asarray(A)
    eq(flow.slice_v2(x, [(None, None, None), (2, 0, -1), (1, None, 2)]), A[:, 2:0:-1, 1::2])
    eq(flow.slice_v2(x, [(1, 2, 1)]), A[1:2])
    with pytest.raises(ValueError, match="start"):
        flow.slice_v2(x, [(5, None, None)])
    ref = A.copy()
    ref[:, 0:3:2, 1:3] = -1
    eq(flow.slice_update(x, -jnp.ones((2, 2, 2)), [(None, None, None), (0, 3, 2), (1, 3, 1)]), ref)
    eq(flow.reverse(x, [0, -1]), A[::-1, :, ::-1])


def test_where_broadcasts_and_masked_fill():
    cond = jnp.asarray([[1], [0], [2]], jnp.int8)  # nonzero is true
    eq(
        flow.where(cond, jnp.asarray(A[0]), jnp.asarray(-1.0)),
        np.where([[True], [False], [True]], A[0], -1.0),
    )
    out = flow.where(jnp.asarray([True, False, True, False]), jnp.asarray(A), jnp.zeros((3, 1)))
    eq(out, np.where([True, False, True, False], A, 0.0))
    with pytest.raises(NotImplementedError, match="argwhere"):
        flow.where(cond)
    eq(flow.masked_fill(jnp.asarray(A), jnp.asarray(A > 10), 0.5), np.where(A > 10, 0.5, A))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis):
    idx = np.array([[0, 3], [2, 7]], np.int32)  # 7 >= depth: an all-off row
    out = flow.one_hot(jnp.asarray(idx), 4, on_value=5, off_value=-1, axis=axis, dtype=flow.int32)
    ref = np.where(idx[..., None] == np.arange(4), 5, -1)
    eq(out, np.moveaxis(ref, -1, axis))
    assert out.dtype == np.int32
    assert flow.one_hot(jnp.asarray(idx), 4).dtype == np.float32


@pytest.mark.parametrize("direction", ["ASCENDING", "DESCENDING"])
def test_sort_and_argsort(direction):
    x = np.array([[3.0, 1.0, 2.0, 1.0], [0.0, -1.0, 5.0, 0.0]], np.float32)
    desc = direction == "DESCENDING"
    ref = -np.sort(-x, axis=1) if desc else np.sort(x, axis=1)
    eq(flow.sort(jnp.asarray(x), direction=direction), ref)
    eq(flow.sort(jnp.asarray(x.T), axis=0, direction=direction), ref.T)
    idx = flow.argsort(jnp.asarray(x), direction=direction)
    assert idx.dtype == np.int32
    eq(np.take_along_axis(x, np.asarray(idx), 1), ref)
    assert np.asarray(idx)[0].tolist() == ([0, 2, 1, 3] if desc else [1, 3, 2, 0])  # ties: lower index first
    with pytest.raises(ValueError, match="direction"):
        flow.sort(jnp.asarray(x), direction="UP")


def test_diag_and_tril():
    eq(flow.diag(jnp.asarray([1.0, 2.0]), 1), np.diag([1.0, 2.0], 1))
    eq(flow.diag(jnp.asarray(A[0]), -1), np.diag(A[0], -1))
    eq(flow.math.tril(jnp.asarray(A), 1, fill_value=-9.0), np.where(np.tri(3, 4, 1, bool), A, -9.0))
    eq(flow.nn.fused_scale_tril(jnp.asarray(A), 0, 0.0, 2.0), np.where(np.tri(3, 4, 0, bool), 2 * A, 0.0))


def test_concat_keyword_forms_and_transpose():
    x, y = jnp.asarray(A), jnp.asarray(A + 1)
    eq(flow.concat(values=[x, y], axis=2), np.concatenate([A, A + 1], 2))
    eq(flow.concat(inputs=[x, y], axis=-1, max_dim_size=8), np.concatenate([A, A + 1], 2))
    assert flow.concat([x]) is x
    with pytest.raises(ValueError, match="not both"):
        flow.concat([x], values=[y])
    with pytest.raises(ValueError, match="max_dim_size"):
        flow.concat([x, y], axis=2, max_dim_size=7)
    eq(flow.transpose(x, perm=[2, 0, 1], batch_axis_non_change=True), A.transpose(2, 0, 1))
    with pytest.raises(NotImplementedError):
        flow.transpose(x, [0, 1, 2], conjugate=True)


def test_shape_ops():
    x = jnp.asarray(A[:, :1])  # (2, 1, 4)
    eq(flow.expand(x, [3, -1, 5, 4]), np.broadcast_to(A[:, :1], (3, 2, 5, 4)))
    eq(
        flow.broadcast_like(jnp.asarray(A[:, 0]), jnp.asarray(A), broadcast_axes=[1]),
        np.repeat(A[:, :1], 3, 1),
    )
    eq(flow.broadcast_like(x, jnp.asarray(A), broadcast_axes=[1]), np.repeat(A[:, :1], 3, 1))
    eq(
        flow.broadcast_to_compatible_with(jnp.asarray(A[0, 0]), [x, jnp.zeros((2, 3, 1))]),
        np.broadcast_to(A[0, 0], (2, 3, 4)),
    )
    eq(flow.reshape_like(jnp.asarray(A), jnp.zeros((4, 6))), A.reshape(4, 6))
    eq(flow.dynamic_reshape(jnp.asarray(A), [-1, 8]), A.reshape(3, 8))
    a, b = flow.identity_n([x, jnp.asarray(A)])
    assert a is x and flow.cast_to_static_shape(b) is b
    assert flow.convert_oneflow_dtype_to_numpy_dtype(flow.float16) == np.float16


def test_creation_ops():
    like = jnp.zeros((2, 3), jnp.float32)
    eq(flow.constant_like(like, 2.5), np.full((2, 3), 2.5))
    assert flow.ones_like(like, dtype=flow.int32).dtype == np.int32
    eq(flow.zeros_like(like), np.zeros((2, 3)))
    assert flow.constant_scalar(3).dtype == np.int32 and flow.constant_scalar(3.0).shape == (1,)
    eq(flow.range(5), np.arange(5))
    eq(flow.range(2, 11, 3), np.arange(2, 11, 3))
    assert flow.range(4).dtype == np.int32  # int64 without x64
    with pytest.raises(ValueError, match="limit > start"):
        flow.range(3, 3)
    with pytest.raises(ValueError, match="delta"):
        flow.range(0, 3, 5)

"""Reductions and segment sums beyond ``ops/math.py`` (``flow.math.reduce_*``,
``unsorted_segment_sum``, ``in_top_k``, ``l2_normalize``, ``count_not_finite``, ...).

As OneFlow's reductions they compute in float32 under automatic mixed precision.
An empty ``axis`` list reduces nothing (OneFlow returns the input, or ``x != 0`` for
``reduce_any`` / ``reduce_all``).
"""

from __future__ import annotations

import math as _pymath
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes
from jobflow._src.ops import amp as _amp

__all__ = [
    "reduce_all",
    "reduce_any",
    "reduce_euclidean_norm",
    "reduce_logsumexp",
    "reduce_std",
    "reduce_variance",
    "reduced_shape_elem_cnt",
    "elem_cnt",
    "two_stage_reduce_max",
    "two_stage_reduce_min",
    "in_top_k",
    "l2_normalize",
    "unsorted_segment_sum",
    "unsorted_segment_sum_like",
    "unsorted_batch_segment_sum",
    "count_not_finite",
    "multi_count_not_finite",
]


def _axes(axis, ndim, op):
    """``axis`` as a sorted tuple of non-negative axes (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    axis = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for a in axis:
        if not isinstance(a, int) or not -ndim <= a < ndim:
            raise ValueError(f"{op}(axis) must hold ints in [{-ndim}, {ndim}); got axis={axis!r}")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _bool_reduce(fn, x, axis, keepdims, op):
    axes = _axes(axis, jnp.ndim(x), op)
    nonzero = jnp.asarray(x) != 0
    return fn(nonzero, axis=axes, keepdims=keepdims) if axes else nonzero


def reduce_all(
    x: ArrayLike, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    """True where every element over ``axis`` is nonzero (OneFlow: int8, jobflow: bool)."""
    return _bool_reduce(jnp.all, x, axis, keepdims, "math.reduce_all")


def reduce_any(
    x: ArrayLike, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    """True where any element over ``axis`` is nonzero (OneFlow: int8, jobflow: bool)."""
    return _bool_reduce(jnp.any, x, axis, keepdims, "math.reduce_any")


def reduce_euclidean_norm(
    input_tensor: Any,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    name: str | None = None,
) -> jax.Array:
    """``sqrt(sum(x ** 2))`` over ``axis``."""
    (x,) = _amp.float32(input_tensor)
    axes = _axes(axis, x.ndim, "math.reduce_euclidean_norm")
    return jnp.sqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=keepdims))


def reduce_logsumexp(
    input_tensor: Any,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    name: str | None = None,
) -> jax.Array:
    """``log(sum(exp(x)))`` over ``axis``. OneFlow computes it literally (overflowing
    for inputs above ~88); jobflow computes it stably, equal wherever OneFlow's is finite."""
    (x,) = _amp.float32(input_tensor)
    axes = _axes(axis, x.ndim, "math.reduce_logsumexp")
    return jax.nn.logsumexp(x, axis=axes, keepdims=keepdims)


def reduce_variance(
    input_tensor: Any,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    name: str | None = None,
) -> jax.Array:
    """The population variance over ``axis`` (zeros for an empty ``axis`` list)."""
    (x,) = _amp.float32(input_tensor)
    axes = _axes(axis, x.ndim, "math.reduce_variance")
    if not axes:
        return jnp.zeros_like(x)
    return jnp.var(x, axis=axes, keepdims=keepdims)


def reduce_std(
    input_tensor: Any,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    name: str | None = None,
) -> jax.Array:
    """The population standard deviation over ``axis``."""
    return jnp.sqrt(reduce_variance(input_tensor, axis, keepdims))


def reduced_shape_elem_cnt(
    input_blob: Any,
    axis: int | Sequence[int] | None = None,
    dtype: DTypeLike | None = None,
    name: str | None = None,
) -> jax.Array:
    """The product of ``input_blob``'s sizes along ``axis`` (default: all), as a
    shape ``(1,)`` array of ``dtype`` (default int32)."""
    axes = _axes(axis, jnp.ndim(input_blob), "math.reduced_shape_elem_cnt")
    count = _pymath.prod(jnp.shape(input_blob)[a] for a in axes)
    return jnp.full((1,), count, _dtypes.canonical(dtype or _dtypes.int32))


def elem_cnt(inputs: ArrayLike, dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    """The number of elements of ``inputs``, as a shape ``(1,)`` array (int32 default)."""
    return reduced_shape_elem_cnt(inputs, None, dtype)


def two_stage_reduce_max(
    x: jax.Array, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    """``reduce_max`` (OneFlow's two-stage variant for split inputs; same result)."""
    (x,) = _amp.float32(x)
    return jnp.max(x, axis=_axes(axis, x.ndim, "math.two_stage_reduce_max"), keepdims=keepdims)


def two_stage_reduce_min(
    x: jax.Array, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    """``reduce_min`` (OneFlow's two-stage variant for split inputs; same result)."""
    (x,) = _amp.float32(x)
    return jnp.min(x, axis=_axes(axis, x.ndim, "math.two_stage_reduce_min"), keepdims=keepdims)


def in_top_k(targets: jax.Array, predictions: jax.Array, k: Any, name: str | None = None) -> jax.Array:
    """Whether ``predictions[i, targets[i]]`` is among the ``k`` largest of row ``i``:
    fewer than ``k`` entries of the row are strictly larger (ties count in). False
    when the target is out of range or the row holds a non-finite value (OneFlow's kernel).
    ``targets`` ``(N,)`` ints, ``predictions`` ``(N, C)``; OneFlow returns int8, jobflow bool."""
    k = checks.integer("math.in_top_k", "k", k, low=0)
    if predictions.ndim != 2 or targets.shape != predictions.shape[:1]:
        raise ValueError(
            f"math.in_top_k needs predictions (N, C) and targets (N,); got {predictions.shape} and {targets.shape}"
        )
    pred = predictions.astype(jnp.float32)
    classes = pred.shape[1]
    valid = (targets >= 0) & (targets < classes)
    safe = jnp.clip(targets, 0, classes - 1).astype(jnp.int32)
    target_pred = jnp.take_along_axis(pred, safe[:, None], axis=1)
    larger = jnp.sum(pred > target_pred, axis=1)
    finite = jnp.all(jnp.isfinite(pred), axis=1)
    return valid & finite & (larger < k)


def l2_normalize(
    input: ArrayLike, axis: int | Sequence[int] | None = None, epsilon: float = 1e-12, name: str | None = None
) -> jax.Array:
    """``x / sqrt(max(sum(x ** 2, axis), epsilon))`` along one ``axis`` (required)."""
    if axis is None:
        raise ValueError("math.l2_normalize(axis) is required (an int); got axis=None")
    (x,) = _amp.float32(input)
    (axis,) = _axes(axis, x.ndim, "math.l2_normalize")
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x / jnp.sqrt(jnp.maximum(square_sum, epsilon))


def _segment_sum(data, ids, num_segments):
    """Sums ``data`` (``ids.shape + rest``) into ``num_segments`` rows; ids out of
    ``[0, num_segments)`` are dropped."""
    flat_ids = jnp.reshape(ids, (-1,))
    flat = jnp.reshape(data, (flat_ids.shape[0], *data.shape[ids.ndim :]))
    return jax.ops.segment_sum(flat, flat_ids, num_segments=num_segments)


def unsorted_segment_sum(
    data: jax.Array, segment_ids: jax.Array, num_segments: Any, axis: int = 0, name: str | None = None
) -> jax.Array:
    """``out[..., s, ...] = sum of data[..., i, ...] where segment_ids[i] == s``.

    ``data.shape[axis : axis + segment_ids.ndim]`` must equal ``segment_ids.shape``; the
    result has ``num_segments`` in their place. Ids out of range are ignored."""
    num_segments = checks.integer("math.unsorted_segment_sum", "num_segments", num_segments, low=1)
    (data,) = _amp.float32(data)
    axis = axis % data.ndim
    span = data.shape[axis : axis + segment_ids.ndim]
    if tuple(span) != tuple(segment_ids.shape):
        raise ValueError(
            f"math.unsorted_segment_sum: data.shape[{axis}:{axis + segment_ids.ndim}]={tuple(span)} "
            f"must equal segment_ids.shape={tuple(segment_ids.shape)}"
        )
    moved = jnp.moveaxis(data, list(range(axis, axis + segment_ids.ndim)), list(range(segment_ids.ndim)))
    out = _segment_sum(moved, segment_ids, num_segments)
    return jnp.moveaxis(out, 0, axis)


def unsorted_segment_sum_like(
    data: jax.Array, segment_ids: jax.Array, like: jax.Array, axis: int = 0, name: str | None = None
) -> jax.Array:
    """:func:`unsorted_segment_sum` with ``num_segments = like.shape[axis]``."""
    return unsorted_segment_sum(data, segment_ids, like.shape[axis], axis)


def unsorted_batch_segment_sum(
    data: jax.Array, segment_ids: jax.Array, num_segments: Any, name: str | None = None
) -> jax.Array:
    """Per batch row: ``data`` ``(B..., N, rest)``, ``segment_ids`` ``(B..., N)`` ->
    ``(B..., num_segments, rest)``."""
    num_segments = checks.integer("math.unsorted_batch_segment_sum", "num_segments", num_segments, low=1)
    batch = segment_ids.ndim - 1
    if tuple(data.shape[: batch + 1]) != tuple(segment_ids.shape):
        raise ValueError(
            f"math.unsorted_batch_segment_sum: data shape {data.shape} must start with segment_ids shape {segment_ids.shape}"
        )
    (data,) = _amp.float32(data)
    fn = lambda d, i: jax.ops.segment_sum(d, i, num_segments=num_segments)
    for _ in range(batch):
        fn = jax.vmap(fn)
    return fn(data, segment_ids)


def count_not_finite(x: jax.Array, name: str | None = None) -> jax.Array:
    """The number of NaN and infinite entries of ``x``, shape ``(1,)`` (int64 in OneFlow;
    int32 unless JAX runs with x64)."""
    bad = jnp.sum(~jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.zeros((), jnp.int32)
    return jnp.reshape(bad, (1,)).astype(_dtypes.canonical(_dtypes.int64))


def multi_count_not_finite(x: jax.Array | None = None, name: str | None = None) -> jax.Array:
    """:func:`count_not_finite` summed over the arrays of the list ``x``."""
    if not x:
        raise ValueError("multi_count_not_finite(x) needs a non-empty list of arrays; got x={x!r}")
    return sum((count_not_finite(a) for a in x[1:]), count_not_finite(x[0]))

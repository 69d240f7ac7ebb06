"""Indexing, selection and sorting ops (top level ``flow.*`` and ``flow.math.tril``):
``gather`` and its n-d / per-axis forms, scatters, Python-style slices, ``where``,
``masked_fill``, ``one_hot``, ``sort`` / ``argsort``, ``reverse``, ``diag``, ``tril``.

Out-of-range gather indices give zeros, as OneFlow's gather kernel (XLA would clamp).
``gather`` of a variable along axis 0 tells the trace context (``note_gather``): an
embedding table read only that way may get a row-sparse gradient
(``optimizer/sparse_rows.py``).
Under automatic mixed precision ``gather``, ``slice_v2``, ``tril`` and
``fused_scale_tril`` follow their input (OneFlow's clear list); the others are on no
list and compute in float32.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core import trace as _trace
from jobflow._src.ops import amp as _amp

__all__ = [
    "gather",
    "gather_nd",
    "scatter_nd",
    "tensor_scatter_nd_update",
    "tensor_scatter_nd_add",
    "dim_gather",
    "slice_v2",
    "slice_update",
    "reverse",
    "where",
    "masked_fill",
    "one_hot",
    "sort",
    "argsort",
    "diag",
    "tril",
    "fused_scale_tril",
]


def _axis(axis, ndim, owner, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{owner}({name}) must be an int in [{-ndim}, {ndim}); got {name}={axis!r}")
    return axis % ndim


def _take(params, indices, axis):
    """``params`` indexed along ``axis``; indices out of ``[0, size)`` give zeros."""
    return jnp.take(params, indices, axis=axis, mode="fill", fill_value=0)


def gather(
    params: jax.Array,
    indices: jax.Array,
    validate_indices: Any = None,
    axis: int | Sequence[int] | None = None,
    batch_dims: int = 0,
    name: str | None = None,
) -> jax.Array:
    """``params`` indexed by ``indices`` along ``axis`` (default ``batch_dims``).

    With ``batch_dims=k > 0`` this is OneFlow's ``batch_gather``: ``axis`` must be ``k``
    and ``indices`` of shape ``params.shape[:k] + (m,)``; ``out[b..., j, rest] =
    params[b..., indices[b..., j], rest]``. Indices out of range give zeros (OneFlow's
    kernel); the gradient with respect to ``params`` is a scatter-add.
    """
    batch_dims = checks.integer("gather", "batch_dims", batch_dims, low=0)
    axis = batch_dims if axis is None else _axis(axis, params.ndim, "gather")
    if not batch_dims:
        ctx = _trace.current()
        if ctx is not None and axis == 0:
            rows = ctx.note_gather(params, indices)
            if rows is not None:  # a row-sparse table (optimizer/sparse_rows.py)
                return rows if ctx.row_probe else _take(params, indices, axis) + rows
        return _take(params, indices, axis)
    if axis != batch_dims or indices.ndim != batch_dims + 1:
        raise ValueError(
            f"gather with batch_dims={batch_dims} is OneFlow's batch_gather: it needs axis == batch_dims "
            f"and indices of rank batch_dims + 1; got axis={axis}, indices shape {indices.shape}"
        )
    if tuple(indices.shape[:batch_dims]) != tuple(params.shape[:batch_dims]):
        raise ValueError(
            f"gather(batch_dims={batch_dims}): indices shape {indices.shape} and params shape "
            f"{params.shape} must agree on the first {batch_dims} axes"
        )
    fn = lambda p, i: _take(p, i, 0)
    for _ in range(batch_dims):
        fn = jax.vmap(fn)
    return fn(params, indices)


def _nd_index(indices, ndim, owner):
    depth = indices.shape[-1]
    if indices.ndim < 1 or depth > ndim:
        raise ValueError(f"{owner}: indices shape {indices.shape} must end with at most {ndim} (the rank)")
    return tuple(jnp.moveaxis(indices, -1, 0))


def gather_nd(params: jax.Array, indices: ArrayLike, name: str | None = None) -> jax.Array:
    """``out[i...] = params[indices[i..., 0], ..., indices[i..., d-1]]`` with
    ``d = indices.shape[-1]``; the result has shape ``indices.shape[:-1] + params.shape[d:]``."""
    (params,) = _amp.float32(params)
    idx = _nd_index(indices, params.ndim, "gather_nd")
    return params.at[idx].get(mode="fill", fill_value=0)


def scatter_nd(
    indices: ArrayLike, updates: jax.Array, shape: Sequence[int], name: str | None = None
) -> jax.Array:
    """Zeros of ``shape`` with ``updates`` added at ``indices`` (duplicates are summed)."""
    (updates,) = _amp.float32(updates)
    out = jnp.zeros(tuple(int(d) for d in shape), updates.dtype)
    return out.at[_nd_index(indices, out.ndim, "scatter_nd")].add(updates, mode="drop")


def tensor_scatter_nd_update(
    params: jax.Array, indices: ArrayLike, updates: jax.Array, name: str | None = None
) -> jax.Array:
    """``params`` with the slices at ``indices`` replaced by ``updates``. As OneFlow's
    kernel (zero the slices, then add), duplicate indices sum their updates."""
    params, updates = _amp.float32(params, updates)
    idx = _nd_index(indices, params.ndim, "tensor_scatter_nd_update")
    return params.at[idx].set(0, mode="drop").at[idx].add(updates.astype(params.dtype), mode="drop")


def tensor_scatter_nd_add(
    params: jax.Array, indices: ArrayLike, updates: jax.Array, name: str | None = None
) -> jax.Array:
    """``params`` with ``updates`` added at ``indices`` (duplicates are summed)."""
    params, updates = _amp.float32(params, updates)
    idx = _nd_index(indices, params.ndim, "tensor_scatter_nd_add")
    return params.at[idx].add(updates.astype(params.dtype), mode="drop")


def dim_gather(input: jax.Array, dim: int, index: jax.Array, name: str | None = None) -> jax.Array:
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` for ``dim=1`` (PyTorch's
    ``torch.gather``); ``index`` has ``input``'s shape except along ``dim``."""
    dim = _axis(dim, input.ndim, "dim_gather", "dim")
    if index.ndim != input.ndim or any(
        a != b for i, (a, b) in enumerate(zip(index.shape, input.shape)) if i != dim
    ):
        raise ValueError(
            f"dim_gather: index shape {index.shape} must equal input shape {input.shape} except along dim={dim}"
        )
    (input,) = _amp.float32(input)
    return jnp.take_along_axis(input, index, axis=dim, mode="fill", fill_value=0)


def _slices(slice_tup_list, shape, owner):
    """Python slices from OneFlow's ``[(start, stop, step), ...]`` (missing axes: all)."""
    if not isinstance(slice_tup_list, (list, tuple)) or len(slice_tup_list) > len(shape):
        raise ValueError(
            f"{owner}(slice_tup_list) must be a list of at most {len(shape)} (start, stop, step) tuples; "
            f"got {slice_tup_list!r}"
        )
    out = []
    for tup, size in zip(slice_tup_list, shape):
        if (
            not isinstance(tup, (list, tuple))
            or len(tup) != 3
            or not all(v is None or isinstance(v, int) for v in tup)
        ):
            raise ValueError(f"{owner}: each slice must be (start, stop, step) of ints or None; got {tup!r}")
        start, stop, step = tup
        if step == 0:
            raise ValueError(f"{owner}: slice step can't be 0; got {tup!r}")
        if start is not None and not -size <= start < size:
            raise ValueError(f"{owner}: slice start must be in [-{size}, {size}); got {tup!r}")
        out.append(builtins.slice(start, stop, step))
    return tuple(out)


def slice_v2(x: jax.Array, slice_tup_list: Any, name: str | None = None) -> jax.Array:
    """``x[start:stop:step, ...]`` with one ``(start, stop, step)`` per leading axis
    (``None`` entries as in Python slices)."""
    return x[_slices(slice_tup_list, x.shape, "slice_v2")]


def slice_update(x: jax.Array, update: Any, slice_tup_list: Any, name: str | None = None) -> jax.Array:
    """A copy of ``x`` with ``x[slices] = update``."""
    x, update = _amp.float32(x, update)
    return x.at[_slices(slice_tup_list, x.shape, "slice_update")].set(update.astype(x.dtype))


def reverse(input: jax.Array, axis: int, name: str | None = None) -> jax.Array:
    """``input`` reversed along ``axis`` (an int or a list of ints)."""
    axes = [axis] if isinstance(axis, int) else list(axis)
    axes = [_axis(a, input.ndim, "reverse") for a in axes]
    (input,) = _amp.float32(input)
    return jnp.flip(input, axis=tuple(axes))


def where(
    condition: ArrayLike, x: jax.Array | None = None, y: jax.Array | None = None, name: str | None = None
) -> jax.Array:
    """``x`` where ``condition`` is nonzero, else ``y``, all three broadcast together.

    OneFlow's one-argument form ``where(condition)`` is ``argwhere`` (a data-dependent
    shape); XLA needs static shapes, so jobflow raises for it."""
    if x is None and y is None:
        raise NotImplementedError(
            "where(condition) without x and y is argwhere, whose output shape depends on the data; "
            "XLA compiles static shapes only. Use where(condition, x, y) or a mask instead."
        )
    if x is None or y is None:
        raise ValueError("where needs both x and y, or neither (exactly one was given)")
    x, y = _amp.float32(x, y)
    c, x, y = jnp.asarray(condition), jnp.asarray(x), jnp.asarray(y)
    shape = jnp.broadcast_shapes(c.shape, x.shape, y.shape)
    c, x, y = (jnp.broadcast_to(a, shape) for a in (c, x, y))
    return jnp.where(c != 0, x, y)


def masked_fill(x: jax.Array, mask: ArrayLike, value: ArrayLike, name: str | None = None) -> jax.Array:
    """``x`` with ``value`` where ``mask`` is nonzero (``mask`` broadcasts to ``x``)."""
    (x,) = _amp.float32(x)
    m = jnp.broadcast_to(jnp.asarray(mask), x.shape)
    return jnp.where(m != 0, jnp.asarray(value, x.dtype), x)


def one_hot(
    indices: jax.Array,
    depth: Any,
    on_value: float = 1,
    off_value: float = 0,
    axis: int = -1,
    dtype: DTypeLike | None = None,
    name: str | None = None,
) -> jax.Array:
    """``on_value`` at each index and ``off_value`` elsewhere, along a new ``axis`` of size
    ``depth``. Indices out of ``[0, depth)`` give an all-``off_value`` row. ``dtype``
    defaults to float32 (OneFlow requires it)."""
    depth = checks.integer("one_hot", "depth", depth, low=1)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"one_hot(indices) must be an integer array; got dtype {indices.dtype}")
    axis = _axis(axis, indices.ndim + 1, "one_hot")
    dt = _dtypes.canonical(dtype or _dtypes.float32)
    hot = indices[..., None] == jnp.reshape(
        jnp.arange(depth, dtype=indices.dtype), (1,) * indices.ndim + (depth,)
    )
    out = jnp.where(hot, jnp.asarray(on_value, dt), jnp.asarray(off_value, dt))
    return jnp.moveaxis(out, -1, axis)


def _direction(direction, owner):
    return checks.choice(owner, "direction", direction, ("ASCENDING", "DESCENDING")) == "DESCENDING"


def sort(
    input: jax.Array, axis: int = -1, direction: str = "ASCENDING", name: str | None = None
) -> jax.Array:
    """``input`` sorted along ``axis``; ``direction`` is ``"ASCENDING"`` or ``"DESCENDING"``."""
    desc = _direction(direction, "sort")
    axis = _axis(axis, input.ndim, "sort")
    (input,) = _amp.float32(input)
    return jnp.sort(input, axis=axis, stable=True, descending=desc)


def argsort(
    input: jax.Array, axis: int = -1, direction: str = "ASCENDING", name: str | None = None
) -> jax.Array:
    """Indices (int32) that sort ``input`` along ``axis``; ties keep the lower index first."""
    desc = _direction(direction, "argsort")
    axis = _axis(axis, input.ndim, "argsort")
    return jnp.argsort(input, axis=axis, stable=True, descending=desc).astype(jnp.int32)


def diag(input: jax.Array, diagonal: int = 0, name: str | None = None) -> jax.Array:
    """A 1-D input becomes a square matrix with it on the ``diagonal``-th diagonal; a 2-D
    input gives its ``diagonal``-th diagonal."""
    if input.ndim not in (1, 2):
        raise ValueError(f"diag needs a 1-D or 2-D input; got shape {input.shape}")
    (input,) = _amp.float32(input)
    return jnp.diag(input, k=int(diagonal))


def tril(x: jax.Array, diagonal: int = 0, fill_value: float = 0, name: str | None = None) -> jax.Array:
    """The lower triangle of the last two axes (entries ``j <= i + diagonal``); the
    rest is ``fill_value``."""
    return fused_scale_tril(x, diagonal, fill_value, 1)


def fused_scale_tril(
    x: jax.Array, diagonal: int = 0, fill_value: float = 0, scale: float = 1, name: str | None = None
) -> jax.Array:
    """``x * scale`` in the lower triangle of the last two axes, ``fill_value`` above."""
    if x.ndim < 2:
        raise ValueError(f"tril needs an input of rank >= 2; got shape {x.shape}")
    rows, cols = x.shape[-2:]
    keep = jnp.arange(cols)[None, :] <= jnp.arange(rows)[:, None] + int(diagonal)
    keep = jnp.broadcast_to(keep, x.shape)
    scaled = x if scale == 1 else x * jnp.asarray(scale, x.dtype)
    return jnp.where(keep, scaled, jnp.asarray(fill_value, x.dtype))

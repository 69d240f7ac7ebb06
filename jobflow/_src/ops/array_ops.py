"""Array ops at the top level of ``jobflow`` (``flow.matmul``, ``flow.reshape``, ...)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from jobflow._src.core import dtypes as _dtypes

__all__ = [
    "matmul",
    "reshape",
    "flatten",
    "transpose",
    "concat",
    "slice",
    "squeeze",
    "expand_dims",
    "cast",
    "convert_oneflow_dtype_to_numpy_dtype",
    "pad",
    "pad_grad",
    "constant",
    "identity",
    "identity_n",
    "cast_to_static_shape",
    "amp_white_identity",
    "reshape_like",
    "dynamic_reshape",
    "expand",
    "broadcast_like",
    "broadcast_to_compatible_with",
    "stack",
    "zeros",
    "ones",
]


def matmul(
    a: ArrayLike,
    b: ArrayLike,
    transpose_a: bool = False,
    transpose_b: bool = False,
    alpha: float = 1.0,
    name: str | None = None,
) -> jax.Array:
    """``op(a) @ op(b)``, where ``op`` transposes the last two axes when asked.

    Under automatic mixed precision this is a white-list op: it computes in the low
    dtype (see ``function_config.enable_auto_mixed_precision``).
    """
    from jobflow._src.ops import amp as _amp

    if transpose_a:
        a = jnp.swapaxes(a, -1, -2)
    if transpose_b:
        b = jnp.swapaxes(b, -1, -2)
    a, b = _amp.white(a, b)
    out = jnp.matmul(a, b)
    return out if alpha == 1.0 else out * alpha


def reshape(x: ArrayLike, shape: Sequence[int], name: str | None = None) -> jax.Array:
    """Reshape; one entry of ``shape`` may be -1."""
    return jnp.reshape(x, tuple(int(d) for d in shape))


def flatten(input: jax.Array, start_dim: int = 0, end_dim: int = -1, name: str | None = None) -> jax.Array:
    """Merges axes ``start_dim .. end_dim`` (inclusive) into one."""
    nd = input.ndim
    s, e = start_dim % nd if nd else 0, end_dim % nd if nd else 0
    if s > e:
        raise ValueError(f"flatten needs start_dim <= end_dim; got start_dim={start_dim}, end_dim={end_dim}")
    shape = input.shape[:s] + (-1,) + input.shape[e + 1 :]
    return jnp.reshape(input, shape)


def transpose(
    a: ArrayLike,
    perm: Any = None,
    conjugate: bool = False,
    batch_axis_non_change: bool = False,
    name: str | None = None,
) -> jax.Array:
    """``a`` with its axes permuted by ``perm`` (default: reversed). ``conjugate=True``
    raises, as in OneFlow; ``batch_axis_non_change`` is a OneFlow graph hint (ignored)."""
    if conjugate:
        raise NotImplementedError("transpose(conjugate=True) is not implemented (nor in OneFlow)")
    return jnp.transpose(a, None if perm is None else tuple(int(p) for p in perm))


def concat(
    inputs: Sequence[jax.Array] | None = None,
    axis: int = 0,
    max_dim_size: Any = None,
    name: str | None = None,
    values: Sequence[jax.Array] | None = None,
) -> jax.Array:
    """``inputs`` (or the older keyword ``values``) joined along ``axis``.

    ``max_dim_size`` bounds OneFlow's dynamic-shape concat; shapes are static here, so
    it is only checked to hold the result."""
    if values is not None:
        if inputs is not None:
            raise ValueError("concat takes inputs or values, not both")
        inputs = values
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ValueError(f"concat(inputs) must be a non-empty list of arrays; got {inputs!r}")
    if len(inputs) == 1:
        return inputs[0]
    out = jnp.concatenate(list(inputs), axis=axis)
    if max_dim_size is not None and out.shape[axis] > max_dim_size:
        raise ValueError(
            f"concat(max_dim_size={max_dim_size}) is smaller than the result's {out.shape[axis]}"
        )
    return out


def stack(inputs: Sequence[ArrayLike], axis: int = 0, name: str | None = None) -> jax.Array:
    return jnp.stack(list(inputs), axis=axis)


def slice(x: jax.Array, begin: Any, size: Sequence[int], name: str | None = None) -> jax.Array:
    """``x[begin[i] : begin[i] + size[i]]`` per axis; ``None`` begin is 0, ``None`` or -1
    size runs to the end of the axis."""
    if len(begin) != x.ndim or len(size) != x.ndim:
        raise ValueError(
            f"slice needs begin and size of length {x.ndim} (the rank of x); got {len(begin)} and {len(size)}"
        )
    idx = []
    for b, s, d in zip(begin, size, x.shape):
        b = 0 if b is None else (b + d if b < 0 else b)
        e = d if s is None or s == -1 else b + s
        if not 0 <= b <= e <= d:
            raise ValueError(
                f"slice begin={list(begin)} size={list(size)} is out of bounds for shape {x.shape}"
            )
        idx.append(builtins.slice(b, e))
    return x[tuple(idx)]


def squeeze(input: ArrayLike, axis: int | Sequence[int] | None = None, name: str | None = None) -> jax.Array:
    return jnp.squeeze(
        input, axis=None if axis is None else tuple(axis) if isinstance(axis, (list, tuple)) else axis
    )


def expand_dims(input: ArrayLike, axis: int, name: str | None = None) -> jax.Array:
    return jnp.expand_dims(input, axis)


def cast(x: ArrayLike, dtype: DTypeLike, name: str | None = None) -> jax.Array:
    return jnp.asarray(x).astype(_dtypes.canonical(dtype))


def convert_oneflow_dtype_to_numpy_dtype(oneflow_dtype: Any) -> np.dtype:
    """The numpy dtype of a jobflow dtype (jobflow dtypes are numpy dtypes already)."""
    return _dtypes.as_dtype(oneflow_dtype, "oneflow_dtype")


def pad(x: jax.Array, paddings: Any, constant_value: float = 0, name: str | None = None) -> jax.Array:
    """Constant padding; ``paddings`` is one ``(before, after)`` pair per axis."""
    paddings = [tuple(int(v) for v in p) for p in paddings]
    if len(paddings) != x.ndim:
        raise ValueError(f"pad needs one (before, after) pair per axis ({x.ndim}); got {len(paddings)}")
    return jnp.pad(x, paddings, constant_values=constant_value)


def pad_grad(x: jax.Array, paddings: Any, constant_value: float = 0, name: str | None = None) -> jax.Array:
    """The gradient of :func:`pad`: ``x`` with ``paddings`` ``(before, after)`` per axis
    cropped off (``constant_value`` is unused, as in OneFlow's kernel)."""
    paddings = [tuple(int(v) for v in p) for p in paddings]
    if len(paddings) != x.ndim:
        raise ValueError(f"pad_grad needs one (before, after) pair per axis ({x.ndim}); got {len(paddings)}")
    return x[tuple(builtins.slice(lo, d - hi) for (lo, hi), d in zip(paddings, x.shape))]


def constant(
    value: ArrayLike,
    dtype: DTypeLike | None = None,
    shape: Sequence[int] | None = None,
    name: str | None = None,
) -> jax.Array:
    """An array filled with ``value`` (a number or array-like)."""
    dt = _dtypes.canonical(dtype) if dtype is not None else None
    if shape is not None:
        return jnp.full(tuple(shape), value, dtype=dt)
    return jnp.asarray(value, dtype=dt)


def identity(x: ArrayLike, name: str | None = None) -> ArrayLike:
    return x


def identity_n(inputs: Sequence[ArrayLike], name: str | None = None) -> list[ArrayLike]:
    """The list ``inputs`` unchanged (OneFlow's ``tuple_identity``)."""
    return list(inputs)


def cast_to_static_shape(x: ArrayLike, name: str | None = None) -> ArrayLike:
    """``x``: every jobflow shape is static already."""
    return x


def amp_white_identity(x: ArrayLike, name: str | None = None) -> jax.Array:
    """``x``, cast to the low dtype under automatic mixed precision (a white-list op:
    what follows it reads low-precision values)."""
    from jobflow._src.ops import amp as _amp

    return _amp.white(x)[0]


def reshape_like(x: ArrayLike, like: jax.Array, name: str | None = None) -> jax.Array:
    """``x`` reshaped to ``like``'s shape."""
    return jnp.reshape(x, like.shape)


def dynamic_reshape(x: ArrayLike, shape: Sequence[int], name: str | None = None) -> jax.Array:
    """:func:`reshape` (OneFlow's variant for dynamic shapes; shapes are static here)."""
    return reshape(x, shape)


def expand(x: jax.Array, expand_size: Any, name: str | None = None) -> jax.Array:
    """``x`` broadcast to ``expand_size``; -1 keeps an axis, new axes go in front
    (PyTorch's ``expand``)."""
    expand_size = [int(d) for d in expand_size]
    lead = len(expand_size) - x.ndim
    if lead < 0:
        raise ValueError(f"expand(expand_size) {expand_size} has fewer axes than x {x.shape}")
    shape = [x.shape[i - lead] if d == -1 and i >= lead else d for i, d in enumerate(expand_size)]
    return jnp.broadcast_to(jnp.reshape(x, (1,) * lead + x.shape), tuple(shape))


def broadcast_like(
    x: jax.Array, like: jax.Array, broadcast_axes: Any = None, name: str | None = None
) -> jax.Array:
    """``x`` broadcast to ``like``'s shape along ``broadcast_axes`` (default: all axes of
    ``like``). ``x`` has ``like``'s shape with those axes either 1 or removed."""
    axes = list(range(like.ndim)) if broadcast_axes is None else [a % like.ndim for a in broadcast_axes]
    if not axes:
        raise ValueError("broadcast_like(broadcast_axes) must not be empty")
    if x.ndim < like.ndim:
        kept = [d for i, d in enumerate(like.shape) if i not in axes]
        if list(x.shape) != kept and x.size != 1:
            raise ValueError(
                f"broadcast_like: x shape {x.shape} must be like shape {like.shape} without axes {axes}"
            )
        x = jnp.expand_dims(x, axes) if list(x.shape) == kept else jnp.reshape(x, (1,) * like.ndim)
    return jnp.broadcast_to(x, like.shape).astype(like.dtype)


def broadcast_to_compatible_with(x: ArrayLike, compatible: Any, name: str | None = None) -> jax.Array:
    """``x`` broadcast to the common shape of ``x`` and every array in ``compatible``."""
    shape = jnp.broadcast_shapes(jnp.shape(x), *(jnp.shape(c) for c in compatible))
    return jnp.broadcast_to(x, shape)


def zeros(shape: Sequence[int], dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    return jnp.zeros(tuple(shape), _dtypes.canonical(dtype or _dtypes.float32))


def ones(shape: Sequence[int], dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    return jnp.ones(tuple(shape), _dtypes.canonical(dtype or _dtypes.float32))

"""Array ops at the top level of ``jobflow`` (``flow.matmul``, ``flow.reshape``, ...)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jobflow._src.core import dtypes as _dtypes

__all__ = [
    "matmul",
    "reshape",
    "flatten",
    "transpose",
    "concat",
    "gather",
    "slice",
    "squeeze",
    "expand_dims",
    "cast",
    "pad",
    "constant",
    "identity",
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


def transpose(a: ArrayLike, perm: Sequence[int] | None = None, name: str | None = None) -> jax.Array:
    return jnp.transpose(a, perm)


def concat(inputs: Sequence[ArrayLike], axis: int = 0, name: str | None = None) -> jax.Array:
    return jnp.concatenate(list(inputs), axis=axis)


def stack(inputs: Sequence[ArrayLike], axis: int = 0, name: str | None = None) -> jax.Array:
    return jnp.stack(list(inputs), axis=axis)


def gather(
    params: ArrayLike,
    indices: ArrayLike,
    axis: int | None = None,
    batch_dims: int = 0,
    name: str | None = None,
) -> jax.Array:
    """``params`` indexed by ``indices`` along ``axis`` (default 0).

    Out-of-range indices are clamped (XLA's rule). Its gradient with respect to
    ``params`` is a scatter-add: rows not indexed get zero gradient.
    """
    axis = 0 if axis is None else axis
    if batch_dims:
        fn = lambda p, i: jnp.take(p, i, axis=axis - batch_dims, mode="clip")
        for _ in range(batch_dims):
            fn = jax.vmap(fn)
        return fn(params, indices)
    return jnp.take(params, indices, axis=axis, mode="clip")


def slice(
    x: jax.Array, begin: Sequence[int | None], size: Sequence[int | None], name: str | None = None
) -> jax.Array:
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


def pad(
    x: jax.Array, paddings: Sequence[Sequence[int]], constant_value: ArrayLike = 0, name: str | None = None
) -> jax.Array:
    """Constant padding; ``paddings`` is one ``(before, after)`` pair per axis."""
    paddings = [tuple(int(v) for v in p) for p in paddings]
    if len(paddings) != x.ndim:
        raise ValueError(f"pad needs one (before, after) pair per axis ({x.ndim}); got {len(paddings)}")
    return jnp.pad(x, paddings, constant_values=constant_value)


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


def zeros(shape: Sequence[int], dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    return jnp.zeros(tuple(shape), _dtypes.canonical(dtype or _dtypes.float32))


def ones(shape: Sequence[int], dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    return jnp.ones(tuple(shape), _dtypes.canonical(dtype or _dtypes.float32))

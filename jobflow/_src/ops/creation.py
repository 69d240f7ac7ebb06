"""Arrays built from a value or another array's shape (top level ``flow.*``):
``constant_like``, ``ones_like``, ``zeros_like``, ``constant_scalar``, ``range``.

As in OneFlow, an ``int`` value gives an integer array and a ``float`` a float32 one
unless ``dtype`` says otherwise; ``*_like`` ops take the dtype of ``like`` by default.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes

__all__ = ["constant_like", "ones_like", "zeros_like", "constant_scalar", "range"]


def _dtype(dtype, default):
    return _dtypes.canonical(dtype) if dtype is not None else default


def constant_like(
    like: jax.Array, value: ArrayLike, dtype: DTypeLike | None = None, name: str | None = None
) -> jax.Array:
    """An array of ``like``'s shape filled with ``value`` (an int or a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"constant_like(value) must be an int or a float; got value={value!r}")
    return jnp.full(like.shape, value, _dtype(dtype, like.dtype))


def ones_like(like: jax.Array, dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    """Ones of ``like``'s shape (and dtype unless ``dtype`` is given)."""
    return constant_like(like, 1, dtype)


def zeros_like(like: jax.Array, dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    """Zeros of ``like``'s shape (and dtype unless ``dtype`` is given)."""
    return constant_like(like, 0, dtype)


def constant_scalar(value: ArrayLike, dtype: DTypeLike | None = None, name: str | None = None) -> jax.Array:
    """``value`` as a shape ``(1,)`` array."""
    default = _dtypes.canonical(_dtypes.float32 if isinstance(value, float) else _dtypes.int32)
    return jnp.full((1,), value, _dtype(dtype, default))


def range(
    start: int, limit: int | None = None, delta: int = 1, dtype: DTypeLike | None = None, name: str = "range"
) -> jax.Array:
    """``start, start + delta, ...`` below ``limit`` (``range(n)`` counts from 0).

    OneFlow's rules: int arguments only, ``limit > start``, ``0 < delta <= limit - start``;
    ``dtype`` defaults to int64 (int32 unless JAX runs with x64)."""
    if limit is None:
        start, limit = 0, start
    for arg, v in (("start", start), ("limit", limit), ("delta", delta)):
        checks.integer("range", arg, v, low=None)
    if limit <= start:
        raise ValueError(f"range needs limit > start; got start={start}, limit={limit}")
    checks.integer("range", "delta", delta, low=1, high=limit - start)
    return jnp.arange(start, limit, delta, dtype=_dtype(dtype, _dtypes.canonical(_dtypes.int64)))

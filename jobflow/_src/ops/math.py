"""Element-wise and reduction ops (``flow.math``), thin over ``jax.numpy``.

Under automatic mixed precision (jobflow/_amp.py) the binary arithmetic ops are gray
(low precision when fed by low precision), the activations follow their input, and the
reductions, ``exp``, ``log``, ``pow``, ``square`` and ``rsqrt`` compute in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jobflow._src.ops import amp as _amp

__all__ = [
    "add",
    "add_n",
    "subtract",
    "multiply",
    "divide",
    "negative",
    "abs",
    "square",
    "sqrt",
    "rsqrt",
    "exp",
    "log",
    "pow",
    "maximum",
    "minimum",
    "sigmoid",
    "tanh",
    "relu",
    "gelu",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "argmax",
    "top_k",
    "equal",
    "not_equal",
    "greater",
    "less",
    "clip_by_value",
]


def _axis(axis):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(int(a) for a in axis)
    return int(axis)


def add(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.add(*_amp.gray(x, y))


def add_n(inputs: Sequence[ArrayLike], name: str | None = None) -> jax.Array:
    if not inputs:
        raise ValueError("add_n(inputs) needs at least one array")
    arrays = _amp.gray(*inputs)
    out = arrays[0]
    for x in arrays[1:]:
        out = out + x
    return out


def subtract(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.subtract(*_amp.gray(x, y))


def multiply(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.multiply(*_amp.gray(x, y))


def divide(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.divide(*_amp.gray(x, y))


def negative(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.negative(x)


def abs(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.abs(x)


def square(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.square(*_amp.float32(x))


def sqrt(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.sqrt(x)


def rsqrt(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jax.lax.rsqrt(*_amp.float32(x))


def exp(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.exp(*_amp.float32(x))


def log(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.log(*_amp.float32(x))


def pow(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.power(*_amp.float32(x, y))


def maximum(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.maximum(x, y)


def minimum(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.minimum(x, y)


def clip_by_value(
    values: ArrayLike, min_value: Any = None, max_value: Any = None, name: str | None = None
) -> jax.Array:
    """``values`` clipped to ``[min_value, max_value]`` (either bound may be None, not both).
    Also ``flow.clip_by_value``, ``flow.clip``, ``flow.clip_by_scalar``, ``flow.clamp``."""
    if min_value is None and max_value is None:
        raise ValueError("clip_by_value needs min_value or max_value; both are None")
    return jnp.clip(values, min_value, max_value)


def sigmoid(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jax.nn.sigmoid(x)


def tanh(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.tanh(x)


def relu(x: ArrayLike, name: str | None = None) -> jax.Array:
    return jax.nn.relu(x)


def gelu(x: ArrayLike, name: str | None = None) -> jax.Array:
    """The exact (erf) GELU, as OneFlow's kernel: ``x * 0.5 * (1 + erf(x / sqrt(2)))``."""
    return jax.nn.gelu(x, approximate=False)


def reduce_mean(
    input_blob: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    return jnp.mean(_amp.float32(input_blob)[0], axis=_axis(axis), keepdims=keepdims)


def reduce_sum(
    input_tensor: ArrayLike,
    axis: int | Sequence[int] | None = None,
    keepdims: bool = False,
    name: str | None = None,
) -> jax.Array:
    (x,) = _amp.float32(input_tensor)
    return jnp.sum(x, axis=_axis(axis), keepdims=keepdims)


def reduce_max(
    x: ArrayLike, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    return jnp.max(_amp.float32(x)[0], axis=_axis(axis), keepdims=keepdims)


def reduce_min(
    x: ArrayLike, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    return jnp.min(_amp.float32(x)[0], axis=_axis(axis), keepdims=keepdims)


def reduce_prod(
    x: ArrayLike, axis: int | Sequence[int] | None = None, keepdims: bool = False, name: str | None = None
) -> jax.Array:
    return jnp.prod(_amp.float32(x)[0], axis=_axis(axis), keepdims=keepdims)


def argmax(input: ArrayLike, axis: int = -1, name: str | None = None) -> jax.Array:
    """Index of the largest entry along ``axis`` (int32)."""
    return jnp.argmax(input, axis=axis).astype(jnp.int32)


def top_k(
    input: jax.Array, axis: int = -1, k: int = 1, sorted: bool = True, name: str | None = None
) -> jax.Array:
    """Indices (int32) of the ``k`` largest entries along ``axis``, largest first.

    As in OneFlow's legacy API this returns indices only; ties keep the lower index first.
    """
    if not isinstance(k, int) or k < 1 or k > input.shape[axis]:
        raise ValueError(f"top_k(k) must be an int in [1, {input.shape[axis]}]; got k={k!r}")
    moved = jnp.moveaxis(input, axis, -1)
    _, idx = jax.lax.top_k(moved, k)
    return jnp.moveaxis(idx.astype(jnp.int32), -1, axis)


def equal(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.equal(x, y)


def not_equal(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.not_equal(x, y)


def greater(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.greater(x, y)


def less(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    return jnp.less(x, y)

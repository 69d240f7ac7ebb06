"""Normalization in ``flow.nn``: the functional ``batch_normalization`` (given statistics)
and OneFlow's ``GroupNorm`` / ``InstanceNorm{1,2,3}d`` functions, which create their own
affine variables ``<name>_gamma`` / ``<name>_beta`` of shape ``(1, C, 1)`` (ones / zeros).

Statistics are computed in float32 (population variance) and the result has the input's
dtype. Channels are axis 1 (NC...), as in OneFlow.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jobflow._src.core import checks
from jobflow._src.core import trace as _trace
from jobflow._src.graph import variables as _vars

__all__ = [
    "batch_normalization",
    "group_normalization",
    "instance_normalization1d",
    "instance_normalization2d",
    "instance_normalization3d",
]


def _param(p, x, axis, what):
    """A 1-D per-channel parameter reshaped to broadcast along ``axis``; a full-rank one as is."""
    p = jnp.asarray(p).astype(jnp.float32)
    if p.ndim == x.ndim:
        return p
    if p.ndim != 1 or p.shape[0] != x.shape[axis]:
        raise ValueError(
            f"nn.batch_normalization({what}) must be 1-D of size {x.shape[axis]} (axis {axis}) or of rank "
            f"{x.ndim}; got shape {p.shape}"
        )
    shape = [1] * x.ndim
    shape[axis] = p.shape[0]
    return jnp.reshape(p, shape)


def batch_normalization(
    x: jax.Array,
    mean: ArrayLike,
    variance: ArrayLike,
    offset: Any = None,
    scale: ArrayLike | None = None,
    variance_epsilon: float = 1e-5,
    axis: int = 1,
    name: str | None = None,
) -> jax.Array:
    """``(x - mean) / sqrt(variance + variance_epsilon) * scale + offset`` with the given
    statistics; 1-D statistics and parameters apply along ``axis`` (default 1, NCHW)."""
    axis = checks.integer("nn.batch_normalization", "axis", axis, low=-x.ndim, high=x.ndim - 1) % x.ndim
    xf = x.astype(jnp.float32)
    y = (xf - _param(mean, x, axis, "mean")) * jax.lax.rsqrt(
        _param(variance, x, axis, "variance") + variance_epsilon
    )
    if scale is not None:
        y = y * _param(scale, x, axis, "scale")
    if offset is not None:
        y = y + _param(offset, x, axis, "offset")
    return y.astype(x.dtype)


def _affine(y, channels, name, affine):
    if not affine:
        return y
    gamma = _vars.get_variable(f"{name}_gamma", (1, channels, 1), jnp.float32, _vars.constant_initializer(1))
    beta = _vars.get_variable(f"{name}_beta", (1, channels, 1), jnp.float32, _vars.constant_initializer(0))
    return gamma * y + beta


def _normalize(x3, eps):
    """``x3`` ``(N, G, M)`` normalized over its last axis."""
    mean = jnp.mean(x3, axis=2, keepdims=True)
    var = jnp.var(x3, axis=2, keepdims=True)
    return (x3 - mean) / jnp.sqrt(var + eps)


def _name(name, base):
    return name if name is not None else _trace.require(f"nn.{base}").unique_name(base)


def group_normalization(
    x: jax.Array, num_groups: int = 32, eps: float = 1e-05, affine: bool = True, name: str | None = None
) -> jax.Array:
    """Normalizes each of ``num_groups`` channel groups of every example (NC..., at least
    3-D), then ``gamma * y + beta`` per channel when ``affine``."""
    if x.ndim < 3 or x.shape[1] % num_groups:
        raise ValueError(
            f"nn.GroupNorm needs an NC... input whose channels divide by num_groups={num_groups}; got {x.shape}"
        )
    n, c = x.shape[:2]
    y = _normalize(jnp.reshape(x.astype(jnp.float32), (n, num_groups, -1)), eps)
    y = _affine(jnp.reshape(y, (n, c, -1)), c, _name(name, "GroupNorm"), affine)
    return jnp.reshape(y, x.shape).astype(x.dtype)


def _instance(x, eps, affine, name, rank, base):
    if x.ndim != rank:
        raise ValueError(f"nn.{base} needs a rank-{rank} NC... input; got shape {x.shape}")
    n, c = x.shape[:2]
    y = _normalize(jnp.reshape(x.astype(jnp.float32), (n, c, -1)), eps)
    y = _affine(y, c, _name(name, base), affine)
    return jnp.reshape(y, x.shape).astype(x.dtype)


def instance_normalization1d(
    x: ArrayLike, eps: float = 1e-05, affine: bool = True, name: str | None = None
) -> jax.Array:
    """Normalizes each channel of each example of an NCW input over W."""
    return _instance(x, eps, affine, name, 3, "InstanceNorm1d")


def instance_normalization2d(
    x: ArrayLike, eps: float = 1e-05, affine: bool = True, name: str | None = None
) -> jax.Array:
    """Normalizes each channel of each example of an NCHW input over H and W."""
    return _instance(x, eps, affine, name, 4, "InstanceNorm2d")


def instance_normalization3d(
    x: ArrayLike, eps: float = 1e-05, affine: bool = True, name: str | None = None
) -> jax.Array:
    """Normalizes each channel of each example of an NCDHW input over D, H and W."""
    return _instance(x, eps, affine, name, 5, "InstanceNorm3d")

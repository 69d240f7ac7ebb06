"""Exact-enough float32 building blocks for schedules (all jit-safe, no control flow).

A schedule is evaluated in float32 inside the compiled step, but the frameworks it
mirrors compute in float64. Three tricks keep jobflow within ~1e-7 relative of them:

* integer powers ``gamma ** n`` come from tables of float64 powers (``ipow``): three
  lookups and two float32 products instead of ``exp(n * log(gamma))``, whose error
  grows with ``n``;
* cosine annealing uses the half-angle form ``(1 + cos(pi p)) / 2 = cos(pi p / 2)**2 =
  sin(pi (1 - p) / 2)**2`` on the smaller of the two arguments (``half_cos``), so the
  value stays accurate when it approaches 0 (float32 ``1 + cos(x)`` near ``x = pi``
  loses all relative precision);
* cycle positions are computed in int32 (``t mod T``) before any conversion to float.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "int_step",
    "f32",
    "ipow",
    "frac_pow",
    "half_cos",
    "half_cos_pair",
    "cos_mix",
    "lin_mix",
    "poly_decay",
    "split_float",
]

_LO_BITS = 10


def int_step(step):
    """The step as an int32 array, clamped at 0 (the counter never goes below 0)."""
    return jnp.maximum(jnp.asarray(step).astype(jnp.int32), 0)


def f32(x):
    return jnp.asarray(x).astype(jnp.float32)


@functools.lru_cache(maxsize=256)
def _pow_tables(base: float) -> tuple[np.ndarray, ...]:
    k = np.arange(1 << _LO_BITS, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        lo = np.power(base, k)
        mid = np.power(base, k * (1 << _LO_BITS))
        hi = np.power(base, np.arange(1 << (31 - 2 * _LO_BITS), dtype=np.float64) * (1 << (2 * _LO_BITS)))
        return tuple(np.asarray(t, np.float64).astype(np.float32) for t in (lo, mid, hi))


def ipow(base: float, n: ArrayLike) -> jax.Array:
    """``base ** n`` for a Python float ``base`` and an int32 array ``n >= 0``.

    Relative error <= 2.5 float32 ulps for every ``n < 2**31`` (``exp(n log base)`` in
    float32 has an error growing like ``n`` ulps).
    """
    lo, mid, hi = _pow_tables(float(base))
    n = jnp.maximum(jnp.asarray(n, jnp.int32), 0)
    mask = (1 << _LO_BITS) - 1
    return (
        jnp.asarray(lo)[n & mask]
        * jnp.asarray(mid)[(n >> _LO_BITS) & mask]
        * jnp.asarray(hi)[n >> (2 * _LO_BITS)]
    )


def frac_pow(base: float, num: ArrayLike, den: int) -> jax.Array:
    """``base ** (num / den)`` for int32 ``num >= 0`` and a Python int ``den > 0``.

    Splits ``num = q * den + r``: ``base**q`` exactly via :func:`ipow`, ``base**(r/den)``
    with ``exp`` of an argument below ``|log base|``.
    """
    num = jnp.maximum(jnp.asarray(num, jnp.int32), 0)
    q, r = num // den, num % den
    if base == 0:
        return jnp.where(num == 0, 1.0, 0.0).astype(jnp.float32)
    return ipow(base, q) * jnp.exp(f32(r) * np.float32(math.log(base) / den))


def half_cos_pair(done, left):
    """``(h, 1 - h)`` with ``h = (1 + cos(pi * done / (done + left))) / 2``, both accurate.

    ``done + left`` is the phase length (> 0); either may lie outside ``[0, total]``
    (periodic continuation). The smaller of the two angles is used:
    ``h = cos(a)**2, 1 - h = sin(a)**2`` with ``a = pi/2 * done/total``, or
    ``h = sin(b)**2, 1 - h = cos(b)**2`` with ``b = pi/2 * left/total``.
    """
    done, left = f32(done), f32(left)
    total = done + left
    use_done = jnp.abs(done) <= jnp.abs(left)
    angle = jnp.where(use_done, done, left) / total * np.float32(math.pi / 2)
    c, s = jnp.cos(angle) ** 2, jnp.sin(angle) ** 2
    return jnp.where(use_done, c, s), jnp.where(use_done, s, c)


def half_cos(done, left):
    """``(1 + cos(pi * done / (done + left))) / 2`` (see :func:`half_cos_pair`)."""
    return half_cos_pair(done, left)[0]


def cos_mix(start, end, done, left):
    """Cosine annealing from ``start`` (``done = 0``) to ``end`` (``left = 0``):
    ``start * h + end * (1 - h)``, a sum of two non-negative terms for non-negative rates
    (``end + (start - end) * h`` cancels when ``start`` and ``end`` are close in size)."""
    h, g = half_cos_pair(done, left)
    return start * h + end * g


def lin_mix(start, end, done, left):
    """Linear interpolation ``start * left/total + end * done/total``."""
    done, left = f32(done), f32(left)
    total = done + left
    return start * (left / total) + end * (done / total)


def poly_decay(n: ArrayLike, base: ArrayLike, end: float, d: int, power: float, cycle: bool) -> jax.Array:
    """OneFlow's polynomial decay: ``(base - end) * (1 - c / D') ** power + end`` with
    ``c = min(n, d), D' = d``, or with ``cycle``: ``c = max(n, 1), D' = d * ceil(c / d)``.
    ``1 - c / D'`` is ``(D' - c) / D'`` in integers."""
    total: Any
    if cycle:
        c = jnp.maximum(n, 1)
        total = d * ((c + d - 1) // d)
    else:
        c, total = jnp.minimum(n, d), d
    return (base - end) * (f32(total - c) / f32(total)) ** power + end


def split_float(x: float) -> tuple[int, float]:
    """``x = i + f`` with an int ``i`` and ``0 <= f < 1`` (for exact ``x - step``)."""
    i = math.floor(x)
    return int(i), float(x - i)

"""Element-wise math and activations beyond ``ops/math.py``: OneFlow's
``math_unary_elementwise_ops``, ``math_binary_elementwise_ops``, comparisons and the
``flow.nn`` activations (``elu``, ``hardsigmoid``, ``hardswish``, ``hardtanh``, ``relu6``,
``mish``, ``swish``).

Each follows OneFlow's kernel formula (``math_unary_elementwise_func.h``,
``math_binary_elementwise_func.h``): ``round`` rounds half to even (``nearbyint``),
``mod`` is the floor modulo (the result has the divisor's sign), ``floordiv`` is
``floor(x / y)``, ``xdivy`` / ``xlogy`` are 0 where ``x == 0``, ``reciprocal_no_nan`` is
0 where ``x == 0``. None of these ops is on OneFlow's mixed-precision lists, so under
automatic mixed precision they compute in float32 (low-precision inputs are cast up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
from jax.typing import ArrayLike

from jobflow._src.core import checks
from jobflow._src.ops import amp as _amp

__all__ = [
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "cos",
    "cosh",
    "erf",
    "erfc",
    "expm1",
    "floor",
    "lgamma",
    "log1p",
    "log_sigmoid",
    "reciprocal",
    "reciprocal_no_nan",
    "rint",
    "round",
    "sigmoid_v2",
    "sign",
    "sin",
    "sinh",
    "softplus",
    "tan",
    "tanh_v2",
    "atan2",
    "floordiv",
    "mod",
    "xdivy",
    "xlogy",
    "squared_difference",
    "greater_equal",
    "less_equal",
    "logical_and",
    "elu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "relu6",
    "mish",
    "swish",
    "polyval",
]


def _unary(fn: Callable[..., jax.Array], doc: str) -> Callable[..., jax.Array]:
    def op(x: ArrayLike, name: str | None = None) -> jax.Array:
        return fn(*_amp.float32(x))

    op.__doc__ = doc
    op.__name__ = op.__qualname__ = getattr(fn, "__name__", "op")
    return op


acos = _unary(jnp.arccos, "``arccos(x)``.")
acosh = _unary(jnp.arccosh, "``arccosh(x)``.")
asin = _unary(jnp.arcsin, "``arcsin(x)``.")
asinh = _unary(jnp.arcsinh, "``arcsinh(x)``.")
atan = _unary(jnp.arctan, "``arctan(x)``.")
atanh = _unary(jnp.arctanh, "``arctanh(x)``.")
ceil = _unary(jnp.ceil, "``ceil(x)`` (zero gradient, as OneFlow's).")
cos = _unary(jnp.cos, "``cos(x)``.")
cosh = _unary(jnp.cosh, "``cosh(x)``.")
erf = _unary(jsp.erf, "The error function.")
erfc = _unary(jsp.erfc, "``1 - erf(x)``.")
expm1 = _unary(jnp.expm1, "``exp(x) - 1``.")
floor = _unary(jnp.floor, "``floor(x)`` (zero gradient).")
lgamma = _unary(jsp.gammaln, "``log |Gamma(x)|``.")
log1p = _unary(jnp.log1p, "``log(1 + x)``.")
log_sigmoid = _unary(jax.nn.log_sigmoid, "``-log(1 + exp(-x))`` (computed stably).")
reciprocal = _unary(jnp.reciprocal, "``1 / x``.")
rint = _unary(jnp.rint, "Round to the nearest integer, half to even.")
round = _unary(jnp.round, "Round to the nearest integer, half to even (OneFlow's ``nearbyint``).")
sigmoid_v2 = _unary(jax.nn.sigmoid, "``1 / (1 + exp(-x))`` (OneFlow's unary-kernel sigmoid).")
sign = _unary(jnp.sign, "-1, 0 or 1.")
sin = _unary(jnp.sin, "``sin(x)``.")
sinh = _unary(jnp.sinh, "``sinh(x)``.")
softplus = _unary(jax.nn.softplus, "``log(1 + exp(x))`` (computed stably).")
tan = _unary(jnp.tan, "``tan(x)``.")
tanh_v2 = _unary(jnp.tanh, "``tanh(x)`` (OneFlow's unary-kernel tanh).")


def reciprocal_no_nan(x: ArrayLike, name: str | None = None) -> jax.Array:
    """``1 / x``, and 0 where ``x == 0``."""
    (x,) = _amp.float32(x)
    zero = x == 0
    return jnp.where(zero, jnp.zeros_like(x), 1 / jnp.where(zero, jnp.ones_like(x), x))


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[jax.Array, jax.Array]:
    x, y = _amp.float32(x, y)
    x, y = jnp.asarray(x), jnp.asarray(y)
    shape = jnp.broadcast_shapes(x.shape, y.shape)
    return jnp.broadcast_to(x, shape), jnp.broadcast_to(y, shape)


def atan2(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``atan2(x, y)``: the angle of the point ``(y, x)``, as ``std::atan2(x, y)``."""
    return jnp.arctan2(*_pair(x, y))


def floordiv(x: jax.Array, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``floor(x / y)``."""
    x, y = _pair(x, y)
    if jnp.issubdtype(x.dtype, jnp.integer):
        return jnp.floor_divide(x, y)
    return jnp.floor(x / y)


def mod(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """The floor modulo ``x - floor(x / y) * y``: the result has the sign of ``y``
    (OneFlow's ``FloorMod``, Python's ``%``)."""
    return jnp.remainder(*_pair(x, y))


def xdivy(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``x / y``, and 0 where ``x == 0``."""
    x, y = _pair(x, y)
    zero = x == 0
    return jnp.where(zero, jnp.zeros_like(x), x / jnp.where(zero, jnp.ones_like(y), y))


def xlogy(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``x * log(y)``, and 0 where ``x == 0``."""
    x, y = _pair(x, y)
    zero = x == 0
    return jnp.where(zero, jnp.zeros_like(x), x * jnp.log(jnp.where(zero, jnp.ones_like(y), y)))


def squared_difference(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``(x - y) ** 2``."""
    x, y = _pair(x, y)
    return jnp.square(x - y)


def greater_equal(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``x >= y`` (broadcasting); OneFlow returns int8, jobflow bool."""
    return jnp.greater_equal(*_pair(x, y))


def less_equal(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``x <= y`` (broadcasting); OneFlow returns int8, jobflow bool."""
    return jnp.less_equal(*_pair(x, y))


def logical_and(x: ArrayLike, y: ArrayLike, name: str | None = None) -> jax.Array:
    """``x and y`` element-wise (nonzero is true); OneFlow returns int8, jobflow bool."""
    x, y = _pair(x, y)
    return jnp.logical_and(x != 0, y != 0)


def elu(x: jax.Array, alpha: float = 1.0, name: str | None = None) -> jax.Array:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    (x,) = _amp.float32(x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def hardsigmoid(x: ArrayLike, name: str | None = None) -> jax.Array:
    """``0`` below -3, ``1`` above 3, ``x / 6 + 1/2`` between (OneFlow's kernel)."""
    (x,) = _amp.float32(x)
    return jnp.clip(x / 6 + 0.5, 0, 1)


def hardswish(x: jax.Array, name: str | None = None) -> jax.Array:
    """``x * hardsigmoid(x)``: 0 below -3, ``x`` above 3."""
    (x,) = _amp.float32(x)
    return x * jnp.clip(x / 6 + 0.5, 0, 1)


def hardtanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, name: str | None = None) -> jax.Array:
    """``x`` clipped to ``[min_val, max_val]``; ``min_val < max_val`` is required."""
    min_val = checks.number("nn.hardtanh", "min_val", min_val)
    max_val = checks.number("nn.hardtanh", "max_val", max_val, low=min_val, low_open=True)
    (x,) = _amp.float32(x)
    return jnp.clip(x, min_val, max_val)


def relu6(x: ArrayLike, name: str | None = None) -> jax.Array:
    """``min(max(x, 0), 6)``."""
    return hardtanh(x, 0.0, 6.0)


def mish(x: jax.Array, name: str | None = None) -> jax.Array:
    """``x * tanh(softplus(x))``."""
    (x,) = _amp.float32(x)
    return x * jnp.tanh(jax.nn.softplus(x))


def swish(x: jax.Array, beta: float = 1.0, name: str | None = None) -> jax.Array:
    """``x * sigmoid(beta * x)``."""
    (x,) = _amp.float32(x)
    return x * jax.nn.sigmoid(beta * x)


def polyval(coeffs: Any, x: ArrayLike, name: str | None = None) -> jax.Array:
    """``coeffs[0] * x**(n-1) + ... + coeffs[n-1]`` by Horner's rule (zeros for no
    coefficients)."""
    if not isinstance(coeffs, (list, tuple)):
        raise TypeError(f"math.polyval(coeffs) must be a list or tuple; got {type(coeffs).__name__}")
    (x,) = _amp.float32(x)
    p = jnp.zeros_like(x)
    for c in coeffs:
        p = c + p * x
    return p

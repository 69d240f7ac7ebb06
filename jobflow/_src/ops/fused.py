"""OneFlow's fused and gradient ops in ``flow.nn`` / ``flow.math``, written unfused (XLA
fuses them again): ``fused_bias_add_gelu``, ``fused_self_attention_query_mul_key_and_value``,
``logsoftmax``, and the explicit gradients ``softmax_grad``, ``sigmoid_grad``, ``gelu_grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jobflow._src.core import checks
from jobflow._src.ops import amp as _amp
from jobflow._src.ops import nn as _nn

__all__ = [
    "fused_bias_add_gelu",
    "fused_self_attention_query_mul_key_and_value",
    "logsoftmax",
    "softmax_grad",
    "sigmoid_grad",
    "gelu_grad",
]


def fused_bias_add_gelu(
    value: jax.Array, bias: jax.Array, data_format: Any = None, name: str | None = None
) -> jax.Array:
    """``gelu(bias_add(value, bias, data_format))`` (exact erf GELU; a gray-list op)."""
    value, bias = _amp.gray(value, bias)
    return jax.nn.gelu(_nn.bias_add(value, bias, data_format), approximate=False)


def fused_self_attention_query_mul_key_and_value(
    x: jax.Array, head_size: Any, alpha: float = 1.0, name: str | None = None
) -> tuple[jax.Array, ...]:
    """Splits ``x`` ``(seq, batch, heads * 3 * head_size)`` into per-head query, key and
    value ``(batch, heads, seq, head_size)`` and returns ``(alpha * q @ k^T, v)``: the
    scores ``(batch, heads, seq, seq)`` and the values. A white-list op under AMP."""
    head_size = checks.integer(
        "nn.fused_self_attention_query_mul_key_and_value", "head_size", head_size, low=1
    )
    if x.ndim != 3 or x.shape[2] % (3 * head_size):
        raise ValueError(
            f"nn.fused_self_attention_query_mul_key_and_value needs x (seq, batch, heads*3*{head_size}); got {x.shape}"
        )
    (x,) = _amp.white(x)
    seq, batch = x.shape[:2]
    h = jnp.reshape(x, (seq, batch, -1, 3 * head_size))
    q, k, v = (jnp.transpose(h[..., i * head_size : (i + 1) * head_size], (1, 2, 0, 3)) for i in range(3))
    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2))
    return (scores if alpha == 1.0 else scores * jnp.asarray(alpha, scores.dtype)), v


def logsoftmax(logits: jax.Array, axis: int | None = None, name: str | None = None) -> jax.Array:
    """``log(softmax(logits, axis))`` (OneFlow's ``nn.logsoftmax``; ``nn.log_softmax`` is
    the stable form and equal wherever this one is finite)."""
    return _nn.log_softmax(logits, axis)


def softmax_grad(
    y: ArrayLike, dy: Any, axis: int | Sequence[int] | None = None, name: str | None = None
) -> jax.Array:
    """The gradient through a softmax with output ``y``: ``y * (dy - sum(dy * y, axis))``."""
    axis = -1 if axis is None else axis
    y, dy = _amp.float32(y, dy)
    return y * (dy - jnp.sum(dy * y, axis=axis, keepdims=True))


def sigmoid_grad(y: ArrayLike, dy: Any, name: str | None = None) -> jax.Array:
    """The gradient through a sigmoid with output ``y``: ``dy * y * (1 - y)``."""
    y, dy = _amp.float32(y, dy)
    return dy * y * (1 - y)


def gelu_grad(x: ArrayLike, dy: Any, name: str | None = None) -> jax.Array:
    """The gradient through the exact GELU at ``x``: ``dy * (Phi(x) + x * phi(x))``."""
    x, dy = _amp.float32(x, dy)
    cdf = 0.5 * (1 + jax.scipy.special.erf(x / jnp.sqrt(2.0)))
    pdf = jnp.exp(-0.5 * x * x) / jnp.sqrt(2 * jnp.pi)
    return dy * (cdf + x * pdf)

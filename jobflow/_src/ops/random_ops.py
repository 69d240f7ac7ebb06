"""Random ops inside job bodies (``flow.random.*``, ``flow.nn.random_mask_like`` and the
fused dropout ops).

Each call draws from the job's random stream ``System-RNG-<job>`` (one fresh key per op
per step, so results are reproducible across save / load / resume); a ``seed`` mixes a
fixed key into that draw, as ``nn.dropout`` does. Unlike ``nn.dropout`` these ops also
draw in predict jobs, as in OneFlow (``fused_bias_add_dropout`` is the exception: it is
the identity plus bias outside train jobs, as OneFlow's).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core import trace as _trace
from jobflow._src.ops import amp as _amp
from jobflow._src.ops import indexing as _indexing
from jobflow._src.ops import nn as _nn

__all__ = [
    "bernoulli",
    "coin_flip",
    "generate_random_batch_permutation_indices",
    "shuffle",
    "random_mask_like",
    "fused_bias_add_dropout",
    "fused_scale_tril_softmax_dropout",
]


def _key(op, seed):
    """A fresh key for ``op`` from the job's stream, mixed with ``seed`` when given."""
    key = _trace.require(op).next_key()
    if seed is None:
        return key
    return jax.random.fold_in(jax.random.key(int(seed)), jax.random.randint(key, (), 0, 2**31 - 1))


def bernoulli(x, seed=None, dtype=None, name="Bernoulli"):
    """1 with probability ``x`` (element-wise), else 0, in ``dtype`` (default ``x``'s)."""
    key = _key("random.bernoulli", seed)
    dt = _dtypes.canonical(dtype) if dtype is not None else x.dtype
    return (jax.random.uniform(key, x.shape) < x.astype(jnp.float32)).astype(dt)


def coin_flip(batch_size=1, seed=None, probability=0.5, name="CoinFlip"):
    """``batch_size`` int8 draws: 1 with ``probability``, else 0."""
    batch_size = checks.integer("random.coin_flip", "batch_size", batch_size, low=1)
    probability = checks.number("random.coin_flip", "probability", probability, low=0, high=1)
    key = _key("random.coin_flip", seed)
    return (jax.random.uniform(key, (batch_size,)) < probability).astype(jnp.int8)


def generate_random_batch_permutation_indices(value, seed=None, name=None):
    """A random permutation (int32) of ``0 .. value.shape[0] - 1``."""
    key = _key("random.generate_random_batch_permutation_indices", seed)
    return jax.random.permutation(key, value.shape[0]).astype(jnp.int32)


def shuffle(value, seed=None, name=None):
    """``value`` with its first axis randomly permuted."""
    perm = generate_random_batch_permutation_indices(value, seed)
    return _indexing.gather(value, perm)


def _mask(like, rate, seed, noise_shape, op):
    if noise_shape is not None:
        raise NotImplementedError(f"{op}(noise_shape) is not supported (nor in OneFlow)")
    rate = checks.number(op, "rate", rate, low=0, high=1, high_open=True)
    return jax.random.uniform(_key(op, seed), like.shape) >= rate, rate


def random_mask_like(
    like: ArrayLike, rate: Any, seed: Any = None, noise_shape: Any = None, name: str | None = None
) -> jax.Array:
    """An int8 mask of ``like``'s shape: 1 with probability ``1 - rate``."""
    mask, _ = _mask(like, rate, seed, noise_shape, "nn.random_mask_like")
    return mask.astype(jnp.int8)


def fused_bias_add_dropout(
    value: jax.Array,
    bias: jax.Array,
    data_format: Any = None,
    rate: float = 0.0,
    noise_shape: Any = None,
    seed: Any = None,
    name: str | None = None,
) -> jax.Array:
    """``dropout(bias_add(value, bias), rate)``: the bias add alone outside train jobs or
    when ``rate == 0``. A gray-list op under mixed precision."""
    ctx = _trace.require("nn.fused_bias_add_dropout")
    rate = checks.number("nn.fused_bias_add_dropout", "rate", rate, low=0, high=1, high_open=True)
    value, bias = _amp.gray(value, bias)
    out = _nn.bias_add(value, bias, data_format)
    if not ctx.is_train or rate == 0:
        return out
    mask, _ = _mask(value, rate, seed, noise_shape, "nn.fused_bias_add_dropout")
    return jnp.where(mask, out * jnp.asarray(1.0 / (1.0 - rate), out.dtype), jnp.zeros((), out.dtype))


def fused_scale_tril_softmax_dropout(
    x: jax.Array,
    diagonal: int = 0,
    fill_value: float = 0,
    scale: float = 1,
    rate: float = 0.0,
    noise_shape: Any = None,
    seed: Any = None,
    name: str | None = None,
) -> jax.Array:
    """``dropout(softmax(tril(x * scale, fill_value)), rate)`` over the last axis. As in
    OneFlow the mask is drawn in every job (pass ``rate=0`` for evaluation)."""
    mask, rate = _mask(x, rate, seed, noise_shape, "math.fused_scale_tril_softmax_dropout")
    (x,) = _amp.gray(x)
    y = _nn.softmax(_indexing.fused_scale_tril(x, diagonal, float(fill_value), scale), axis=-1)
    return jnp.where(mask, y * jnp.asarray(1.0 / (1.0 - rate), y.dtype), jnp.zeros((), y.dtype))

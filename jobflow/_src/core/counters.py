"""Arithmetic on int32 step counters that cannot overflow.

Counters are int32 scalars in the store. They saturate at ``INT32_MAX`` instead of
wrapping, and anything derived from them (Adam's bias-correction exponent ``t = step +
1``) is computed in float32, so a counter of ``2**31 - 1`` (reachable from a checkpoint)
never turns into a negative number.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["INT32_MAX", "increment", "count_from_one"]

INT32_MAX = int(np.iinfo(np.int32).max)


def increment(counter: jax.Array) -> jax.Array:
    """``counter + 1``, saturating at ``INT32_MAX``."""
    return jnp.where(counter < INT32_MAX, counter + 1, counter)


def count_from_one(step: jax.Array) -> jax.Array:
    """``t = step + 1`` as float32 (the bias-correction exponent), without int overflow."""
    return jnp.asarray(step).astype(jnp.float32) + 1.0

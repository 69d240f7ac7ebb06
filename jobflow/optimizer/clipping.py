"""Gradient clipping rules (``flow.optimizer.grad_clipping``).

A rule is a callable ``grads: {name: g} -> (clipped grads, global norm before clipping)``
and runs after regularization, before the update, inside the compiled step.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax.numpy as jnp

from jobflow.optimizer.base import global_norm

__all__ = ["ClipByGlobalNorm", "by_global_norm"]


def _check_clip(fn, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{fn}(clip_norm) must be a finite number > 0; got clip_norm={value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class ClipByGlobalNorm:
    """``g_i <- g_i * clip_norm / max(||G||, clip_norm)``, ``||G|| = sqrt(sum_i ||g_i||^2)``.

    This is OneFlow's documented rule (its kernel before 2022 computed
    ``g / max(||G||, clip_norm)``, right only for clip_norm = 1). When every gradient is
    zero the norm is 0 and the gradients stay 0 (no 0/0).
    """

    clip_norm: float

    def __post_init__(self):
        object.__setattr__(self, "clip_norm", _check_clip("by_global_norm", self.clip_norm))

    def __call__(self, grads: dict):
        norm = global_norm(grads)
        factor = self.clip_norm / jnp.maximum(norm, self.clip_norm)
        return {n: (g * factor).astype(g.dtype) for n, g in grads.items()}, norm


def by_global_norm(clip_norm: float) -> ClipByGlobalNorm:
    """Clips all gradients of the optimizer together by their global L2 norm."""
    return ClipByGlobalNorm(clip_norm)

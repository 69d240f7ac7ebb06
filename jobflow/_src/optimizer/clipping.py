"""Gradient clipping rules (``flow.optimizer.grad_clipping``).

A rule is a callable ``grads: {name: g} -> (clipped grads, global norm before clipping)``
and runs after regularization, before the update, inside the compiled step (as the optax
transformation ``transforms.clip(rule)``, whose state reports the norm). It covers
all variables of one optimizer (all of its parameter groups); each optimizer of a
``CombinedOptimizer`` clips its own. ``job.last_info["grad_norm"]`` reports the global
norm before clipping. The rules here also take the row-sparse gradients of embedding
tables (``sparse_rows.IndexedRows``; their norm is the dense gradient's norm) and mark
so with ``row_sparse_ok``; a rule without that mark makes its variables update densely.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import ClassVar

import jax
import jax.numpy as jnp

from jobflow._src.core.arguments import checked_arguments
from jobflow._src.optimizer.base import global_norm, l2_norm
from jobflow._src.optimizer.sparse_rows import map_values

__all__ = ["ClipByGlobalNorm", "ClipByNorm", "ClipByValue", "by_global_norm", "by_norm", "by_value"]


def _check_clip(fn, value, arg="clip_norm"):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"{fn}({arg}) must be a finite number > 0; got {arg}={value!r}")
    return float(value)


@checked_arguments
@dataclasses.dataclass(frozen=True)
class ClipByGlobalNorm:
    """``g_i <- g_i * clip_norm / max(||G||, clip_norm)``, ``||G|| = sqrt(sum_i ||g_i||^2)``.

    This is OneFlow's documented rule (its kernel before 2022 computed
    ``g / max(||G||, clip_norm)``, right only for clip_norm = 1). When every gradient is
    zero the norm is 0 and the gradients stay 0 (no 0/0).
    """

    row_sparse_ok: ClassVar[bool] = True  # takes sparse_rows.IndexedRows gradients

    clip_norm: float

    def __post_init__(self):
        object.__setattr__(self, "clip_norm", _check_clip("by_global_norm", self.clip_norm))

    def __call__(self, grads: dict) -> tuple[dict[str, jax.Array], jax.Array]:
        norm = global_norm(grads)
        factor = self.clip_norm / jnp.maximum(norm, self.clip_norm)
        return {n: map_values(lambda x: (x * factor).astype(x.dtype), g) for n, g in grads.items()}, norm


@checked_arguments
def by_global_norm(clip_norm: float) -> ClipByGlobalNorm:
    """Clips all gradients of the optimizer together by their global L2 norm."""
    return ClipByGlobalNorm(clip_norm)


@checked_arguments
@dataclasses.dataclass(frozen=True)
class ClipByNorm:
    """Per variable: ``g_i <- g_i * clip_norm / max(||g_i||, clip_norm)`` (TensorFlow's
    ``clip_by_norm`` applied to each gradient). A zero gradient stays zero."""

    row_sparse_ok: ClassVar[bool] = True  # takes sparse_rows.IndexedRows gradients

    clip_norm: float

    def __post_init__(self):
        object.__setattr__(self, "clip_norm", _check_clip("by_norm", self.clip_norm))

    def __call__(self, grads: dict) -> tuple[dict[str, jax.Array], jax.Array]:
        def clipped(g):
            factor = self.clip_norm / jnp.maximum(l2_norm(g), self.clip_norm)
            return map_values(lambda x: (x * factor).astype(x.dtype), g)

        return {n: clipped(g) for n, g in grads.items()}, global_norm(grads)


@checked_arguments
@dataclasses.dataclass(frozen=True)
class ClipByValue:
    """Elementwise: ``g <- clip(g, -clip_value, clip_value)`` (PyTorch's
    ``clip_grad_value_``, Keras' ``clipvalue``)."""

    row_sparse_ok: ClassVar[bool] = True  # takes sparse_rows.IndexedRows gradients

    clip_value: float

    def __post_init__(self):
        object.__setattr__(self, "clip_value", _check_clip("by_value", self.clip_value, "clip_value"))

    def __call__(self, grads: dict) -> tuple[dict[str, jax.Array], jax.Array]:
        clipped = {
            n: map_values(lambda x: jnp.clip(x, -self.clip_value, self.clip_value), g)
            for n, g in grads.items()
        }
        return clipped, global_norm(grads)


@checked_arguments
def by_norm(clip_norm: float) -> ClipByNorm:
    """Clips each gradient separately by its own L2 norm."""
    return ClipByNorm(clip_norm)


@checked_arguments
def by_value(clip_value: float) -> ClipByValue:
    """Clips each gradient element into ``[-clip_value, clip_value]``."""
    return ClipByValue(clip_value)

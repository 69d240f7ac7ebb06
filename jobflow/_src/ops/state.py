"""Writing a variable from a job body: ``flow.assign(ref, value)`` (and OneFlow's
``flow.system.assign``), e.g. for an exponential moving average of the weights.

``ref`` must be the array ``flow.get_variable`` returned in this job (jobflow finds the
variable by identity). The new value is written after the step, like the batch-norm
moving statistics. Differences from OneFlow: only train jobs write (predict jobs change
no state, so ``assign`` raises there), the variable must be non-trainable (the optimizer
owns trainable ones), and reads later in the same body still see the old value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core import trace as _trace

__all__ = ["assign", "system_assign"]


def _variable_name(ctx, ref) -> str:
    for name, value in ctx.variables.items():
        if value is ref:
            return name
    raise ValueError(
        "assign(ref) must be the array flow.get_variable returned in this job body "
        f"(not a value computed from it); got an array of shape {getattr(ref, 'shape', None)}"
    )


def assign(ref: jax.Array, value: ArrayLike, dtype: DTypeLike | None = None, name: str | None = None) -> None:
    """Sets the variable ``ref`` to ``value`` (cast to ``dtype`` or the variable's dtype,
    broadcast to its shape) when the train step ends."""
    ctx = _trace.require("assign")
    var = _variable_name(ctx, ref)
    if not ctx.is_train:
        raise ValueError(f"assign({var!r}) needs a train job: predict jobs change no state")
    spec = ctx.specs.get(var)
    if spec is not None and spec.trainable:
        raise ValueError(
            f"assign({var!r}): the variable is trainable, so the optimizer writes it; "
            "create it with trainable=False to assign it"
        )
    dt = _dtypes.canonical(dtype) if dtype is not None else ref.dtype
    new = jnp.broadcast_to(jnp.asarray(value).astype(dt), ref.shape)
    ctx.updates[var] = jax.lax.stop_gradient(new)


def system_assign(ref, value, validate_shape=None, use_locking=None, name=None):
    """:func:`assign` (OneFlow's ``flow.system.assign``; the extra flags have no effect)."""
    assign(ref, value)

"""``flow.parallel_cast`` and ``flow.hierarchical_parallel_cast``: layout hints for an
activation inside a job body.

``parallel_cast(x, distribute=d)`` returns ``x`` unchanged in value and asks XLA to lay it
out as ``d`` says (``jax.lax.with_sharding_constraint``); ``gradient_distribute=g`` asks
the same of the gradient flowing back into ``x`` (a ``jax.custom_vjp`` whose backward
constrains the cotangent; without ``g`` the gradient's layout is left to XLA). XLA inserts whatever communication the layouts need, so the
results are those of a job without the casts; only where the pieces live (and so the
collectives and the memory) changes.

The distributes map onto the job's mesh as for variables (``graph.distribute.partition_spec``):
on a one-axis mesh ``split(k)`` splits dimension ``k`` over all the job's devices and
``broadcast()`` replicates; on a 2-D ``("data", "model")`` mesh a single distribute names
the ``"model"`` axis and leaves the others to XLA, and a list ``[d_data, d_model]`` names
both. The casts do nothing while the body is discovered, on one device, and in the
mirrored view (each device's body sees whole per-device arrays there).
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding

from jobflow._src.core import checks as _checks
from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import ArgumentError
from jobflow._src.graph import distribute as _dist

__all__ = ["parallel_cast", "hierarchical_parallel_cast", "cast_to_current_logical_view"]


def _sharding(where: str, x: jax.Array, layout: tuple, mesh) -> NamedSharding | None:
    """The sharding that ``layout`` asks of ``x`` on ``mesh``; None when there is nothing to
    constrain (no layout, one device, or an ``auto()`` layout)."""
    _dist.check_layout_rank(where, layout, tuple(x.shape))
    if not layout or mesh is None or mesh.size == 1:
        return None
    if len(_dist.mesh_layout(mesh.axis_names, layout)) > len(mesh.axis_names):
        raise ArgumentError(
            f"{where}: the 2-D layout {_dist.layout_text(layout)} needs a placement with "
            f"hierarchy=(data, model); the job's mesh is one-dimensional"
        )
    spec = _dist.partition_spec(mesh.axis_names, layout, x.ndim, activation=True)
    return None if spec is None else NamedSharding(mesh, spec)


def _cast(x: jax.Array, value: NamedSharding | None, grad: NamedSharding | None) -> jax.Array:
    """``x`` constrained to ``value``, its cotangent to ``grad`` (either may be None).

    A ``custom_vjp``: the value's constraint does not reach the cotangent (JAX's own
    transpose of ``with_sharding_constraint`` would constrain it too); without ``grad`` the
    cotangent's layout is XLA's choice, as OneFlow's cast without ``gradient_distribute``
    leaves it to its SBP deduction.
    """
    if value is None and grad is None:
        return x

    @jax.custom_vjp
    def cast(v):
        return v if value is None else jax.lax.with_sharding_constraint(v, value)

    def fwd(v):
        return cast(v), None

    def bwd(_, g):
        return (g if grad is None else jax.lax.with_sharding_constraint(g, grad),)

    cast.defvjp(fwd, bwd)
    return cast(x)


def _apply(op: str, x: Any, value: tuple, grad: tuple, args: tuple[str, str]) -> jax.Array:
    """``x`` cast by ``op``; ``args`` name the value and gradient arguments in errors."""
    ctx = _trace.require(op)
    if not isinstance(x, jax.Array):
        raise ArgumentError(f"{op} needs an array (a blob of the job body); got {type(x).__name__}")
    mesh = None if ctx.discover else ctx.mesh
    value_sharding = _sharding(f"{op}({args[0]})", x, value, mesh)
    return _cast(x, value_sharding, _sharding(f"{op}({args[1]})", x, grad, mesh))


def parallel_cast(
    input: jax.Array, name: str | None = None, distribute: Any = None, gradient_distribute: Any = None
) -> jax.Array:
    """``input`` unchanged, laid out as ``distribute`` says; its gradient laid out as
    ``gradient_distribute`` says (OneFlow's ``parallel_cast``; layout hints only: the values
    and gradients are exactly those without the cast).

    Args:
      input: an array of the job body.
      name: accepted for OneFlow compatibility (no effect).
      distribute: ``flow.distribute.split(axis)``, ``broadcast()``, ``auto()`` or None (no
        constraint); on a 2-D mesh a list ``[d_data, d_model]`` names both mesh axes.
      gradient_distribute: the same for the gradient that flows back into ``input``.

    Raises:
      ArgumentError (a ``TypeError`` and a ``ValueError``): a distribute of a wrong type
        (the message echoes it), or a ``split`` axis ``input`` does not have.
    """
    value = _dist.as_layout("parallel_cast(distribute)", distribute)
    grad = _dist.as_layout("parallel_cast(gradient_distribute)", gradient_distribute)
    return _apply("parallel_cast", input, value, grad, ("distribute", "gradient_distribute"))


def hierarchical_parallel_cast(
    input: jax.Array,
    parallel_distribution: Any,
    grad_mode: str | None = None,
    grad_parallel_distribution: Any = None,
    name: str | None = None,
) -> jax.Array:
    """OneFlow's ``hierarchical_parallel_cast``: :func:`parallel_cast` with one distribute
    (or ``"S(k)"`` / ``"B"`` string) per axis of the placement's hierarchy.

    ``grad_mode``: ``"restore"`` (OneFlow's default: the gradient goes back to the input's
    layout; jobflow leaves it to XLA, which propagates the input's), ``"identity"`` (the
    gradient takes ``parallel_distribution`` too) or ``"manual"`` (the gradient takes
    ``grad_parallel_distribution``).
    """
    if grad_mode is not None:
        _checks.choice(
            "hierarchical_parallel_cast", "grad_mode", grad_mode, ("restore", "identity", "manual")
        )
    value = _dist.as_layout("hierarchical_parallel_cast", parallel_distribution=parallel_distribution)
    grad: tuple = value if grad_mode == "identity" else ()
    if grad_mode == "manual":
        grad = _dist.as_layout(
            "hierarchical_parallel_cast(grad_parallel_distribution)",
            parallel_distribution=grad_parallel_distribution,
        )
    args = ("parallel_distribution", "grad_parallel_distribution")
    return _apply("hierarchical_parallel_cast", input, value, grad, args)


def cast_to_current_logical_view(x: jax.Array) -> jax.Array:
    """``x`` itself (OneFlow's cast between a consistent and a mirrored blob, an identity in
    value): a jobflow job runs in one view, so every array of its body already is of it
    (global arrays in the consistent view, this device's in the mirrored view)."""
    _trace.require("cast_to_current_logical_view")
    return x

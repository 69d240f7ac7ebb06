"""The ``Optimizer`` base class.

An optimizer's update rule is an optax ``GradientTransformation`` built by
``_make_tx(lr, step)`` for the current learning rate ``lr = lr_scheduler(step)`` and the
job's step counter ``step`` (both traced scalars; bias corrections use ``t = step + 1``
computed in float32, ``core/counters.count_from_one``). ``_build_tx(lr, step)`` chains
what comes before the rule for this optimizer: coupled weight decay and gradient
centralization. The ``Optimizer`` class adds what the static-job API needs around it:
the schedule, the variable selection and parameter groups (``leaves()``), weight-decay
rules, gradient clipping and loss scaling.

How the optimizers run in a train step (regularizers -> clipping -> per group
``lr(step)``, coupled decay, centralization, rule, as one ``optax.chain``) and how their
state is named in the store is ``plans.py``.
"""

from __future__ import annotations

import copy
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jobflow._src.core import checks
from jobflow._src.core import trace as _trace
from jobflow._src.core.arguments import CheckedArguments
from jobflow._src.optimizer import groups, loss_scale
from jobflow._src.optimizer import sparse_rows as _sparse_rows
from jobflow._src.optimizer.loss_scale import LossScalePolicy

# The plan API lives in plans.py (which never imports this module); re-exported for the runtime.
from jobflow._src.optimizer.plans import OptimizerPlan, apply_plans, build_plan, build_plans, select_variables
from jobflow._src.optimizer.weight_decay import coupled_decay
from jobflow._src.schedule.base import Schedule, as_schedule

__all__ = [
    "Optimizer",
    "select_variables",
    "OptimizerPlan",
    "build_plan",
    "build_plans",
    "apply_plans",
    "l2_norm",
    "global_norm",
]

# What the optimizers' constructors accept (see ``Optimizer``'s docstring).
LearningRate: TypeAlias = float | Schedule | Callable[..., Any] | Sequence[float] | np.ndarray | jax.Array
VariableSelection: TypeAlias = str | Sequence[str] | Sequence[dict[str, Any]] | Callable[[str], bool]
GradClipping: TypeAlias = Callable[[dict[str, jax.Array]], Any]


def _check_loss_scale_factor(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"loss_scale_factor must be a number > 0 or None; got {value!r}")
    return float(value)


def _check_selection(where: str, sel):
    """A variable selection: a list of full names, a regex, or a predicate ``name -> bool``."""
    if isinstance(sel, str):
        try:
            re.compile(sel)
        except re.error as e:
            raise ValueError(f"{where}: variables={sel!r} is not a valid regex: {e}") from None
    if not (
        isinstance(sel, (str, re.Pattern))
        or callable(sel)
        or (isinstance(sel, Sequence) and all(isinstance(v, str) for v in sel))
    ):
        raise TypeError(
            f"{where}: variables must be None, a list of variable names, a regex, a predicate "
            f"name -> bool, or a list of parameter-group dicts; got {sel!r}"
        )
    return sel


class Optimizer(CheckedArguments):
    """Base of every jobflow optimizer.

    Args (shared by every optimizer, as in OneFlow):
      lr_scheduler: a number, a schedule (``flow.optimizer.CosineScheduler(...)``), any
        callable ``step -> lr`` (optax schedules work as they are), or a list / 1-D array
        indexed by step (the last value holds after the end).
      loss_scale_factor: a static loss scale ``S``: gradients are computed for
        ``loss * S`` and divided by ``S`` before regularization and clipping.
      grad_clipping: ``flow.optimizer.grad_clipping.by_global_norm(clip_norm)``,
        ``by_norm(clip_norm)`` or ``by_value(clip_value)``; it covers all of this
        optimizer's variables (all of its parameter groups).
      train_step_lbn: accepted for OneFlow compatibility; the job's own counter is used.
      loss_scale_policy: a loss-scale policy (mutually exclusive with
        ``loss_scale_factor``): ``flow.optimizer.loss_scale.static_loss_scale(S)``,
        ``dynamic_loss_scale(...)``, ``FixedLossScaleManager(...)`` or
        ``DynamicLossScaleManager(...)`` (see :mod:`jobflow.optimizer.loss_scale`). Set on
        the job's top-level optimizer (a ``CombinedOptimizer`` holds the job's one scale).
      variables: which trainable variables this optimizer updates: None (all that the
        job uses), a list of full names, a regex (searched in each full name), a
        predicate ``name -> bool``, or MindSpore-style parameter groups (a list of dicts,
        see :mod:`jobflow.optimizer.groups`).

    Optimizers with a weight decay also take ``weight_decay`` (None or 0: off) and
    ``weight_decay_includes`` / ``weight_decay_excludes`` (see
    :mod:`jobflow.optimizer.weight_decay`).
    """

    # True where lr_scheduler may be None (Optax's complete optimizers, CombinedOptimizer).
    _lr_optional: bool = False
    # How ``weight_decay`` enters the update: None (the optimizer has none), "decoupled"
    # (inside the rule, ``_make_tx`` reads ``self.weight_decay_for(name)``) or "coupled" (L2:
    # added to the gradient before the rule by ``_build_tx``).
    _weight_decay_kind: str | None = None
    # True when the rule is elementwise along axis 0 (a row's update reads only that row
    # of the gradient, the variable and its slots): a lazy variable read only through
    # flow.gather may then update just the gathered rows (optimizer/sparse_rows.py).
    _row_local: bool = False

    def __init__(
        self,
        lr_scheduler: LearningRate | None,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        weight_decay: float | None = None,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
    ) -> None:
        owner = type(self).__name__
        if lr_scheduler is None and not self._lr_optional:
            raise TypeError(
                f"{owner}(lr_scheduler) is required: a number, a schedule, a callable step -> lr "
                f"or a list of learning rates; got None"
            )
        self.lr_scheduler = None if lr_scheduler is None else as_schedule(lr_scheduler)
        self.loss_scale_factor = _check_loss_scale_factor(loss_scale_factor)
        if loss_scale_factor is not None and loss_scale_policy is not None:
            raise ValueError("loss_scale_factor and loss_scale_policy are mutually exclusive; set one")
        self.loss_scale_policy = loss_scale_policy
        loss_scale.as_policy(self.loss_scale_factor, loss_scale_policy, owner)  # checks both
        if grad_clipping is not None and not callable(grad_clipping):
            raise TypeError(
                f"grad_clipping must be flow.optimizer.grad_clipping.by_global_norm(...) or "
                f"another clipping rule; got {grad_clipping!r}"
            )
        self.grad_clipping = grad_clipping
        self.weight_decay = (
            0.0 if weight_decay is None else checks.number(owner, "weight_decay", weight_decay, low=0)
        )
        self.weight_decay_includes = checks.patterns(owner, "weight_decay_includes", weight_decay_includes)
        self.weight_decay_excludes = checks.patterns(owner, "weight_decay_excludes", weight_decay_excludes)
        if self.weight_decay_includes is not None and self.weight_decay_excludes is not None:
            raise ValueError(
                f"{owner}: set weight_decay_includes or weight_decay_excludes, not both; got "
                f"includes={weight_decay_includes!r} and excludes={weight_decay_excludes!r}"
            )
        self.grad_centralization = False
        self._groups: list[dict] | None = None
        self._parent: Optimizer | None = None
        self._group_index: int | None = None
        if groups.is_group_list(variables):
            self._groups = groups.parse_groups(
                owner, variables, self._weight_decay_kind is not None, _check_selection
            )
            self.variables = None
        else:
            self.variables = None if variables is None else _check_selection(f"{owner}(variables)", variables)

    # -- what subclasses implement ---------------------------------------------------
    def _make_tx(self, lr, step) -> optax.GradientTransformation:
        """The update rule for learning rate ``lr`` at step ``step`` (traced scalars).

        ``tx.update(grads, state, params)`` takes and returns dicts keyed by variable
        name and returns the deltas added to the params.
        """
        raise NotImplementedError

    # -- composition ------------------------------------------------------------------
    def weight_decay_for(self, name: str) -> float:
        """The weight decay of variable ``name`` (0 when it is filtered out)."""
        if not self.weight_decay:
            return 0.0
        if self.weight_decay_includes is not None:
            return self.weight_decay if checks.matches_any(self.weight_decay_includes, name) else 0.0
        if self.weight_decay_excludes is not None:
            return 0.0 if checks.matches_any(self.weight_decay_excludes, name) else self.weight_decay
        return self.weight_decay

    def _build_tx(self, lr, step) -> optax.GradientTransformation:
        """Coupled weight decay -> gradient centralization -> the rule (MindSpore's order)."""
        pre = []
        if self._weight_decay_kind == "coupled" and self.weight_decay:
            pre.append(coupled_decay(self.weight_decay_for))
        if self.grad_centralization:
            pre.append(groups.centralize_gradients())
        tx = self._make_tx(lr, step)
        return optax.chain(*pre, tx) if pre else tx

    def leaves(self) -> list[Optimizer]:
        """The optimizers that each own a disjoint set of variables: one per parameter
        group, or ``[self]``."""
        if self._groups is None:
            return [self]
        return [self._group_leaf(i, g) for i, g in enumerate(self._groups)]

    def _group_leaf(self, index: int, group: dict) -> Optimizer:
        leaf = copy.copy(self)
        leaf._groups, leaf._parent, leaf._group_index = None, self, index
        leaf.variables = group["params"]
        leaf.lr_scheduler = group.get("lr", self.lr_scheduler)
        leaf.weight_decay = group.get("weight_decay", self.weight_decay)
        leaf.grad_centralization = group.get("grad_centralization", self.grad_centralization)
        return leaf

    @property
    def clip_owner(self) -> Optimizer:
        """The optimizer whose ``grad_clipping`` covers this one's variables together."""
        return self._parent if self._parent is not None else self

    def label(self) -> str:
        """How error messages name this optimizer (``Adam``, ``Adam parameter group 1``)."""
        name = type(self).__name__
        return name if self._group_index is None else f"{name} parameter group {self._group_index}"

    # -- user API ---------------------------------------------------------------------
    def minimize(self, loss: jax.Array | Sequence[jax.Array]) -> None:
        """Makes this job's train step minimize ``loss`` (an array, or a list of them).

        A loss with N elements is averaged (OneFlow divides gradients by the element
        count); several losses add their means. Only valid inside a train job body, once.
        """
        ctx = _trace.require(f"{type(self).__name__}.minimize")
        if not ctx.is_train:
            raise RuntimeError(
                f"{type(self).__name__}.minimize was called in job {ctx.job_name!r}, which is a "
                f"predict job; declare it with @flow.global_function(type='train')"
            )
        losses = list(loss) if isinstance(loss, (list, tuple)) else [loss]
        if not losses:
            raise ValueError("minimize(loss) needs at least one loss")
        for i, l in enumerate(losses):
            if not hasattr(l, "dtype") or not jnp.issubdtype(l.dtype, jnp.floating):
                raise TypeError(
                    f"minimize(loss) needs floating-point arrays; loss {i} is "
                    f"{getattr(l, 'dtype', type(l).__name__)}"
                )
        ctx.minimize_calls.append((self, losses))

    def __repr__(self):
        return f"{type(self).__name__}(lr_scheduler={self.lr_scheduler!r})"


def l2_norm(x) -> jax.Array:
    """``||x||``, the L2 norm of all elements, in float32 (of the rows of a row-sparse
    gradient, ``sparse_rows.IndexedRows``: the norm of its dense form)."""
    x = _sparse_rows.values(x)
    return jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32))))


# With at least SMALL_COUNT gradients of at most SMALL_GRADIENT elements each, those enter
# the global norm through one reduction over their concatenation (see global_norm).
SMALL_GRADIENT = 1 << 14
SMALL_COUNT = 8


def global_norm(grads: dict) -> jax.Array:
    """``sqrt(sum_i ||g_i||^2)`` over every gradient, in float32 (``inf`` or ``nan`` when a
    gradient holds one, or when the sum of squares overflows).

    Each gradient is reduced on its own, except when there are ``SMALL_COUNT`` or more of
    at most ``SMALL_GRADIENT`` elements (the biases and scales of a deep model): those are
    concatenated and reduced together. One reduction per small gradient made the compiled
    step slower to compile (two kernels each on XLA's CPU backend: 2 x 128 for a 128-layer
    MLP), while concatenating large gradients makes the reduction itself several times
    slower there, and a few small ones cost nothing apart (XLA fuses their reductions into
    one kernel). The result differs from a per-gradient sum only by float32 rounding (the
    additions come in another order).
    """
    values = [_sparse_rows.values(g) for g in grads.values()]
    small = [x for x in values if x.size <= SMALL_GRADIENT]
    if len(small) < SMALL_COUNT:
        return jnp.sqrt(sum(_sum_of_squares(x) for x in values))
    parts = [_sum_of_squares(x) for x in values if x.size > SMALL_GRADIENT]
    flat = jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in small])
    parts.append(jnp.sum(jnp.square(flat)))  # squared after the concatenation: nothing to share
    return jnp.sqrt(sum(parts))


def _sum_of_squares(x) -> jax.Array:
    """``sum(x**2)`` in float32. The optimization barrier keeps XLA from sharing ``x * x``
    with an update rule that squares the gradient too (Adam's second moment): shared, the
    product would be written to memory and read twice instead of being fused into both."""
    x = jax.lax.optimization_barrier(x).astype(jnp.float32)
    return jnp.sum(jnp.square(x))

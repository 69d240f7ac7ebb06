"""The ``Optimizer`` base class and how its update runs inside a compiled train job.

An optimizer's update rule is an optax ``GradientTransformation`` built by
``_make_tx(lr, step)`` for the current learning rate ``lr = lr_scheduler(step)`` and the
job's step counter ``step`` (both traced scalars; bias corrections use ``step + 1``). The
``Optimizer`` class adds what the static-job API needs around it: the schedule, the
variable selection and parameter groups, weight-decay rules, regularizers, gradient
clipping and loss scaling.

Order of one train step (OneFlow's, ``reference/oneflow_legacy_api.md`` §1):

1. gradients of ``sum_k mean(loss_k) * S`` (S = loss scale, 1 without one),
2. unscale: ``g / S``,
3. regularizers from ``get_variable``: ``g += l1 * sign(w) + l2 * w``,
4. clipping (per optimizer, over all of its parameter groups),
5. ``lr = lr_scheduler(step)`` per optimizer / group; coupled weight decay
   ``g += wd * w`` and gradient centralization where set; ``w += update(g, slots, w)``,
6. the step counter advances.

Optimizer state leaves that belong to one variable are stored as ``<var>-<slot>``
variables (``dense1-weight-momentum``); other leaves (e.g. an optax ``count``) as
``System-Optimizer-<job>-<index>-<path>``.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.core import names as store_names
from jobflow._src.core import trace as _trace
from jobflow._src.optimizer import groups, loss_scale
from jobflow._src.optimizer.weight_decay import coupled_decay
from jobflow._src.schedule import state as schedule_state
from jobflow._src.schedule.base import as_schedule

__all__ = ["Optimizer", "select_variables", "OptimizerPlan", "build_plan", "build_plans", "apply_plans"]


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


class Optimizer:
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

    def __init__(
        self,
        lr_scheduler,
        loss_scale_factor: float | None = None,
        grad_clipping=None,
        train_step_lbn=None,
        loss_scale_policy=None,
        variables=None,
        *,
        weight_decay: float | None = None,
        weight_decay_includes=None,
        weight_decay_excludes=None,
    ):
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
        self._groups = None
        self._parent = None
        self._group_index = None
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
    def minimize(self, loss):
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


def select_variables(opt: Optimizer, names: list[str], job_name: str) -> list[str]:
    """The names among ``names`` (the job's trainable variables) that ``opt`` updates."""
    sel = opt.variables
    if sel is None:
        chosen = list(names)
    elif isinstance(sel, (str, re.Pattern)):
        pattern = re.compile(sel) if isinstance(sel, str) else sel
        chosen = [n for n in names if pattern.search(n)]
    elif callable(sel):
        chosen = [n for n in names if sel(n)]
    else:
        missing = [n for n in sel if n not in names]
        if missing:
            raise ValueError(
                f"{opt.label()}(variables=...) in job {job_name!r} names variables the "
                f"job does not use as trainable: {missing}; the job's trainable variables "
                f"are {names}"
            )
        chosen = [n for n in names if n in set(sel)]
    if not chosen:
        raise ValueError(
            f"{opt.label()}(variables={sel!r}) in job {job_name!r} selects no variable; "
            f"the job's trainable variables are {names}"
        )
    return chosen


# ---------------------------------------------------------------------------- slots

_FIELD_ALIASES = {"mu": "m", "nu": "v", "trace": "momentum"}


def _slot_names(paths, var_names: set, system_prefix: str) -> list[str]:
    """Names each optimizer-state leaf: ``<var>-<field>`` or ``<system_prefix>-<path>``."""
    names, seen = [], set()
    for path in paths:
        var, field = None, None
        for k in path:
            if isinstance(k, jax.tree_util.DictKey) and k.key in var_names:
                var = k.key
                break
            if isinstance(k, jax.tree_util.GetAttrKey):
                field = k.name
        if var is not None:
            base = f"{var}-{_FIELD_ALIASES.get(field, field or 'state')}"
        else:
            parts = []
            for k in path:
                if isinstance(k, jax.tree_util.GetAttrKey):
                    parts.append(k.name)
                elif isinstance(k, jax.tree_util.DictKey):
                    parts.append(str(k.key))
                elif isinstance(k, jax.tree_util.SequenceKey):
                    parts.append(str(k.idx))
            base = "-".join([system_prefix, *parts]) if parts else system_prefix
        name, i = base, 1
        while name in seen:
            i += 1
            name = f"{base}_{i}"
        seen.add(name)
        names.append(name)
    return names


@dataclasses.dataclass
class OptimizerPlan:
    """One optimizer as compiled into a job: its variables and named state leaves.

    ``slot_names`` lists the update rule's state leaves, then the state of a stateful
    learning-rate schedule (``schedule``, see ``jobflow/schedule/state.py``).
    """

    optimizer: Optimizer
    var_names: list[str]
    slot_names: list[str]
    treedef: Any
    slot_avals: list[jax.ShapeDtypeStruct]
    schedule: schedule_state.PlanState
    regularizers: dict = dataclasses.field(default_factory=dict)  # var name -> Regularizer (get_variable's)

    @property
    def tx_slot_names(self) -> list[str]:
        return self.slot_names[: self.treedef.num_leaves]

    def init_slots(self, params: dict) -> dict:
        """Initial slot values from the variables' current values."""
        state = jax.jit(self.optimizer._build_tx(jnp.float32(0), jnp.int32(0)).init)(params)
        return {**dict(zip(self.tx_slot_names, jax.tree_util.tree_leaves(state))), **self.schedule.initial()}

    def lr(self, step, slots: dict):
        """``(lr, new schedule state)``: ``lr_scheduler(step)`` as a float32 scalar with the
        schedule's stored state bound (lr None for an optimizer without a schedule)."""
        if self.optimizer.lr_scheduler is None:
            return None, {}
        return self.schedule.lr(step, slots)

    def update(self, step, params: dict, grads: dict, slots: dict, optimizer: Optimizer | None = None):
        """The rule's update of processed gradients: returns (new params, new slots, lr).

        The new slots include the schedule's new state, so a step whose update is skipped
        can drop it like any other slot.
        """
        lr, schedule_slots = self.lr(step, slots)
        tx = (optimizer or self.optimizer)._build_tx(lr, step)
        state = jax.tree_util.tree_unflatten(self.treedef, [slots[n] for n in self.tx_slot_names])
        updates, state = tx.update(grads, state, params)
        new_params = {n: (params[n] + updates[n].astype(params[n].dtype)) for n in params}
        new_slots = {**dict(zip(self.tx_slot_names, jax.tree_util.tree_leaves(state))), **schedule_slots}
        return new_params, new_slots, lr


def build_plan(opt: Optimizer, var_names: list[str], avals: dict, system_prefix: str) -> OptimizerPlan:
    """Traces ``opt``'s state structure for ``var_names`` (abstractly) and names its leaves."""
    params = {n: avals[n] for n in var_names}
    state = jax.eval_shape(lambda p: opt._build_tx(jnp.float32(0), jnp.int32(0)).init(p), params)
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(state)
    names = _slot_names([p for p, _ in leaves_with_paths], set(var_names), system_prefix)
    sched = schedule_state.bind(opt.lr_scheduler, system_prefix)
    return OptimizerPlan(
        opt,
        list(var_names),
        names + sched.slot_names,
        treedef,
        [leaf for _, leaf in leaves_with_paths] + sched.avals(),
        sched,
    )


def build_plans(
    top: Optimizer, trainable: list[str], avals: dict, job_name: str, regularizers: dict | None = None
) -> list[OptimizerPlan]:
    """One plan per leaf of ``top`` (an optimizer, its parameter groups, or the optimizers
    of a ``CombinedOptimizer``); their variable sets must be disjoint. ``regularizers``:
    variable name -> the ``Regularizer`` given to ``get_variable`` (or None)."""
    regularizers = regularizers or {}
    plans, owner = [], {}
    for i, opt in enumerate(top.leaves()):
        names = select_variables(opt, trainable, job_name)
        for n in names:
            if n in owner:
                raise ValueError(
                    f"job {job_name!r}: variable {n!r} is selected by two optimizers ({owner[n].label()} "
                    f"and {opt.label()}); their variable sets must be disjoint"
                )
            owner[n] = opt
        plan = build_plan(opt, names, avals, store_names.optimizer_prefix(job_name, i))
        plan.regularizers = {n: regularizers[n] for n in names if regularizers.get(n) is not None}
        plans.append(plan)
    return plans


def _info_key(key: str, index: int) -> str:
    return key if index == 0 else f"{key}_{index}"


def apply_plans(
    plans: list[OptimizerPlan], top: Optimizer, step, params: dict, grads: dict, state: dict, feeds: dict
):
    """One train step's updates, in OneFlow's order: regularizers -> clipping (per
    optimizer, over all of its parameter groups) -> ``lr(step)`` -> the rules.

    ``top`` is the optimizer the body passed to ``minimize`` in the trace being compiled
    (plan ``i`` runs ``top.leaves()[i]``); ``feeds`` are the values the body handed to the
    update (``CustomScheduler``'s rate, an in-job ``ReduceLROnPlateau.step`` metric).

    Returns (new variables and slots, info) where info holds ``lr`` (``lr_1``, ... for
    further plans) and ``grad_norm`` (suffixed with the index of the optimizer's first
    plan) when clipping is on.
    """
    leaves = top.leaves()
    regularizers = {n: r for plan in plans for n, r in plan.regularizers.items()}
    grads = {n: g + regularizers[n].grad(params[n]) if n in regularizers else g for n, g in grads.items()}
    info, units = {}, {}
    for i in range(len(plans)):
        units.setdefault(id(leaves[i].clip_owner), []).append(i)
    for first, *rest in units.values():
        clip = leaves[first].clip_owner.grad_clipping
        if clip is not None:
            names = [n for i in (first, *rest) for n in plans[i].var_names]
            clipped, info[_info_key("grad_norm", first)] = clip({n: grads[n] for n in names})
            grads.update(clipped)
    new = {}
    with _trace.feeding(feeds):  # read by schedule/state.py
        updates = [
            plan.update(
                step,
                {n: params[n] for n in plan.var_names},
                {n: grads[n] for n in plan.var_names},
                {n: state[n] for n in plan.slot_names},
                leaves[i],
            )
            for i, plan in enumerate(plans)
        ]
    for i, (new_params, new_slots, lr) in enumerate(updates):
        new.update(new_params)
        new.update(new_slots)
        if lr is not None:
            info[_info_key("lr", i)] = lr
    return new, info


def l2_norm(x) -> jax.Array:
    """``||x||``, the L2 norm of all elements, in float32."""
    return jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32))))


def global_norm(grads: dict) -> jax.Array:
    """``sqrt(sum_i ||g_i||^2)`` over every gradient, in float32."""
    return jnp.sqrt(sum(_sum_of_squares(g) for g in grads.values()))


def _sum_of_squares(x) -> jax.Array:
    """``sum(x**2)`` in float32. The optimization barrier keeps XLA from sharing ``x * x``
    with an update rule that squares the gradient too (Adam's second moment): shared, the
    product would be written to memory and read twice instead of being fused into both."""
    x = jax.lax.optimization_barrier(x).astype(jnp.float32)
    return jnp.sum(jnp.square(x))

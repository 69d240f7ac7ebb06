"""The ``Optimizer`` base class and how its update runs inside a compiled train job.

An optimizer's update rule is an optax ``GradientTransformation`` built by
``_make_tx(lr, step)`` for the current learning rate ``lr = lr_scheduler(step)`` and the
job's step counter ``step`` (both traced scalars; bias corrections use ``step + 1``). The
``Optimizer`` class adds what the static-job API needs around it: the schedule, the
variable selection, regularizers, gradient clipping and loss scaling.

Order of one train step (OneFlow's, ``reference/oneflow_legacy_api.md`` §1):

1. gradients of ``sum_k mean(loss_k) * S`` (S = loss scale, 1 without one),
2. unscale: ``g / S``,
3. regularizers from ``get_variable``: ``g += l1 * sign(w) + l2 * w``,
4. clipping (per optimizer),
5. ``lr = lr_scheduler(step)``; ``w += update(g, slots, w, lr, step)``,
6. the step counter advances.

Optimizer state leaves that belong to one variable are stored as ``<var>-<slot>``
variables (``dense1-weight-momentum``); other leaves (e.g. an optax ``count``) as
``System-Optimizer-<job>-<index>-<path>``.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jobflow import _trace
from jobflow.schedule import state as schedule_state
from jobflow.schedule.base import as_schedule

__all__ = ["Optimizer", "select_variables", "OptimizerPlan", "build_plan"]


def _check_loss_scale_factor(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"loss_scale_factor must be a number > 0 or None; got {value!r}")
    return float(value)


class Optimizer:
    """Base of every jobflow optimizer.

    Args (shared by every optimizer, as in OneFlow):
      lr_scheduler: a number, a schedule (``flow.optimizer.CosineScheduler(...)``), any
        callable ``step -> lr`` (optax schedules work as they are), or a list / 1-D array
        indexed by step (the last value holds after the end).
      loss_scale_factor: a static loss scale ``S``: gradients are computed for
        ``loss * S`` and divided by ``S`` before regularization and clipping.
      grad_clipping: ``flow.optimizer.grad_clipping.by_global_norm(clip_norm)`` etc.
      train_step_lbn: accepted for OneFlow compatibility; the job's own counter is used.
      loss_scale_policy: a loss-scale policy (mutually exclusive with
        ``loss_scale_factor``).
      variables: which trainable variables this optimizer updates: None (all that the
        job uses), a list of full names, a regex (searched in each full name), or a
        predicate ``name -> bool``.
    """

    def __init__(
        self,
        lr_scheduler,
        loss_scale_factor: float | None = None,
        grad_clipping=None,
        train_step_lbn=None,
        loss_scale_policy=None,
        variables=None,
    ):
        self.lr_scheduler = as_schedule(lr_scheduler)
        self.loss_scale_factor = _check_loss_scale_factor(loss_scale_factor)
        if loss_scale_factor is not None and loss_scale_policy is not None:
            raise ValueError("loss_scale_factor and loss_scale_policy are mutually exclusive; set one")
        self.loss_scale_policy = loss_scale_policy
        if grad_clipping is not None and not callable(grad_clipping):
            raise TypeError(
                f"grad_clipping must be flow.optimizer.grad_clipping.by_global_norm(...) or "
                f"another clipping rule; got {grad_clipping!r}"
            )
        self.grad_clipping = grad_clipping
        if variables is not None and not (
            isinstance(variables, (str, re.Pattern)) or callable(variables)
            or (isinstance(variables, Sequence) and all(isinstance(v, str) for v in variables))
        ):
            raise TypeError(
                f"variables must be None, a list of variable names, a regex or a predicate "
                f"name -> bool; got {variables!r}"
            )
        self.variables = variables

    # -- what subclasses implement ---------------------------------------------------
    def _make_tx(self, lr, step) -> optax.GradientTransformation:
        """The update rule for learning rate ``lr`` at step ``step`` (traced scalars).

        ``tx.update(grads, state, params)`` returns the deltas added to the params.
        """
        raise NotImplementedError

    def leaves(self) -> list[Optimizer]:
        """The optimizers that each own a disjoint set of variables (``[self]``)."""
        return [self]

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
                f"{type(opt).__name__}(variables=...) in job {job_name!r} names variables the "
                f"job does not use as trainable: {missing}; the job's trainable variables "
                f"are {names}"
            )
        chosen = [n for n in names if n in set(sel)]
    if not chosen:
        raise ValueError(
            f"{type(opt).__name__}(variables={sel!r}) in job {job_name!r} selects no variable; "
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

    @property
    def tx_slot_names(self) -> list[str]:
        return self.slot_names[: self.treedef.num_leaves]

    def init_slots(self, params: dict) -> dict:
        """Initial slot values from the variables' current values."""
        state = jax.jit(self.optimizer._make_tx(jnp.float32(0), jnp.int32(0)).init)(params)
        return {**dict(zip(self.tx_slot_names, jax.tree_util.tree_leaves(state))), **self.schedule.initial()}

    def apply(self, step, params: dict, grads: dict, slots: dict, regularizers: dict):
        """One update: returns (new params, new slots, info) for this optimizer's variables."""
        opt = self.optimizer
        grads = {
            n: g + regularizers[n].grad(params[n]) if regularizers.get(n) is not None else g
            for n, g in grads.items()
        }
        info = {}
        if opt.grad_clipping is not None:
            grads, info["grad_norm"] = opt.grad_clipping(grads)
        lr, schedule_slots = self.schedule.lr(step, slots)
        tx = opt._make_tx(lr, step)
        state = jax.tree_util.tree_unflatten(self.treedef, [slots[n] for n in self.tx_slot_names])
        updates, state = tx.update(grads, state, params)
        new_params = {n: (params[n] + updates[n].astype(params[n].dtype)) for n in params}
        info["lr"] = lr
        new_slots = {**dict(zip(self.tx_slot_names, jax.tree_util.tree_leaves(state))), **schedule_slots}
        return new_params, new_slots, info


def build_plan(opt: Optimizer, var_names: list[str], avals: dict, system_prefix: str) -> OptimizerPlan:
    """Traces ``opt``'s state structure for ``var_names`` (abstractly) and names its leaves."""
    params = {n: avals[n] for n in var_names}
    state = jax.eval_shape(lambda p: opt._make_tx(jnp.float32(0), jnp.int32(0)).init(p), params)
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(state)
    names = _slot_names([p for p, _ in leaves_with_paths], set(var_names), system_prefix)
    sched = schedule_state.bind(opt.lr_scheduler, system_prefix)
    return OptimizerPlan(opt, list(var_names), names + sched.slot_names, treedef,
                         [leaf for _, leaf in leaves_with_paths] + sched.avals(), sched)


def global_norm(grads: dict) -> jax.Array:
    """``sqrt(sum_i ||g_i||^2)`` over every gradient, in float32."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in grads.values()))


"""How a job's optimizers run inside its compiled train step.

At compile time :func:`build_plans` makes one :class:`OptimizerPlan` per leaf of the
job's optimizer (the optimizer itself, each of its parameter groups, each optimizer of a
``CombinedOptimizer``): its variables and the store names of its state.

Each step :func:`apply_plans` evaluates ``lr_i = lr_scheduler_i(step)`` per plan (the
schedule's stored state and the body's feeds passed explicitly, ``schedule/state.py``)
and runs ONE optax transformation over all trainable variables, in OneFlow's order::

    optax.chain(
        add_regularization(regularizers),     # get_variable's: g += l1*sign(w) + l2*w
        partition({unit: clip(rule)}, ...),   # per optimizer, over all of its groups
        partition({i: chain(coupled decay, gradient centralization, rule(lr_i, step))}, ...),
    )

both partitions keyed by variable name (``transforms.partition``). Slots: a state leaf
that belongs to one variable is stored as ``<var>-<field>`` (``mu``/``nu``/``trace`` as
``m``/``v``/``momentum``), any other leaf of plan ``i`` (an optax ``count``) as
``System-Optimizer-<job>-<i>-<path>`` (``core/names.optimizer_prefix``), named from the
plan's own chain (``Optimizer._build_tx``) so the names do not depend on what the step
chains around it. The variables named in ``function_config.indexed_slices_optimizer_conf``
get their plan's rule wrapped in ``transforms.row_sparse`` (rows with an all-zero
gradient untouched). The variables of ``OptimizerPlan.gathered`` (embedding tables read
only through ``flow.gather``, under a lazy rule) get row-sparse gradients
(``sparse_rows.IndexedRows``) and their rule wrapped in ``sparse_rows.gathered_rows``:
their variable and slots come back as ``sparse_rows.RowWrite`` (rows to write), O(rows
touched). Regularization and clipping keep no stored state (a clip state only
reports ``grad_norm``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax

from jobflow._src.core import names as store_names
from jobflow._src.optimizer import host_init
from jobflow._src.optimizer.sparse_rows import apply_update, gathered_rows
from jobflow._src.optimizer.transforms import ClipState, add_regularization, clip, partition, row_sparse
from jobflow._src.schedule import state as schedule_state

if TYPE_CHECKING:
    from jobflow._src.optimizer.base import Optimizer

__all__ = ["select_variables", "OptimizerPlan", "build_plan", "build_plans", "step_transforms", "apply_plans"]


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

_FIELD_ALIASES: dict[str | None, str] = {"mu": "m", "nu": "v", "trace": "momentum"}


def _path_part(k) -> str | None:
    if isinstance(k, jax.tree_util.GetAttrKey):
        return k.name
    if isinstance(k, jax.tree_util.DictKey):
        return str(k.key)
    if isinstance(k, jax.tree_util.SequenceKey):
        return str(k.idx)
    return None


def _leaf_name(path, var_names: set, system_prefix: str) -> str:
    """``<var>-<field>`` for a leaf under a variable's key (``field``: the last attribute
    before it), else ``<system_prefix>-<path>``."""
    field: str | None = None
    for k in path:
        if isinstance(k, jax.tree_util.DictKey) and k.key in var_names:
            return f"{k.key}-{_FIELD_ALIASES.get(field, field or 'state')}"
        if isinstance(k, jax.tree_util.GetAttrKey):
            field = k.name
    parts = [p for p in map(_path_part, path) if p is not None]
    return "-".join([system_prefix, *parts]) if parts else system_prefix


def _slot_names(paths, var_names: set, system_prefix: str) -> list[str]:
    """Names each optimizer-state leaf (a repeated name gets ``_2``, ``_3``, ...)."""
    names, seen = [], set()
    for path in paths:
        base = _leaf_name(path, var_names, system_prefix)
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

    ``slot_names`` lists the rule's state leaves (the chain of ``optimizer._build_tx``,
    flattened with ``treedef``), then the state of a stateful learning-rate schedule
    (``lr_state``). ``regularizers``: variable name -> ``get_variable``'s regularizer.
    """

    optimizer: Optimizer
    var_names: list[str]
    slot_names: list[str]
    treedef: Any
    slot_avals: list[jax.ShapeDtypeStruct]
    lr_state: schedule_state.PlanState
    regularizers: dict = dataclasses.field(default_factory=dict)
    row_sparse: list = dataclasses.field(default_factory=list)  # indexed-slices variables
    # variables whose gradient arrives as sparse_rows.IndexedRows (set by the runtime)
    gathered: list = dataclasses.field(default_factory=list)
    # the rule's init traced over the variables' avals (host_init.evaluate), or None
    init_jaxpr: Any = None

    def lazy_names(self) -> list[str]:
        """The variables whose untouched rows this plan's rule leaves unchanged: all of a
        lazy rule's (``LazyAdam``), else those of ``indexed_slices_optimizer_conf``."""
        return list(self.var_names) if getattr(self.optimizer, "_lazy", False) else list(self.row_sparse)

    def row_sparse_candidates(self) -> list[str]:
        """The lazy variables that may take row-sparse gradients: the rule is elementwise
        along rows (``Optimizer._row_local``), the variable has no regularizer and a row
        axis, and the clipping rule takes ``IndexedRows`` (or there is none)."""
        opt = self.optimizer
        clip = opt.clip_owner.grad_clipping
        if not opt._row_local or not (clip is None or getattr(clip, "row_sparse_ok", False)):
            return []
        return [n for n in self.lazy_names() if n not in self.regularizers]

    @property
    def tx_slot_names(self) -> list[str]:
        return self.slot_names[: self.treedef.num_leaves]

    def init_slots(self, params: dict) -> dict:
        """Initial slot values from the variables' current values.

        When the rule's ``init`` only fills, casts or copies (Adam's zeros, SGD's
        momentum, optax's ``count``), the values are made on the host from its traced
        jaxpr (``host_init.evaluate``); otherwise ``init`` runs op by op, not under
        ``jax.jit``: its operations are compiled once per shape and dtype and reused, where
        one jitted ``init`` over every variable was a compilation of its own at each job's
        first call (about 0.5 s of a 128-layer MLP's first call on 2 cores)."""
        state = None  # the rule's state tree, or the list of its leaves made on the host
        if self.init_jaxpr is not None:
            state = host_init.evaluate(self.init_jaxpr, jax.tree_util.tree_leaves(params))
        if state is None:
            state = self.optimizer._build_tx(jnp.float32(0), jnp.int32(0)).init(params)
        return {**self.rule_slots(state), **self.lr_state.initial()}

    def rule_state(self, slots: dict):
        """The rule's state tree from the store's ``slots``."""
        return jax.tree_util.tree_unflatten(self.treedef, [slots[n] for n in self.tx_slot_names])

    def rule_slots(self, state) -> dict:
        """``{slot name: leaf}`` of a rule state tree."""
        return dict(zip(self.tx_slot_names, jax.tree_util.tree_leaves(state)))

    def lr(self, optimizer: Optimizer, step, slots: dict, feeds: dict):
        """``(lr, {store name: new schedule state})`` of ``optimizer`` (this plan's
        optimizer as traced in the step) at ``step``; lr is None without a schedule."""
        if optimizer.lr_scheduler is None:
            return None, {}
        return self.lr_state.lr(optimizer.lr_scheduler, step, slots, feeds)


def build_plan(
    opt: Optimizer, var_names: list[str], avals: dict, system_prefix: str, state_access=None
) -> OptimizerPlan:
    """Traces ``opt``'s state structure for ``var_names`` (abstractly) and names its leaves;
    ``state_access`` (a ``schedule_state.StateAccess``) is attached to its schedule."""
    params = {n: avals[n] for n in var_names}
    init = lambda p: opt._build_tx(jnp.float32(0), jnp.int32(0)).init(p)
    init_jaxpr, state = jax.make_jaxpr(init, return_shape=True)(params)
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(state)
    names = _slot_names([p for p, _ in leaves_with_paths], set(var_names), system_prefix)
    lr_state = schedule_state.plan_state(opt.lr_scheduler, system_prefix, state_access)
    return OptimizerPlan(
        opt,
        list(var_names),
        names + lr_state.slot_names,
        treedef,
        [leaf for _, leaf in leaves_with_paths] + lr_state.avals(),
        lr_state,
        init_jaxpr=init_jaxpr,
    )


def _check_row_sparse(names, trainable: list[str], regularizers: dict, job_name: str) -> set:
    """The indexed-slices variables, each a trainable variable of the job without a
    regularizer (a regularizer makes every row's gradient non-zero; OneFlow then falls
    back to a dense update, jobflow says so)."""
    where = f"job {job_name!r}: function_config.indexed_slices_optimizer_conf"
    unknown = [n for n in names if n not in trainable]
    if unknown:
        raise ValueError(
            f"{where} names {unknown}, which the job does not use as trainable variables; "
            f"its trainable variables are {trainable}"
        )
    regularized = [n for n in names if regularizers.get(n) is not None]
    if regularized:
        raise ValueError(
            f"{where}: variables {regularized} have a regularizer, which makes every row's "
            f"gradient non-zero, so no row could stay untouched; remove the regularizer or "
            f"the variable from the conf"
        )
    return set(names)


def build_plans(
    top: Optimizer,
    trainable: list[str],
    avals: dict,
    job_name: str,
    regularizers: dict | None = None,
    *,
    state_access=None,
    row_sparse_names=(),
) -> list[OptimizerPlan]:
    """One plan per leaf of ``top`` (an optimizer, its parameter groups, or the optimizers
    of a ``CombinedOptimizer``); their variable sets must be disjoint. ``regularizers``:
    variable name -> the ``Regularizer`` given to ``get_variable`` (or None);
    ``state_access``: the store handle stateful schedules keep for host-side stepping;
    ``row_sparse_names``: the variables updated row-sparsely (indexed slices)."""
    regularizers = regularizers or {}
    sparse = _check_row_sparse(row_sparse_names, trainable, regularizers, job_name)
    plans: list[OptimizerPlan] = []
    owner: dict[str, Optimizer] = {}
    for i, opt in enumerate(top.leaves()):
        names = select_variables(opt, trainable, job_name)
        for n in names:
            if n in owner:
                raise ValueError(
                    f"job {job_name!r}: variable {n!r} is selected by two optimizers ({owner[n].label()} "
                    f"and {opt.label()}); their variable sets must be disjoint"
                )
            owner[n] = opt
        plan = build_plan(opt, names, avals, store_names.optimizer_prefix(job_name, i), state_access)
        plan.regularizers = {n: regularizers[n] for n in names if regularizers.get(n) is not None}
        plan.row_sparse = [n for n in names if n in sparse]
        plans.append(plan)
    return plans


# ----------------------------------------------------------------------- one step


def _info_key(key: str, index: int) -> str:
    return key if index == 0 else f"{key}_{index}"


def _clip_units(plans: list[OptimizerPlan], leaves: list) -> tuple[dict, dict]:
    """``({unit: transform}, {variable: unit})``: one clipping unit per optimizer (all of
    its parameter groups), labelled by the index of its first plan."""
    units: dict[int, list[int]] = {}
    for i in range(len(plans)):
        units.setdefault(id(leaves[i].clip_owner), []).append(i)
    transforms, labels = {}, {}
    for first, *rest in units.values():
        rule = leaves[first].clip_owner.grad_clipping
        transforms[first] = optax.identity() if rule is None else clip(rule)
        labels.update({n: first for i in (first, *rest) for n in plans[i].var_names})
    return transforms, labels


def _rule(plan: OptimizerPlan, optimizer: Optimizer, lr, step) -> optax.GradientTransformation:
    tx = optimizer._build_tx(lr, step)
    tx = row_sparse(tx, plan.row_sparse) if plan.row_sparse else tx
    return gathered_rows(tx, plan.gathered) if plan.gathered else tx


def step_transforms(plans: list[OptimizerPlan], leaves: list, lrs: list, step) -> list:
    """The three stages of a step's update (see the module docstring), for the traced
    optimizers ``leaves`` (``leaves[i]`` runs plan ``i`` with learning rate ``lrs[i]``)."""
    regularizers = {n: r for plan in plans for n, r in plan.regularizers.items()}
    clips, clip_labels = _clip_units(plans, leaves)
    rules = {i: _rule(plans[i], leaves[i], lrs[i], step) for i in range(len(plans))}
    rule_labels = {n: i for i, plan in enumerate(plans) for n in plan.var_names}
    return [add_regularization(regularizers), partition(clips, clip_labels), partition(rules, rule_labels)]


def apply_plans(
    plans: list[OptimizerPlan], top: Optimizer, step, params: dict, grads: dict, state: dict, feeds: dict
):
    """One train step's updates: ``lr_i(step)`` per plan, then the chained transformation
    regularizers -> clipping (per optimizer) -> per plan coupled decay, gradient
    centralization and the rule; ``w += update``.

    ``top`` is the optimizer the body passed to ``minimize`` in the trace being compiled
    (plan ``i`` runs ``top.leaves()[i]``); ``state`` holds the slots; ``feeds`` are the
    values the body handed to the update (``CustomScheduler``'s rate, an in-job
    ``ReduceLROnPlateau.step`` metric).

    Returns (new variables and slots, info) where info holds ``lr`` (``lr_1``, ... for
    further plans) and ``grad_norm`` (suffixed with the index of the optimizer's first
    plan) when clipping is on.
    """
    leaves = top.leaves()
    new, info, lrs = {}, {}, []
    for i, plan in enumerate(plans):
        lr, schedule_slots = plan.lr(leaves[i], step, state, feeds)
        new.update(schedule_slots)
        lrs.append(lr)
    stages = step_transforms(plans, leaves, lrs, step)
    rule_states = {i: plan.rule_state(state) for i, plan in enumerate(plans)}
    tx_state = (stages[0].init(params), stages[1].init(params), rule_states)
    updates, (_, clip_states, rule_states) = optax.chain(*stages).update(grads, tx_state, params)
    for unit, s in clip_states.items():
        if isinstance(s, ClipState):
            info[_info_key("grad_norm", unit)] = s.grad_norm
    for i, plan in enumerate(plans):
        new.update(plan.rule_slots(rule_states[i]))
        if lrs[i] is not None:
            info[_info_key("lr", i)] = lrs[i]
    new.update({n: apply_update(params[n], updates[n]) for n in updates})
    return new, info

"""Schedules that keep state, and how a train step evaluates a schedule explicitly.

Most schedules are pure functions of the step. A few are not: ``ReduceLROnPlateau``
(best metric, bad steps, cooldown, current lr) and ``MultiplicativeLR`` (the running
product). Such a schedule subclasses :class:`StatefulSchedule`, declares its state with
``init_state()`` and computes ``_lr_state(step, base, state) -> (lr, new_state)``; the
state lives in the session store like an optimizer slot, so checkpoints save it and the
compiled step never needs recompiling when it changes.

**Evaluation is a pure function.** In a train step the optimizer layer calls::

    lr, new_states = evaluate(schedule, step, states, feeds)

``states`` holds one dict per stateful part of ``schedule`` (in the order of
:func:`stateful_leaves`); ``feeds`` are the values the traced job body handed to the
update (``TraceContext.feeds``: ``CustomScheduler``'s rate, the metric of an in-job
``ReduceLROnPlateau.step``), keyed by each reading part's ``feed_key``. :func:`evaluate`
runs on a *bound copy* of the schedule tree (:func:`bind`): every node is shallow-copied
and its Schedule-valued attributes replaced by their bound copies; the copy of a
stateful part carries its state (``_bound_state``) and leaves its next state there
(``_next_state``); the copy of a feed-reading part carries its value (``_fed``). The
user's schedule objects are never changed and no value travels through a global.

**The store.** :func:`plan_state` names the state of an optimizer's stateful parts
``<prefix>-lr-<field>`` (``-lr<j>-`` when a composite holds several;
``prefix = System-Optimizer-<job>-<i>`` from ``core/names.py``) and returns a
:class:`PlanState`, whose slots join the optimizer's slots (kind ``"slot"``): the step
reads them as inputs and returns the new state next to the other slot updates, so a step
whose update is skipped drops it like any other slot.

**From the host.** ``ReduceLROnPlateau.step(metric)`` between calls must change the
stored state without this layer importing the runtime. The runtime hands a
:class:`StateAccess` (read / write store arrays by name) to ``build_plans``; each stateful
part keeps ``(access, names)`` per job that uses it (:meth:`StatefulSchedule.attach`), and
:meth:`StatefulSchedule.stores` lists the pairs whose session is still the current one.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jobflow._src.schedule.base import Schedule, walk

__all__ = [
    "StateAccess",
    "StatefulSchedule",
    "stateful_leaves",
    "initial_state",
    "bind",
    "evaluate",
    "scan_values",
    "PlanState",
    "plan_state",
]


class StateAccess(Protocol):
    """Reads and writes named arrays of one store (the runtime implements it)."""

    def live(self) -> bool:
        """True while the store is the current session's."""

    def read(self, name: str) -> jax.Array:
        """The array stored under ``name``."""

    def write(self, name: str, value: ArrayLike) -> None:
        """Stores ``value`` under ``name`` (with the old array's sharding and dtype)."""


class StatefulSchedule(Schedule):
    """A schedule whose value depends on state kept in the store.

    Subclasses implement ``init_state() -> {field: np.ndarray}`` and
    ``_lr_state(step, base, state) -> (lr, new_state)`` (jit-safe). Called on its own
    (``sched(t)``, ``values(n)`` scans through the steps) the state starts from
    ``init_state()``; in a train step :func:`evaluate` binds the stored state.
    """

    def init_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _lr_state(self, step, base, state):
        raise NotImplementedError

    def _lr(self, step, base):
        bound = self.__dict__.get("_bound_state")
        lr, new = self._lr_state(step, base, initial_state(self) if bound is None else bound)
        if bound is not None:  # a bound copy (see ``bind``): leave the next state
            self.__dict__["_next_state"] = new
        return lr

    # -- where the state of this schedule is stored (one entry per job) --------------
    def attach(self, access: StateAccess, names: dict[str, str]) -> None:
        """Records that ``access``'s store holds this schedule's state as ``{field: name}``
        (called when a job using it is compiled); stale sessions are dropped."""
        stores = self.stores()
        if names not in [n for _, n in stores]:
            stores.append((access, dict(names)))
        self.__dict__["_stores"] = stores

    def stores(self) -> list[tuple[StateAccess, dict[str, str]]]:
        """``[(access, {field: store name})]`` for each job of the current session that
        uses this schedule."""
        return [(a, n) for a, n in self.__dict__.get("_stores", []) if a.live()]

    def state(self) -> list[dict[str, np.ndarray]]:
        """The current state in the store, one dict per job that uses this schedule."""
        return [{k: np.asarray(a.read(n)) for k, n in names.items()} for a, names in self.stores()]


def initial_state(schedule: StatefulSchedule) -> dict[str, jax.Array]:
    """``schedule.init_state()`` as jnp arrays."""
    return {k: jnp.asarray(v) for k, v in schedule.init_state().items()}


def stateful_leaves(schedule: Schedule) -> list[StatefulSchedule]:
    """Every stateful schedule inside ``schedule`` (itself included), in a fixed order."""
    return [s for s in walk(schedule) if isinstance(s, StatefulSchedule)]


def _bound_copy(node: Schedule, memo: dict, feeds: Mapping) -> Schedule:
    """A shallow copy of ``node`` whose schedule-valued attributes are bound copies too
    (a node shared by several parents is copied once) and, for a node with a
    ``feed_key``, whose ``_fed`` is ``feeds.get(feed_key)``."""
    if id(node) in memo:
        return memo[id(node)]
    out = memo[id(node)] = copy.copy(node)
    for k, v in vars(node).items():
        if isinstance(v, Schedule):
            out.__dict__[k] = _bound_copy(v, memo, feeds)
        elif isinstance(v, (list, tuple)) and any(isinstance(x, Schedule) for x in v):
            items = [_bound_copy(x, memo, feeds) if isinstance(x, Schedule) else x for x in v]
            out.__dict__[k] = items if isinstance(v, list) else tuple(items)
    out.__dict__.pop("_next_state", None)
    if node.feed_key is not None:
        out.__dict__["_fed"] = feeds.get(node.feed_key)
    return out


def bind(
    schedule: Schedule, states: Sequence[Mapping], feeds: Mapping | None = None
) -> tuple[Schedule, list[StatefulSchedule]]:
    """``(copy, leaves)``: a copy of ``schedule``'s tree whose stateful parts ``leaves``
    (in :func:`stateful_leaves` order) hold ``states[j]`` and whose feed-reading parts
    hold their value in ``feeds``. Evaluating the copy leaves each part's next state in
    its ``_next_state``."""
    bound = _bound_copy(schedule, {}, {} if feeds is None else feeds)
    leaves = stateful_leaves(bound)
    if len(leaves) != len(states):
        raise ValueError(
            f"{schedule!r} has {len(leaves)} stateful part(s); got {len(states)} state(s) to bind"
        )
    for leaf, state in zip(leaves, states):
        leaf.__dict__["_bound_state"] = dict(state)
    return bound, leaves


def evaluate(
    schedule: Schedule, step: ArrayLike, states: Sequence[Mapping] = (), feeds: Mapping | None = None
) -> tuple[jax.Array, list[dict[str, Any]]]:
    """``(lr, new_states)``: ``schedule(step)`` as a float32 array, each stateful part
    ``j`` reading ``states[j]`` (its state before this step) and ``feeds`` the values
    the job body fed; ``new_states[j]`` is part ``j``'s state after the step.

    A part evaluated several times in one step (a warmup that also reads ``sched(W)``)
    always starts from the same state, so its transition happens once (the last
    evaluation's next state is kept).
    """
    bound, leaves = bind(schedule, states, feeds)
    lr = jnp.asarray(bound(step)).astype(jnp.float32)
    return lr, [leaf.__dict__.get("_next_state", leaf.__dict__["_bound_state"]) for leaf in leaves]


def _like(state: Mapping, old: Mapping) -> dict:
    """``state`` with each field cast to the dtype of the same field of ``old``."""
    return {k: jnp.asarray(v).astype(jnp.asarray(old[k]).dtype) for k, v in state.items()}


def scan_values(schedule: Schedule, steps: jax.Array) -> jax.Array:
    """The schedule over ``steps`` (consecutive), carrying the state from step to step."""
    init = [initial_state(leaf) for leaf in stateful_leaves(schedule)]

    def run(steps):
        def body(states, t):
            lr, new = evaluate(schedule, t, states)
            return [_like(s, old) for s, old in zip(new, states)], lr

        return jax.lax.scan(body, init, steps)[1]

    return jax.jit(run)(steps)


@dataclasses.dataclass
class PlanState:
    """The state of one optimizer's schedule as compiled into a job.

    Attributes:
      names: per stateful part (in :func:`stateful_leaves` order): ``{field: store name}``.
      init: per stateful part: ``init_state()``.
    """

    names: list[dict[str, str]]
    init: list[dict[str, np.ndarray]]

    @property
    def slot_names(self) -> list[str]:
        return [n for names in self.names for n in names.values()]

    def initial(self) -> dict[str, np.ndarray]:
        """``{store name: initial value}``."""
        return {
            n: np.asarray(init[k]) for names, init in zip(self.names, self.init) for k, n in names.items()
        }

    def avals(self) -> list[jax.ShapeDtypeStruct]:
        return [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in self.initial().values()]

    def lr(
        self, schedule: Schedule, step: ArrayLike, slots: Mapping, feeds: Mapping
    ) -> tuple[jax.Array, dict[str, Any]]:
        """``(lr, {store name: new value})``: ``schedule`` (the traced optimizer's, with
        the same structure as the one this plan was built from) at ``step``, its state
        read from ``slots``."""
        states = [{k: slots[n] for k, n in names.items()} for names in self.names]
        lr, new = evaluate(schedule, step, states, feeds)
        out = {}
        for names, state, old in zip(self.names, new, states):
            cast = _like(state, old)
            out.update({n: cast[k] for k, n in names.items()})
        return lr, out


def plan_state(schedule: Schedule | None, prefix: str, access: StateAccess | None = None) -> PlanState:
    """Names the state of ``schedule``'s stateful parts under ``prefix`` and, with a store
    ``access``, attaches it to each part (so ``ReduceLROnPlateau.step(metric)`` from the
    host finds its state). ``schedule`` is None for an optimizer without one."""
    leaves = [] if schedule is None else stateful_leaves(schedule)
    names = []
    for j, leaf in enumerate(leaves):
        tag = "lr" if len(leaves) == 1 else f"lr{j}"
        leaf_names = {k: f"{prefix}-{tag}-{k}" for k in leaf.init_state()}
        if access is not None:
            leaf.attach(access, leaf_names)
        names.append(leaf_names)
    return PlanState(names, [leaf.init_state() for leaf in leaves])

"""Schedules that keep state in the session store, and how a train step carries it.

Most schedules are pure functions of the step. A few are not: ``ReduceLROnPlateau``
(best metric, bad steps, cooldown, current lr) and ``MultiplicativeLR`` (the running
product). Such a schedule subclasses :class:`StatefulSchedule` and declares its state
with ``init_state()``; the state lives in the session store like an optimizer slot,
so checkpoints save it and the compiled step never needs recompiling when it changes.

The hook into the train step is one object per optimizer, :class:`PlanState`, built by
``build_plan`` (``jobflow/optimizer/base.py``):

* at discovery its ``slot_names`` / ``avals`` / ``initial()`` are appended to the
  optimizer's slots: ``System-Optimizer-<job>-<i>-lr-<field>`` (``-lr<j>-`` when a
  composite holds several stateful schedules), kind ``"slot"``;
* in the step, ``PlanState.lr(step, slots)`` evaluates the schedule with its state bound
  (see :func:`evaluate`) and returns the rate and the new state, which goes into the
  step's returned ``new`` dict next to the optimizer slots (so a step whose update is
  skipped can drop it like any other slot update).

Values computed in the job body reach the schedule through *feeds*
(``jobflow._trace.TraceContext.feeds``): ``CustomScheduler(lr)`` and an in-job
``ReduceLROnPlateau.step(metric)`` put a traced value under a key; the job returns the
feeds from the traced body and binds them (``_trace.feeding``) while the optimizers
update, where ``_trace.fed(key)`` reads them in the same step.
"""

from __future__ import annotations

import dataclasses
import threading

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.schedule.base import Schedule, walk

__all__ = ["StatefulSchedule", "stateful_leaves", "evaluate", "scan_values", "PlanState", "bind"]

_local = threading.local()


class StatefulSchedule(Schedule):
    """A schedule whose value depends on state kept in the store.

    Subclasses implement ``init_state() -> {field: np.ndarray}`` and
    ``_lr_state(step, base, state) -> (lr, new_state)``. Evaluated outside a train step
    (``values(n)`` scans through the steps) the state starts from ``init_state()``.
    """

    def init_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _lr_state(self, step, base, state):
        raise NotImplementedError

    def _lr(self, step, base):
        state = _read(self)
        lr, new = self._lr_state(step, base, state)
        _write(self, new)
        return lr

    # -- where this schedule's state lives (set by ``bind``) ---------------------------
    def _store_names(self) -> list[dict[str, str]]:
        """``[{field: store name}]`` for each job of the current session that uses it."""
        from jobflow._src.runtime import session as _session

        sid, names = self.__dict__.get("_bound", (None, []))
        return list(names) if sid == _session.default_session().id else []

    def _register(self, names: dict[str, str]) -> None:
        from jobflow._src.runtime import session as _session

        sid = _session.default_session().id
        old_sid, old = self.__dict__.get("_bound", (None, []))
        bound = list(old) if old_sid == sid else []
        if names not in bound:
            bound.append(names)
        self.__dict__["_bound"] = (sid, bound)

    def state(self) -> list[dict[str, np.ndarray]]:
        """The current state in the store, one dict per job that uses this schedule."""
        from jobflow._src.runtime import session as _session

        store = _session.default_session().store
        return [{k: np.asarray(store[n]) for k, n in names.items()} for names in self._store_names()]


class _Scope:
    def __init__(self, states: dict):
        self.initial = states
        self.final = dict(states)


def _read(sched: StatefulSchedule) -> dict:
    scope = getattr(_local, "scope", None)
    if scope is not None and sched in scope.initial:
        return scope.initial[sched]
    return {k: jnp.asarray(v) for k, v in sched.init_state().items()}


def _write(sched: StatefulSchedule, new: dict) -> None:
    scope = getattr(_local, "scope", None)
    if scope is not None and sched in scope.final:
        scope.final[sched] = new


def stateful_leaves(schedule: Schedule) -> list[StatefulSchedule]:
    """Every stateful schedule inside ``schedule`` (itself included), in a fixed order."""
    return [s for s in walk(schedule) if isinstance(s, StatefulSchedule)]


def evaluate(schedule: Schedule, step, states: dict):
    """``(lr, new_states)``: ``schedule(step)`` with each stateful part reading
    ``states[part]`` (its state before this step) and leaving its next state.

    A part evaluated several times in one step (a warmup that also reads ``sched(W)``)
    always starts from the same state, so its transition happens once.
    """
    scope = _Scope(dict(states))
    prev = getattr(_local, "scope", None)
    _local.scope = scope
    try:
        lr = schedule(step)
    finally:
        _local.scope = prev
    return jnp.asarray(lr).astype(jnp.float32), scope.final


def scan_values(schedule: Schedule, steps) -> jax.Array:
    """The schedule over ``steps`` (consecutive), carrying the state from step to step."""
    leaves = stateful_leaves(schedule)

    def run(steps):
        def body(carry, t):
            lr, new = evaluate(schedule, t, dict(zip(leaves, carry)))
            return [new[leaf] for leaf in leaves], lr

        init = [{k: jnp.asarray(v) for k, v in leaf.init_state().items()} for leaf in leaves]
        return jax.lax.scan(body, init, steps)[1]

    return jax.jit(run)(steps)


@dataclasses.dataclass
class PlanState:
    """One optimizer's schedule as compiled into a job: its stateful parts and the store
    names of their state."""

    schedule: Schedule
    leaves: list
    names: list  # per leaf: {field: store name}

    @property
    def slot_names(self) -> list[str]:
        return [n for names in self.names for n in names.values()]

    def initial(self) -> dict[str, np.ndarray]:
        return {
            n: np.asarray(v)
            for leaf, names in zip(self.leaves, self.names)
            for (k, n), v in zip(names.items(), leaf.init_state().values())
        }

    def avals(self) -> list[jax.ShapeDtypeStruct]:
        return [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in self.initial().values()]

    def lr(self, step, slots: dict):
        """``(lr, {store name: new value})`` for this step, given the current slots."""
        states = {
            leaf: {k: slots[n] for k, n in names.items()} for leaf, names in zip(self.leaves, self.names)
        }
        lr, new = evaluate(self.schedule, step, states)
        out = {}
        for leaf, names in zip(self.leaves, self.names):
            for k, n in names.items():
                out[n] = jnp.asarray(new[leaf][k]).astype(slots[n].dtype)
        return lr, out


def bind(schedule: Schedule | None, prefix: str) -> PlanState:
    """Names the state of ``schedule``'s stateful parts under ``prefix`` and registers the
    names with each part (so ``ReduceLROnPlateau.step(metric)`` finds its state).
    ``schedule`` is None for an optimizer without one (a complete optax optimizer)."""
    leaves = [] if schedule is None else stateful_leaves(schedule)
    names = []
    for j, leaf in enumerate(leaves):
        tag = "lr" if len(leaves) == 1 else f"lr{j}"
        leaf_names = {k: f"{prefix}-{tag}-{k}" for k in leaf.init_state()}
        leaf._register(leaf_names)
        names.append(leaf_names)
    return PlanState(schedule, leaves, names)

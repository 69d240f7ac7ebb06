"""Loss scaling and non-finite steps inside a compiled train step.

One :class:`StepGuard` per train job and input signature, built once by ``plan.make_plan``
from the top-level optimizer's loss-scale policy (``jobflow/_src/optimizer/loss_scale.py``)
and the job's ``function_config``. The step (``step.py``)

1. passes ``scale(state)`` (the scale ``S`` in use) to the body, which differentiates
   ``S * loss``;
2. calls :meth:`StepGuard.check`: gradients divided by ``S``; ``finite`` is True when
   every gradient element and the loss are finite (computed for a job that skips or has a
   loss-scale policy, the steps that read it); the global gradient norm;
3. runs the optimizers, then :meth:`StepGuard.commit`: when the job skips non-finite
   steps (a dynamic policy, ``FixedLossScaleManager(drop_overflow_update=True)`` or
   ``function_config.skip_nonfinite_steps``), every value the step would write (variables,
   slots, schedule state, batch-norm statistics, the step counter) keeps its old value
   unless ``finite`` and every learning rate the schedules gave is finite (a ``nan`` or
   ``inf`` rate counts as a non-finite step); the policy's state and the skip counters
   advance either way.

Skip counters (int32, saturating, in the store and in checkpoints; named by
``core.names.skipped_steps`` (all skipped steps) and
``core.names.consecutive_skipped_steps`` (reset by a finite step)). When a call
starts and a finished step shows the consecutive count at ``max_consecutive_skipped_steps``,
the job raises :class:`NonFiniteStepsError` before running. The check never waits for the
device: it reads the store's counter when that step has finished (always so after a call
that returned numpy), else the newest finished count among the last calls' results; in
a loop that never reads results the error can therefore come a few calls late (at most
``SKIP_WINDOW`` calls: then the check waits for the oldest of them).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from jobflow._src.core import names as store_names
from jobflow._src.core.counters import increment
from jobflow._src.core.errors import NonFiniteStepsError
from jobflow._src.optimizer import loss_scale as _ls
from jobflow._src.optimizer import sparse_rows as _rows
from jobflow._src.optimizer.base import global_norm

__all__ = ["NonFiniteStepsError", "StepGuard", "all_finite"]

SKIP_WINDOW = 16  # results of calls not yet finished that the limit check keeps


def all_finite(loss, grads: dict):
    """True (a bool scalar) when ``loss`` and every element of every gradient are finite
    (of a row-sparse gradient, its rows: the rest is zero)."""
    finite = jnp.isfinite(loss)
    for g in grads.values():
        finite = finite & jnp.all(jnp.isfinite(_rows.values(g)))
    return finite


@dataclasses.dataclass
class StepGuard:
    """How one train job scales its loss and treats non-finite steps."""

    job_name: str
    policy: _ls.LossScalePolicy | None
    skip_nonfinite: bool  # function_config.skip_nonfinite_steps
    limit: int | None  # function_config.max_consecutive_skipped_steps
    # consecutive-skip counts returned by recent calls, oldest first (host side)
    _recent: collections.deque = dataclasses.field(default_factory=collections.deque, repr=False)

    @classmethod
    def for_job(cls, job_name: str, optimizer, config) -> StepGuard:
        owner = type(optimizer).__name__
        policy = _ls.as_policy(optimizer.loss_scale_factor, optimizer.loss_scale_policy, owner)
        settings = config.settings
        return cls(
            job_name, policy, settings["skip_nonfinite_steps"], settings["max_consecutive_skipped_steps"]
        )

    @property
    def skips(self) -> bool:
        """True when a non-finite step is skipped rather than applied."""
        return self.skip_nonfinite or (self.policy is not None and self.policy.skips_nonfinite)

    @property
    def limited(self) -> bool:
        """True when the job skips non-finite steps and bounds how many may follow in a row."""
        return self.skips and self.limit is not None

    # -- state in the store ------------------------------------------------------------
    def _policy_names(self) -> dict[str, str]:
        fields = self.policy.initial_state() if self.policy is not None else {}
        return {f: store_names.loss_scale(self.job_name, f) for f in fields}

    def initial_state(self) -> dict[str, np.ndarray]:
        """``{store name: initial scalar}`` of the loss-scale state and skip counters."""
        out: dict[str, Any] = {}
        if self.policy is not None:
            out.update(
                {store_names.loss_scale(self.job_name, f): v for f, v in self.policy.initial_state().items()}
            )
        if self.skips:
            out[store_names.skipped_steps(self.job_name)] = np.int32(0)
            out[store_names.consecutive_skipped_steps(self.job_name)] = np.int32(0)
        return out

    @property
    def state_names(self) -> list[str]:
        return list(self.initial_state())

    # -- inside the compiled step ------------------------------------------------------
    def scale(self, state: dict):
        """The loss scale this step uses (a float32 scalar)."""
        if self.policy is None:
            return jnp.float32(1.0)
        return self.policy.scale({f: state[n] for f, n in self._policy_names().items()})

    @property
    def needs_finite(self) -> bool:
        """True when the step uses ``finite``: the job skips non-finite steps or has a
        loss-scale policy (its next state reads it)."""
        return self.skips or self.policy is not None

    def check(self, grads: dict, loss, scale):
        """``(unscaled grads, finite, info)`` for the gradients of ``scale * loss``;
        ``finite`` is None when the step does not use it (:attr:`needs_finite`)."""
        if self.policy is not None:
            grads = {n: _rows.map_values(lambda x: (x / scale).astype(x.dtype), g) for n, g in grads.items()}
        finite = all_finite(loss, grads) if self.needs_finite else None
        info = {"loss_scale": scale, "global_grad_norm": global_norm(grads)}
        return grads, finite, info

    def commit(self, state: dict, finite, new: dict, rates=()):
        """``(values to store, info)``: ``new`` (what the update writes) kept only on a
        step whose loss, gradients and learning ``rates`` are all finite when the job
        skips, plus the policy's next state (it sees the gradients' ``finite`` only: a
        non-finite rate is no overflow of the scale) and the counters."""
        out = dict(new)
        info = {"skipped": jnp.bool_(False)}
        if self.skips:
            applied = finite
            for rate in rates:  # a schedule's nan or inf rate would write nan weights
                applied = applied & jnp.all(jnp.isfinite(rate))
            info["skipped"] = ~applied
            # rows written by a row-sparse update (sparse_rows.RowWrite) are selected row-wise
            out = {n: _rows.select(applied, v, state[n]) for n, v in new.items()}
            total, run = (
                store_names.skipped_steps(self.job_name),
                store_names.consecutive_skipped_steps(self.job_name),
            )
            out[total] = jnp.where(applied, state[total], increment(state[total]))
            out[run] = jnp.where(applied, jnp.zeros_like(state[run]), increment(state[run]))
            info["skipped_steps"] = out[total]
            info["consecutive_skipped_steps"] = out[run]
        if self.policy is not None:
            names = self._policy_names()
            nxt = self.policy.next_state({f: state[n] for f, n in names.items()}, finite)
            out.update({names[f]: jnp.asarray(v).astype(state[names[f]].dtype) for f, v in nxt.items()})
        return out, info

    # -- on the host -------------------------------------------------------------------
    def record(self, info) -> None:
        """Keeps a call's info (``dispatch.PackedInfo``: read when its step has
        finished) for the consecutive-skip count :meth:`check_limit` reads."""
        if self.limited:
            self._recent.append(info)

    def _latest_finished_count(self, store: dict) -> int | None:
        """The newest consecutive-skip count whose step has finished, without waiting
        (unless ``SKIP_WINDOW`` calls are unfinished: then the oldest is waited for)."""
        current = store[store_names.consecutive_skipped_steps(self.job_name)]
        if current.is_ready():  # also right after load_variables reset it
            self._recent.clear()
            return int(np.asarray(current))
        while len(self._recent) > SKIP_WINDOW:
            self._recent.popleft().block_until_ready()
        for i in range(len(self._recent) - 1, -1, -1):
            if self._recent[i].is_ready():
                count = int(self._recent[i]["consecutive_skipped_steps"])
                for _ in range(i + 1):
                    self._recent.popleft()
                return count
        return None

    def check_limit(self, store: dict) -> None:
        """Raises when a finished step shows the consecutive skips at the limit (changes
        nothing; never waits for the device, see the module docstring)."""
        name = store_names.consecutive_skipped_steps(self.job_name)
        if not self.limited or name not in store:
            return
        run = self._latest_finished_count(store)
        if run is None or self.limit is None or run < self.limit:
            return
        scale, scale_name = "", store_names.loss_scale(self.job_name, "LossScale")
        if scale_name in store:
            scale = f" (loss scale now {float(np.asarray(store[scale_name])):g})"
        raise NonFiniteStepsError(
            f"train job {self.job_name!r} skipped its last {run} steps because their loss or gradients "
            f"were not finite{scale}; function_config.max_consecutive_skipped_steps is {self.limit}. "
            f"Nothing was updated by those steps. Check the input data, the learning rate and the "
            f"loss; to go on, reset the counter: flow.load_variables({{{name!r}: np.int32(0)}})"
        )

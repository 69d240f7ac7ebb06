"""``ReduceLROnPlateau`` in a compiled job: its state lives in the session store.

PyTorch's rule (OneFlow's is the same): after each metric ``a``,

* better: ``a < best * (1 - threshold)`` (min, rel), ``a < best - threshold`` (min, abs),
  ``a > best * (1 + threshold)`` (max, rel), ``a > best + threshold`` (max, abs);
  ``best = a, bad = 0`` if better, else ``bad += 1``;
* in cooldown (``cooldown_left > 0``): ``cooldown_left -= 1``, ``bad = 0``;
* if ``bad > patience``: ``new = max(lr * factor, min_lr)``, applied only if
  ``lr - new > eps``; ``cooldown_left = cooldown``, ``bad = 0``.

The state (``lr``, ``best``, ``bad``, ``cooldown_left``) is four variables
``<optimizer prefix>-lr-<field>`` in the store (``core/names.py``): checkpoints save it and
the compiled step reads it as an input, so changing it never recompiles the job. An
in-job ``step(metric)`` puts the metric in the trace context's feeds under
:attr:`feed_key`; the update of the same step reads it on the bound copy of the schedule
(``schedule/state.py``). ``step(metric)`` from the host writes the state through the
store handles the runtime attached when the jobs were compiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jobflow._src.core import checks
from jobflow._src.core import trace as _trace
from jobflow._src.schedule.state import StatefulSchedule

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(StatefulSchedule):
    """Reduces the rate by ``factor`` when a metric stops improving (PyTorch semantics).

    Step it with the metric in either of two ways:

    * from the host between calls: ``loss = train_job(x, y); sched.step(loss.mean())``
      (or a validation metric from a predict job);
    * from the train job's body: ``sched.step(flow.math.reduce_mean(loss))`` inside the
      job whose optimizer uses ``sched``.

    Either way the metric of step ``t`` affects the rate from step ``t + 1`` on, as with
    PyTorch's ``opt.step(); sched.step(metric)``. Stepping from the host runs a small
    compiled function on the stored state of every job of the session that uses this
    schedule. ``lr(t)`` is the current rate (``base_lr`` until the first reduction).
    """

    def __init__(
        self,
        base_lr: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        cls = "ReduceLROnPlateau"
        self.base_lr = checks.number(cls, "base_lr", base_lr, low=0, low_open=True)
        self.mode = checks.choice(cls, "mode", mode, ("min", "max"))
        self.factor = checks.number(cls, "factor", factor, low=0, high=1, high_open=True)
        self.patience = checks.integer(cls, "patience", patience, low=0)
        self.threshold = checks.number(cls, "threshold", threshold, low=0)
        self.threshold_mode = checks.choice(cls, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = checks.integer(cls, "cooldown", cooldown, low=0)
        self.min_lr = checks.number(cls, "min_lr", min_lr, low=0)
        self.eps = checks.number(cls, "eps", eps, low=0)

    # -- state ------------------------------------------------------------------------
    def init_state(self) -> dict[str, Any]:
        worst = np.inf if self.mode == "min" else -np.inf
        return {
            "lr": np.float32(self.base_lr),
            "best": np.float32(worst),
            "bad": np.int32(0),
            "cooldown_left": np.int32(0),
        }

    def _better(self, a, best):
        thr = np.float32(self.threshold)
        if self.mode == "min":
            return a < (best * (1 - thr) if self.threshold_mode == "rel" else best - thr)
        return a > (best * (1 + thr) if self.threshold_mode == "rel" else best + thr)

    def transition(self, state: dict, metric: ArrayLike) -> dict:
        """The state after observing ``metric`` (jnp; PyTorch's ``step(metrics)``)."""
        a = jnp.asarray(metric, jnp.float32)
        better = self._better(a, state["best"])
        best = jnp.where(better, a, state["best"])
        bad = jnp.where(better, 0, state["bad"] + 1)
        in_cooldown = state["cooldown_left"] > 0
        cooldown_left = jnp.where(in_cooldown, state["cooldown_left"] - 1, state["cooldown_left"])
        bad = jnp.where(in_cooldown, 0, bad)
        reduce = bad > self.patience
        lr = state["lr"]
        new_lr = jnp.maximum(lr * np.float32(self.factor), np.float32(self.min_lr))
        lr = jnp.where(reduce & (lr - new_lr > self.eps), new_lr, lr)
        cooldown_left = jnp.where(reduce, self.cooldown, cooldown_left)
        bad = jnp.where(reduce, 0, bad)
        return {
            "lr": lr,
            "best": best,
            "bad": bad.astype(jnp.int32),
            "cooldown_left": cooldown_left.astype(jnp.int32),
        }

    def _lr_state(self, step, base, state):
        lr = state["lr"] * (base / self.base_lr)
        metric = self.__dict__.get("_fed")  # set on the bound copy a train step evaluates
        new = state if metric is None else self.transition(state, metric)
        return jnp.broadcast_to(lr, jnp.shape(step)), new

    @property
    def feed_key(self) -> str:  # type: ignore[override]  # a property overrides the plain attribute on purpose
        """Where an in-job ``step(metric)`` puts the metric in the trace context's feeds."""
        return f"ReduceLROnPlateau-{id(self)}"

    # -- stepping ---------------------------------------------------------------------
    def step(self, metric: ArrayLike) -> None:
        """Observes ``metric`` (a number or size-1 array). See the class docstring."""
        ctx = _trace.current()
        if ctx is not None:
            self._step_in_job(ctx, metric)
            return
        try:
            value = float(np.asarray(metric).reshape(()))
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step(metric) needs a number; got metric={metric!r}") from None
        stores = self.stores()
        if not stores:
            raise RuntimeError(
                "ReduceLROnPlateau.step(metric) was called before any job of this session uses the "
                "schedule; call (or .compile()) the train job whose optimizer uses it first"
            )
        for access, names in stores:
            state = {k: access.read(n) for k, n in names.items()}
            new = self._host_transition()(state, np.float32(value))
            for k, n in names.items():
                access.write(n, new[k])

    def _host_transition(self):
        fn = self.__dict__.get("_jit")
        if fn is None:
            fn = self.__dict__["_jit"] = jax.jit(self.transition)
        return fn

    def _step_in_job(self, ctx, metric):
        if not ctx.is_train:
            raise RuntimeError(
                f"ReduceLROnPlateau.step(metric) inside predict job {ctx.job_name!r}: a predict job "
                f"changes no state; return the metric and call sched.step(value) on the host"
            )
        if not hasattr(metric, "dtype") or np.size(metric) != 1:
            raise TypeError(
                f"ReduceLROnPlateau.step(metric) in a job needs a scalar array computed in the job; "
                f"got metric={metric!r}"
            )
        ctx.feeds[self.feed_key] = jax.lax.stop_gradient(jnp.reshape(metric, ()).astype(jnp.float32))

    def simulate(self, metrics: Sequence[float]) -> np.ndarray:
        """The rate after each of ``metrics`` (PyTorch's ``get_last_lr()`` after
        ``step(m)``), from the initial state, in one compiled scan."""

        def body(state, m):
            new = self.transition(state, m)
            return new, new["lr"]

        init = {k: jnp.asarray(v) for k, v in self.init_state().items()}
        out = jax.jit(lambda ms: jax.lax.scan(body, init, ms)[1])(jnp.asarray(metrics, jnp.float32))
        return np.asarray(out)

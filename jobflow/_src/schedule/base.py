"""The schedule protocol: a pure, jit-safe function ``step -> learning rate``.

Step convention (all of jobflow): the job's step counter starts at 0 and the first
update uses ``lr(0)``; the counter advances once per applied update (a skipped update
does not advance it). Schedules compute in float32 and return a float32 scalar (or an
array shaped like ``step``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core.arguments import CheckedArguments

__all__ = ["Schedule", "Constant", "Table", "FunctionSchedule", "as_schedule", "walk"]


class Schedule(CheckedArguments):
    """Base class: an immutable object with ``__call__(step) -> lr``.

    ``step`` is an integer scalar (a JAX array inside a job); the result is a float32
    scalar. Subclasses implement ``__call__`` (or ``_lr(step, base)`` when the schedule
    is relative to a ``base_lr``) without Python control flow on ``step``.

    Attributes:
      base_lr: the rate the schedule scales, or None when it has none (a table, a
        function). Chaining (``ChainedScheduler``) re-evaluates a schedule at another
        base through :meth:`at_base`.
      feed_key: for a schedule that reads a value computed in the job body
        (``CustomScheduler``, ``ReduceLROnPlateau``), the key of that value in the trace
        context's ``feeds``; None for the others. In a train step the schedule is
        evaluated on a bound copy holding the value (``schedule/state.py``).
    """

    base_lr: float | None = None
    feed_key: str | None = None

    def __call__(self, step: Any) -> jax.Array:
        return self._lr(step, self.base_lr)

    def _lr(self, step, base):
        raise NotImplementedError(f"{type(self).__name__} implements neither __call__ nor _lr")

    def at_base(self, step: Any, base: Any) -> jax.Array:
        """The schedule's value with ``base`` in place of ``base_lr`` (a traced scalar)."""
        if type(self)._lr is not Schedule._lr:
            return self._lr(step, base)
        if not self.base_lr:
            raise TypeError(
                f"{type(self).__name__} has no base_lr, so it cannot be re-based (e.g. in "
                f"ChainedScheduler); use flow.schedule.product(...) to multiply schedules"
            )
        return self(step) * (base / self.base_lr)

    def children(self) -> tuple[Schedule, ...]:
        """The schedules this one is built from (composites), found in its attributes."""
        out = []
        for v in vars(self).values():
            if isinstance(v, Schedule):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                out.extend(x for x in v if isinstance(x, Schedule))
        return tuple(out)

    def values(self, num_steps: int) -> np.ndarray:
        """The learning rates of steps ``0 .. num_steps-1`` as a float32 numpy array.

        One compiled program: a ``vmap`` over the steps, or a ``scan`` when the schedule
        keeps state (``MultiplicativeLR``, ``ReduceLROnPlateau``: no metrics are fed, so a
        plateau schedule stays at its current rate).
        """
        if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 0:
            raise ValueError(f"values(num_steps) needs an int >= 0; got num_steps={num_steps!r}")
        from jobflow._src.schedule import state as _state

        steps = jnp.arange(int(num_steps), dtype=jnp.int32)
        if not _state.stateful_leaves(self):
            return np.asarray(jax.jit(jax.vmap(self))(steps), dtype=np.float32)
        return np.asarray(_state.scan_values(self, steps), dtype=np.float32)

    def plot(self, num_steps: int, path: str | None = None, ax: Any = None, label: str | None = None) -> Any:
        """Plots the first ``num_steps`` values (needs matplotlib: ``pip install jobflow[examples]``).

        Writes a PNG to ``path`` when given; draws on ``ax`` when given. Returns the axes.
        """
        try:
            import matplotlib

            if ax is None and path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Schedule.plot needs matplotlib: pip install 'jobflow[examples]'") from e
        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(np.arange(num_steps), self.values(num_steps), label=label or repr(self))
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        if own:
            ax.set_title(label or type(self).__name__, fontsize=9)
            fig.tight_layout()
            if path is not None:
                fig.savefig(path, dpi=100)
                plt.close(fig)
        return ax

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def walk(schedule: Schedule) -> Iterator[Schedule]:
    """``schedule`` and every schedule it is built from, depth first, each once."""
    seen, stack = set(), [schedule]
    while stack:
        s = stack.pop()
        if id(s) in seen:
            continue
        seen.add(id(s))
        yield s
        stack.extend(reversed(s.children()))


class Constant(Schedule):
    """``lr(t) = value``."""

    def __init__(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"a constant learning rate must be a finite number; got {value!r}")
        self.value = float(value)
        self.base_lr = self.value

    def _lr(self, step, base):
        return jnp.broadcast_to(jnp.asarray(base, jnp.float32), jnp.shape(step))

    def __repr__(self):
        return f"Constant({self.value!r})"


class Table(Schedule):
    """``lr(t) = values[min(t, len(values) - 1)]``: a list indexed by step (MindSpore's
    style); the last value holds after the end."""

    def __init__(self, values: Sequence[float] | np.ndarray | jax.Array) -> None:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(
                f"a learning-rate list must be a non-empty 1-D sequence of finite numbers; "
                f"got shape {arr.shape}"
            )
        self._values = arr.astype(np.float32)

    def __call__(self, step: Any) -> jax.Array:
        idx = jnp.clip(jnp.asarray(step), 0, self._values.size - 1)
        return jnp.asarray(self._values)[idx]

    def __repr__(self):
        return f"Table(len={self._values.size}, first={self._values[0]:.6g}, last={self._values[-1]:.6g})"


class FunctionSchedule(Schedule):
    """Wraps any callable ``step -> lr`` (an optax schedule, a lambda of ``jnp`` ops)."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, step: Any) -> jax.Array:
        return jnp.asarray(self.fn(step)).astype(jnp.float32)


def as_schedule(lr: Any, argname: str = "lr_scheduler") -> Schedule:
    """Turns any accepted learning-rate value into a :class:`Schedule`.

    Accepts a number, a :class:`Schedule`, any callable ``step -> lr`` (optax schedules as
    they are), or a list / 1-D array indexed by step.
    """
    if isinstance(lr, Schedule):
        return lr
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return Constant(cast(float, lr))
    if isinstance(lr, (np.ndarray, jax.Array)) and np.ndim(lr) == 0:
        return Constant(float(lr))
    if callable(lr):
        return FunctionSchedule(lr)
    if isinstance(lr, (list, tuple, np.ndarray, jax.Array)):
        return Table(lr)
    raise TypeError(
        f"{argname} must be a number, a schedule, a callable step -> lr, or a list of "
        f"learning rates indexed by step; got {lr!r}"
    )

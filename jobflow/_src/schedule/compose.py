"""Composition: sequences of schedules, products, chains and warmups over any schedule.

Every function takes schedules in any accepted form (a number, a schedule object, an
optax schedule or any callable ``step -> lr``, a list indexed by step) and returns a
schedule object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jobflow._src.core import checks
from jobflow._src.core.arguments import checked_arguments
from jobflow._src.schedule.base import Schedule, as_schedule
from jobflow._src.schedule.formulas import f32, int_step

__all__ = ["Join", "join", "Product", "product", "Chain", "chain", "Warmup", "with_warmup"]

_STEP_MODES = ("offset", "global")


def _schedules(owner: str, schedules: Any, name: str = "schedules") -> tuple[Schedule, ...]:
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence) or not schedules:
        raise ValueError(f"{owner}({name}) must be a non-empty list of schedules; got {name}={schedules!r}")
    return tuple(as_schedule(s, f"{owner}({name}[{i}])") for i, s in enumerate(schedules))


class Join(Schedule):
    """``schedules[i]`` on ``[boundaries[i-1], boundaries[i])``: each later schedule sees
    the step offset from its boundary (``t - boundaries[i-1]``) or the global step ``t``,
    as ``offsets[i-1]`` says.

    ``join([a, b], [100], step="offset")`` equals optax's ``join_schedules`` and PyTorch's
    ``SequentialLR``; ``step="global"`` is OneFlow's ``SequentialLR`` default.
    """

    _names = ("join", "schedules", "boundaries")  # owner and argument names in errors

    def __init__(
        self, schedules: Sequence[Schedule], boundaries: Sequence[int], offsets: Sequence[int]
    ) -> None:
        owner, sch, bnd = self._names
        self.schedules = _schedules(owner, schedules, sch)
        self.boundaries = checks.int_list(owner, bnd, boundaries, increasing="strict")
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"{owner} needs len({bnd}) == len({sch}) - 1; got {len(self.schedules)} "
                f"{sch} and {bnd}={list(self.boundaries)!r}"
            )
        self.offsets = tuple(bool(o) for o in offsets)
        if len(self.offsets) != len(self.boundaries):
            raise ValueError(f"{owner} needs one offset flag per boundary; got offsets={list(offsets)!r}")

    def __call__(self, step: Any) -> jax.Array:
        n = int_step(step)
        out = self.schedules[0](n)
        for b, off, sched in zip(self.boundaries, self.offsets, self.schedules[1:]):
            out = jnp.where(n < b, out, sched(jnp.maximum(n - b, 0) if off else n))
        return out


@checked_arguments
def join(schedules: Sequence[Any], boundaries: Sequence[int], *, step: str | Sequence[str]) -> Join:
    """Runs ``schedules`` one after the other, switching at ``boundaries``.

    Args:
      schedules: N schedules.
      boundaries: N-1 strictly increasing steps; ``schedules[i]`` starts at
        ``boundaries[i-1]``.
      step: ``"offset"`` (each later schedule sees ``t - boundary``: it starts from its own
        step 0) or ``"global"`` (it sees ``t``), or a list with one of these per boundary.
        There is no default: the frameworks disagree (PyTorch and optax offset, OneFlow
        does not), so say which one you mean.
    """
    modes = [step] * len(list(boundaries)) if isinstance(step, str) else list(step)
    for m in modes:
        checks.choice("join", "step", m, _STEP_MODES)
    return Join(schedules, boundaries, [m == "offset" for m in modes])


class Product(Schedule):
    """``lr(t) = prod_i schedules[i](t)`` (e.g. a base schedule times a factor schedule)."""

    def __init__(self, schedules):
        self.schedules = _schedules("product", schedules)

    def __call__(self, step):
        out = self.schedules[0](step)
        for s in self.schedules[1:]:
            out = out * s(step)
        return out


@checked_arguments
def product(*schedules: Any) -> Product:
    """The pointwise product of the given schedules."""
    return Product(list(schedules))


class Chain(Schedule):
    """``lr(t) = f_n(... f_2(f_1(t), t) ..., t)``: each schedule re-evaluated with the
    previous output as its base rate (OneFlow's ``ChainedScheduler`` closed form).

    For schedules that scale their base (StepLR, ExponentialLR, ConstantLR, LinearLR,
    MultiStepLR, CosineAnnealingLR with ``eta_min=0``...) this is the product of their
    factors, which is what PyTorch's ``ChainedScheduler`` computes for them.
    """

    def __init__(self, schedules: Sequence[Schedule]) -> None:
        self.schedules = _schedules("ChainedScheduler", schedules, "schedulers")
        self.base_lr = self.schedules[0].base_lr

    def _rest(self, step, out):
        for s in self.schedules[1:]:
            out = s.at_base(step, out)
        return out

    def _lr(self, step, base):
        return self._rest(step, self.schedules[0].at_base(step, base))

    def __call__(self, step: Any) -> jax.Array:
        return self._rest(step, self.schedules[0](step))


@checked_arguments
def chain(*schedules: Any) -> Chain:
    """Chains schedules: each takes the previous one's output as its base."""
    return Chain(list(schedules))


class Warmup(Schedule):
    """A warmup over ``steps`` steps in front of any schedule.

    For ``t < steps``: ``target * (start_factor + (1 - start_factor) * t / steps)``
    (``mode="linear"``) or ``target * start_factor`` (``mode="constant"``), where
    ``target`` is the value the schedule takes when the warmup ends. After it the
    schedule sees ``t - steps`` (``step="offset"``, ``target = schedule(0)``) or ``t``
    (``step="global"``, ``target = schedule(steps)``). The linear ramp therefore meets
    the schedule without a jump.
    """

    def __init__(self, schedule, steps, start_factor=0.0, mode="linear", step="offset"):
        self.schedule = as_schedule(schedule, "with_warmup(schedule)")
        self.steps = checks.integer("with_warmup", "steps", steps, low=1)
        self.start_factor = checks.number("with_warmup", "start_factor", start_factor, low=0, high=1)
        self.mode = checks.choice("with_warmup", "mode", mode, ("linear", "constant"))
        self.step = checks.choice("with_warmup", "step", step, _STEP_MODES)
        self.base_lr = self.schedule.base_lr

    def __call__(self, step):
        n = int_step(step)
        offset = self.step == "offset"
        target = self.schedule(jnp.zeros_like(n) if offset else jnp.full_like(n, self.steps))
        s = self.start_factor
        ramp = (
            s + (1.0 - s) * f32(n) / self.steps
            if self.mode == "linear"
            else jnp.full(n.shape, s, jnp.float32)
        )
        after = self.schedule(jnp.maximum(n - self.steps, 0) if offset else n)
        return jnp.where(n < self.steps, target * ramp, after)


@checked_arguments
def with_warmup(
    schedule: Schedule, steps: int, start_factor: float = 0.0, mode: str = "linear", step: str = "offset"
) -> Warmup:
    """Puts a warmup of ``steps`` steps in front of ``schedule`` (see :class:`Warmup`)."""
    return Warmup(schedule, steps, start_factor, mode, step)

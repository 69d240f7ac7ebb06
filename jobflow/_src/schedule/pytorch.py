"""PyTorch's ``torch.optim.lr_scheduler`` names, with PyTorch's semantics.

Each takes ``base_lr`` where PyTorch takes an optimizer (``StepLR(base_lr=0.1,
step_size=30)``) and computes PyTorch's closed form in the step ``t`` (the job's
counter, which starts at 0 like PyTorch's ``last_epoch`` after construction; the first
update uses ``lr(0)``). Where PyTorch's ``step()`` uses a recursive ("chainable") form,
the closed form is the same function of ``t`` without the accumulated float64 rounding.

Differences from the OneFlow names at ``jobflow.schedule``:

* ``PolynomialLR(base_lr, total_iters=5, power=1.0)`` decays to 0 (no end rate, no cycle);
* ``SequentialLR(schedulers, milestones)``: each later scheduler sees ``t - milestone``;
* ``CosineAnnealingWarmRestarts(base_lr, T_0, T_mult=1, eta_min=0.0)``: no decay/limit;
* ``LinearLR`` needs ``start_factor > 0``; ``MultiStepLR`` accepts unsorted and repeated
  milestones (a repeated milestone multiplies by ``gamma`` once per occurrence).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from jobflow._src.core import checks
from jobflow._src.schedule import oneflow as _oneflow
from jobflow._src.schedule.base import Schedule
from jobflow._src.schedule.compose import Join
from jobflow._src.schedule.formulas import f32, int_step
from jobflow._src.schedule.oneflow import ChainedScheduler as ChainedScheduler
from jobflow._src.schedule.oneflow import ConstantLR as ConstantLR
from jobflow._src.schedule.oneflow import CosineAnnealingLR as CosineAnnealingLR
from jobflow._src.schedule.oneflow import CyclicLR as CyclicLR
from jobflow._src.schedule.oneflow import ExponentialLR as ExponentialLR
from jobflow._src.schedule.oneflow import LambdaLR as LambdaLR
from jobflow._src.schedule.oneflow import MultiplicativeLR as MultiplicativeLR
from jobflow._src.schedule.oneflow import OneCycleLR as OneCycleLR
from jobflow._src.schedule.oneflow import StepLR as StepLR
from jobflow._src.schedule.plateau import ReduceLROnPlateau as ReduceLROnPlateau

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "SequentialLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
]


class LinearLR(_oneflow.LinearLR):
    """``lr(t) = b * (start_factor + (end_factor - start_factor) * min(t, T) / T)``;
    ``0 < start_factor <= 1``, ``0 <= end_factor <= 1``."""

    _start_open = True


class MultiStepLR(_oneflow.MultiStepLR):
    """``lr(t) = b * gamma ** (number of milestones <= t)``, repeated milestones counted
    once per occurrence (PyTorch's ``Counter``)."""

    _order = None


class PolynomialLR(Schedule):
    """``lr(t) = b * (1 - min(t, T) / T) ** power``, ``T = total_iters``: reaches 0 at ``T``."""

    def __init__(self, base_lr: float, total_iters: int = 5, power: float = 1.0) -> None:
        cls = "PolynomialLR"
        self.base_lr = checks.number(cls, "base_lr", base_lr, low=0)
        self.total_iters = checks.integer(cls, "total_iters", total_iters, low=1)
        self.power = checks.number(cls, "power", power, low=0, low_open=True)

    def _lr(self, step, base):
        t = self.total_iters
        return base * (f32(t - jnp.minimum(int_step(step), t)) / t) ** self.power


class CosineAnnealingWarmRestarts(_oneflow.CosineAnnealingWarmRestarts):
    """SGDR: ``lr = eta_min + (b - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` with
    ``T_i = T_0 * T_mult**k`` in cycle ``k``; cycles found with exact integers (PyTorch's
    ``step()`` is exact too; its ``step(epoch)`` uses a float log that misfires)."""

    def __init__(self, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        super().__init__(base_lr, T_0, T_mult, eta_min)


class SequentialLR(Join):
    """``schedulers[i]`` from ``milestones[i-1]`` on, seeing ``t - milestones[i-1]``."""

    _names = ("SequentialLR", "schedulers", "milestones")

    def __init__(self, schedulers: Sequence[Schedule], milestones: Sequence[int]) -> None:
        n = len(milestones) if isinstance(milestones, (list, tuple)) else 0
        super().__init__(schedulers, milestones, [True] * n)
        self.base_lr = self.schedules[0].base_lr

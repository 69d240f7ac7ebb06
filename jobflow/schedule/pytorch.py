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

import jax.numpy as jnp

from jobflow.schedule import _check
from jobflow.schedule import oneflow as _oneflow
from jobflow.schedule._math import f32, int_step
from jobflow.schedule.base import Schedule
from jobflow.schedule.compose import Join
from jobflow.schedule.oneflow import ChainedScheduler as ChainedScheduler
from jobflow.schedule.oneflow import ConstantLR as ConstantLR
from jobflow.schedule.oneflow import CosineAnnealingLR as CosineAnnealingLR
from jobflow.schedule.oneflow import CyclicLR as CyclicLR
from jobflow.schedule.oneflow import ExponentialLR as ExponentialLR
from jobflow.schedule.oneflow import LambdaLR as LambdaLR
from jobflow.schedule.oneflow import MultiplicativeLR as MultiplicativeLR
from jobflow.schedule.oneflow import OneCycleLR as OneCycleLR
from jobflow.schedule.oneflow import StepLR as StepLR
from jobflow.schedule.plateau import ReduceLROnPlateau as ReduceLROnPlateau

__all__ = [
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
    "SequentialLR", "ChainedScheduler", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau",
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

    def __init__(self, base_lr, total_iters=5, power=1.0):
        cls = "PolynomialLR"
        self.base_lr = _check.number(cls, "base_lr", base_lr, lo=0)
        self.total_iters = _check.integer(cls, "total_iters", total_iters, lo=1)
        self.power = _check.number(cls, "power", power, lo=0, lo_open=True)

    def _lr(self, step, base):
        t = self.total_iters
        return base * (f32(t - jnp.minimum(int_step(step), t)) / t) ** self.power


class CosineAnnealingWarmRestarts(_oneflow.CosineAnnealingWarmRestarts):
    """SGDR: ``lr = eta_min + (b - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` with
    ``T_i = T_0 * T_mult**k`` in cycle ``k``; cycles found with exact integers (PyTorch's
    ``step()`` is exact too; its ``step(epoch)`` uses a float log that misfires)."""

    def __init__(self, base_lr, T_0, T_mult=1, eta_min=0.0):  # noqa: N803 - PyTorch's names
        super().__init__(base_lr, T_0, T_mult, eta_min)


class SequentialLR(Join):
    """``schedulers[i]`` from ``milestones[i-1]`` on, seeing ``t - milestones[i-1]``."""

    _names = ("SequentialLR", "schedulers", "milestones")

    def __init__(self, schedulers, milestones):
        n = len(milestones) if isinstance(milestones, (list, tuple)) else 0
        super().__init__(schedulers, milestones, [True] * n)
        self.base_lr = self.schedules[0].base_lr

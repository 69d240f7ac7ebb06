"""MindSpore's learning-rate functions and schedule classes, as MindSpore's code computes them.

* ``dynamic_lr`` functions return a Python ``list`` with one rate per step (element ``i``
  is used by update ``i``); pass the list as any optimizer's ``lr_scheduler`` (the last
  value holds after the end, where MindSpore would index out of range). With
  ``e = floor(i / step_per_epoch)``, ``D = decay_epoch``.
* ``learning_rate_schedule`` classes are schedule objects of ``global_step`` (the job's
  counter, first update at 0), computed in float32 as MindSpore does; ``s`` is the step,
  ``D = decay_steps``.

Name collisions: MindSpore's ``CosineDecayLR(min_lr, max_lr, decay_steps)`` and
``WarmUpLR(learning_rate, warmup_steps)`` are not OneFlow's ``jobflow.schedule.CosineDecayLR``
/ ``WarmupLR``. Where MindSpore's docstring and code differ (``NaturalExpDecayLR`` uses
``exp(-r * s)``, not ``exp(-r * s / D)``), jobflow follows the code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core import checks
from jobflow._src.core.arguments import checked_arguments
from jobflow._src.schedule.base import Schedule
from jobflow._src.schedule.formulas import cos_mix, f32, frac_pow, int_step, ipow

__all__ = [
    "piecewise_constant_lr",
    "exponential_decay_lr",
    "natural_exp_decay_lr",
    "inverse_decay_lr",
    "cosine_decay_lr",
    "polynomial_decay_lr",
    "warmup_lr",
    "ExponentialDecayLR",
    "NaturalExpDecayLR",
    "InverseDecayLR",
    "CosineDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
]


# ---------------------------------------------------------------------------- dynamic_lr


@checked_arguments
def piecewise_constant_lr(milestone: Sequence[int], learning_rates: Sequence[float]) -> list[float]:
    """``lr[i] = learning_rates[t]`` for ``i`` in ``[milestone[t-1], milestone[t])``
    (``milestone[-1]`` = 0); the list has ``milestone[-1]`` entries."""
    fn = "piecewise_constant_lr"
    milestone = checks.int_list(fn, "milestone", milestone, low=1, increasing="non-strict")
    if not isinstance(learning_rates, (list, tuple)) or len(learning_rates) != len(milestone):
        raise ValueError(
            f"{fn}(learning_rates) needs one rate per milestone; got learning_rates={learning_rates!r} "
            f"for milestone={list(milestone)!r}"
        )
    rates = [checks.number(fn, "learning_rates", r) for r in learning_rates]
    out, last = [], 0
    for m, r in zip(milestone, rates):
        out += [r] * (m - last)
        last = m
    return out


def _epochs(fn, total_step, step_per_epoch, decay_epoch, name="decay_epoch"):
    total_step = checks.integer(fn, "total_step", total_step, low=1)
    step_per_epoch = checks.integer(fn, "step_per_epoch", step_per_epoch, low=1)
    decay_epoch = checks.integer(fn, name, decay_epoch, low=1)
    return [i // step_per_epoch for i in range(total_step)], decay_epoch


def _decay_args(fn, learning_rate, decay_rate, is_stair):
    lr = checks.number(fn, "learning_rate", learning_rate, low=0, low_open=True)
    rate = checks.number(fn, "decay_rate", decay_rate, low=0, low_open=True)
    return lr, rate, checks.flag(fn, "is_stair", is_stair)


@checked_arguments
def exponential_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    """``lr * decay_rate ** (e / D)``; ``** floor(e / D)`` with ``is_stair``."""
    fn = "exponential_decay_lr"
    lr, rate, stair = _decay_args(fn, learning_rate, decay_rate, is_stair)
    epochs, d = _epochs(fn, total_step, step_per_epoch, decay_epoch)
    return [lr * rate ** (e // d if stair else e / d) for e in epochs]


@checked_arguments
def natural_exp_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    """``lr * exp(-decay_rate * e)``; ``exp(-decay_rate * D * floor(e / D))`` with
    ``is_stair`` (``decay_epoch`` is unused otherwise: MindSpore's code)."""
    fn = "natural_exp_decay_lr"
    lr, rate, stair = _decay_args(fn, learning_rate, decay_rate, is_stair)
    epochs, d = _epochs(fn, total_step, step_per_epoch, decay_epoch)
    return [lr * math.e ** (-rate * ((e // d) * d if stair else e)) for e in epochs]


@checked_arguments
def inverse_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    """``lr / (1 + decay_rate * e / D)``; ``lr / (1 + decay_rate * floor(e / D))`` with ``is_stair``."""
    fn = "inverse_decay_lr"
    lr, rate, stair = _decay_args(fn, learning_rate, decay_rate, is_stair)
    epochs, d = _epochs(fn, total_step, step_per_epoch, decay_epoch)
    return [lr / (1 + rate * (e // d)) if stair else lr / (1 + rate * e / d) for e in epochs]


@checked_arguments
def cosine_decay_lr(
    min_lr: float, max_lr: float, total_step: int, step_per_epoch: int, decay_epoch: int
) -> list[float]:
    """``min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * min(e, D) / D))``; ``min_lr < max_lr``."""
    fn = "cosine_decay_lr"
    lo = checks.number(fn, "min_lr", min_lr, low=0)
    hi = checks.number(fn, "max_lr", max_lr, low=0, low_open=True)
    if lo >= hi:
        raise ValueError(f"{fn} needs min_lr < max_lr; got min_lr={min_lr!r}, max_lr={max_lr!r}")
    epochs, d = _epochs(fn, total_step, step_per_epoch, decay_epoch)
    delta = 0.5 * (hi - lo)
    return [lo + delta * (1 + math.cos(math.pi * min(e, d) / d)) for e in epochs]


@checked_arguments
def polynomial_decay_lr(
    learning_rate: float,
    end_learning_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    power: float,
    update_decay_epoch: bool = False,
) -> list[float]:
    """``(lr - end) * (1 - e' / D') ** power + end`` with ``e' = min(e, D)``, ``D' = D``, or
    with ``update_decay_epoch``: ``e' = e``, ``D' = D * max(ceil(e / D), 1)``."""
    fn = "polynomial_decay_lr"
    lr = checks.number(fn, "learning_rate", learning_rate, low=0, low_open=True)
    end = checks.number(fn, "end_learning_rate", end_learning_rate, low=0)
    power = checks.number(fn, "power", power, low=0, low_open=True)
    update = checks.flag(fn, "update_decay_epoch", update_decay_epoch)
    epochs, d = _epochs(fn, total_step, step_per_epoch, decay_epoch)
    out = []
    for e in epochs:
        dd, ee = (d * max(math.ceil(e / d), 1), e) if update else (d, min(e, d))
        out.append((lr - end) * (1 - ee / dd) ** power + end)
    return out


@checked_arguments
def warmup_lr(learning_rate: float, total_step: int, step_per_epoch: int, warmup_epoch: int) -> list[float]:
    """``lr * min(e, W) / W`` (0 at the first step)."""
    fn = "warmup_lr"
    lr = checks.number(fn, "learning_rate", learning_rate, low=0)
    epochs, w = _epochs(fn, total_step, step_per_epoch, warmup_epoch, "warmup_epoch")
    return [lr * min(e, w) / w for e in epochs]


# ---------------------------------------------------------------------------- learning_rate_schedule


class _Decay(Schedule):
    def __init__(
        self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False
    ) -> None:
        cls = type(self).__name__
        self.learning_rate = checks.number(cls, "learning_rate", learning_rate, low=0, low_open=True)
        self.decay_rate = checks.number(cls, "decay_rate", decay_rate, low=0, low_open=True)
        self.decay_steps = checks.integer(cls, "decay_steps", decay_steps, low=1)
        self.is_stair = checks.flag(cls, "is_stair", is_stair)
        self.base_lr = self.learning_rate


class ExponentialDecayLR(_Decay):
    """``lr * decay_rate ** p``, ``p = s / D`` (floored with ``is_stair``)."""

    def _lr(self, step, base):
        n = int_step(step)
        if self.is_stair:
            return base * ipow(self.decay_rate, n // self.decay_steps)
        return base * frac_pow(self.decay_rate, n, self.decay_steps)


class NaturalExpDecayLR(_Decay):
    """``lr * exp(-decay_rate * s)``; ``lr * exp(-decay_rate * D * floor(s / D))`` with
    ``is_stair`` (MindSpore's code; its docstring says ``p = s / D``)."""

    def _lr(self, step, base):
        n = int_step(step)
        p = (n // self.decay_steps) * self.decay_steps if self.is_stair else n
        return base * jnp.exp(np.float32(-self.decay_rate) * f32(p))


class InverseDecayLR(_Decay):
    """``lr / (1 + decay_rate * p)``, ``p = s / D`` (floored with ``is_stair``)."""

    def _lr(self, step, base):
        n = int_step(step)
        p = f32(n // self.decay_steps) if self.is_stair else f32(n) / self.decay_steps
        return base / (1.0 + self.decay_rate * p)


class CosineDecayLR(Schedule):
    """``min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * min(s, D) / D))``."""

    def __init__(self, min_lr: float, max_lr: float, decay_steps: int) -> None:
        cls = "CosineDecayLR"
        self.min_lr = checks.number(cls, "min_lr", min_lr, low=0)
        self.max_lr = checks.number(cls, "max_lr", max_lr, low=0, low_open=True)
        if self.min_lr >= self.max_lr:
            raise ValueError(f"{cls} needs min_lr < max_lr; got min_lr={min_lr!r}, max_lr={max_lr!r}")
        self.decay_steps = checks.integer(cls, "decay_steps", decay_steps, low=1)

    def __call__(self, step: Any) -> jax.Array:
        c = jnp.minimum(int_step(step), self.decay_steps)
        return cos_mix(self.max_lr, self.min_lr, c, self.decay_steps - c)


class PolynomialDecayLR(Schedule):
    """``(lr - end) * (1 - s' / D') ** power + end`` with ``s' = min(s, D)``, ``D' = D``, or
    with ``update_decay_steps``: ``s' = s``, ``D' = D * max(ceil(s / D), 1)``."""

    def __init__(
        self,
        learning_rate: float,
        end_learning_rate: float,
        decay_steps: int,
        power: float,
        update_decay_steps: bool = False,
    ) -> None:
        cls = "PolynomialDecayLR"
        self.learning_rate = checks.number(cls, "learning_rate", learning_rate, low=0, low_open=True)
        self.end_learning_rate = checks.number(cls, "end_learning_rate", end_learning_rate, low=0)
        self.decay_steps = checks.integer(cls, "decay_steps", decay_steps, low=1)
        self.power = checks.number(cls, "power", power, low=0, low_open=True)
        self.update_decay_steps = checks.flag(cls, "update_decay_steps", update_decay_steps)
        self.base_lr = self.learning_rate

    def _lr(self, step, base):
        n, d = int_step(step), self.decay_steps
        if self.update_decay_steps:
            total = d * jnp.maximum((n + d - 1) // d, 1)
        else:
            n, total = jnp.minimum(n, d), d
        frac = f32(total - n) / f32(total)
        return (base - self.end_learning_rate) * frac**self.power + self.end_learning_rate


class WarmUpLR(Schedule):
    """``lr * min(s, W) / W`` (starts at 0); MindSpore's warmup, not OneFlow's ``WarmupLR``."""

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        cls = "WarmUpLR"
        self.learning_rate = checks.number(cls, "learning_rate", learning_rate, low=0)
        self.warmup_steps = checks.integer(cls, "warmup_steps", warmup_steps, low=1)
        self.base_lr = self.learning_rate

    def _lr(self, step, base):
        return base * (f32(jnp.minimum(int_step(step), self.warmup_steps)) / self.warmup_steps)

"""OneFlow 0.7's ``oneflow.optim.lr_scheduler`` names, with OneFlow's semantics.

These are the names at ``jobflow.schedule`` itself. Each takes the base learning rate
where OneFlow and PyTorch take an optimizer (``StepLR(base_lr=0.1, step_size=30)``) and
is a closed form in the integer step ``t`` (the job's counter; the first update uses
``lr(0)``). ``b`` is ``base_lr``. Where PyTorch means something else by the same name
(``PolynomialLR``, ``SequentialLR``, ``CosineAnnealingWarmRestarts``'s extra arguments)
use ``jobflow.schedule.pytorch``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core import checks
from jobflow._src.core.counters import INT32_MAX
from jobflow._src.schedule.base import Schedule, as_schedule
from jobflow._src.schedule.compose import Chain, Join
from jobflow._src.schedule.formulas import cos_mix, f32, int_step, ipow, lin_mix, poly_decay, split_float
from jobflow._src.schedule.plateau import ReduceLROnPlateau as ReduceLROnPlateau
from jobflow._src.schedule.state import StatefulSchedule

__all__ = [
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "StepLR",
    "MultiStepLR",
    "PolynomialLR",
    "CosineDecayLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "LambdaLR",
    "MultiplicativeLR",
    "SequentialLR",
    "WarmupLR",
    "WarmUpLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
]


def _base(cls, value):
    return checks.number(cls, "base_lr", value, low=0)


class ConstantLR(Schedule):
    """``lr(t) = b * factor`` for ``t < total_iters``, else ``b``; ``0 <= factor <= 1``."""

    def __init__(self, base_lr: float, factor: float = 1.0 / 3, total_iters: int = 5) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.factor = checks.number(cls, "factor", factor, low=0, high=1)
        self.total_iters = checks.integer(cls, "total_iters", total_iters, low=0)

    def _lr(self, step, base):
        return base * jnp.where(int_step(step) < self.total_iters, np.float32(self.factor), np.float32(1.0))


class LinearLR(Schedule):
    """``lr(t) = b * (start_factor + (end_factor - start_factor) * min(t, T) / T)``,
    ``T = total_iters``; the rate holds at ``b * end_factor`` from ``t = T`` (OneFlow
    >= 0.9; 0.7/0.8 jumped back to ``b``). Factors in ``[0, 1]``."""

    _start_open = False  # PyTorch: start_factor > 0

    def __init__(
        self, base_lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
    ) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.start_factor = checks.number(
            cls, "start_factor", start_factor, low=0, high=1, low_open=self._start_open
        )
        self.end_factor = checks.number(cls, "end_factor", end_factor, low=0, high=1)
        self.total_iters = checks.integer(cls, "total_iters", total_iters, low=1)

    def _lr(self, step, base):
        c = jnp.minimum(int_step(step), self.total_iters)
        return base * lin_mix(self.start_factor, self.end_factor, c, self.total_iters - c)


class ExponentialLR(Schedule):
    """``lr(t) = b * gamma ** t`` (``gamma ** t`` exact for integer ``t``)."""

    def __init__(self, base_lr: float, gamma: float) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.gamma = checks.number(cls, "gamma", gamma, low=0)

    def _lr(self, step, base):
        return base * ipow(self.gamma, int_step(step))


class StepLR(Schedule):
    """``lr(t) = b * gamma ** floor(t / step_size)``."""

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.step_size = checks.integer(cls, "step_size", step_size, low=1)
        self.gamma = checks.number(cls, "gamma", gamma, low=0)

    def _lr(self, step, base):
        return base * ipow(self.gamma, int_step(step) // self.step_size)


class MultiStepLR(Schedule):
    """``lr(t) = b * gamma ** (number of milestones <= t)``; OneFlow requires strictly
    increasing milestones (PyTorch's version also counts repeated ones)."""

    _order: str | None = "strict"

    def __init__(self, base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.milestones = checks.int_list(cls, "milestones", milestones, increasing=self._order)
        self.gamma = checks.number(cls, "gamma", gamma, low=0)

    def _lr(self, step, base):
        n = int_step(step)
        count = (
            sum((n >= m).astype(jnp.int32) for m in self.milestones) if self.milestones else jnp.zeros_like(n)
        )
        table = np.power(self.gamma, np.arange(len(self.milestones) + 1, dtype=np.float64)).astype(np.float32)
        return base * jnp.asarray(table)[count]


class PolynomialLR(Schedule):
    """``lr(t) = (b - end) * (1 - c / D') ** power + end`` (OneFlow; ``D = decay_batch``).

    ``cycle=False``: ``c = min(t, D)``, ``D' = D``. ``cycle=True``: ``c = max(t, 1)``,
    ``D' = D * ceil(c / D)``. ``end_learning_rate`` is absolute (default 1e-4).
    PyTorch's ``PolynomialLR(total_iters, power)`` (decays to 0) is
    ``jobflow.schedule.pytorch.PolynomialLR``.
    """

    def __init__(
        self,
        base_lr: float,
        decay_batch: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
    ) -> None:
        cls = "PolynomialLR"
        self.base_lr = _base(cls, base_lr)
        self.decay_batch = checks.integer(cls, "decay_batch", decay_batch, low=1)
        self.end_learning_rate = checks.number(cls, "end_learning_rate", end_learning_rate, low=0)
        self.power = checks.number(cls, "power", power, low=0, low_open=True)
        self.cycle = checks.flag(cls, "cycle", cycle)

    def _lr(self, step, base):
        return poly_decay(
            int_step(step), base, self.end_learning_rate, self.decay_batch, self.power, self.cycle
        )


class CosineDecayLR(Schedule):
    """``lr(t) = b * ((1 - alpha) * (1 + cos(pi * min(t, D) / D)) / 2 + alpha)``,
    ``D = decay_steps``: clamped at ``b * alpha`` from ``t = D``. (MindSpore's
    ``CosineDecayLR(min_lr, max_lr, decay_steps)`` is ``jobflow.schedule.mindspore``.)"""

    def __init__(self, base_lr: float, decay_steps: int, alpha: float = 0.0) -> None:
        cls = "CosineDecayLR"
        self.base_lr = _base(cls, base_lr)
        self.decay_steps = checks.integer(cls, "decay_steps", decay_steps, low=1)
        self.alpha = checks.number(cls, "alpha", alpha, low=0, high=1)

    def _lr(self, step, base):
        c = jnp.minimum(int_step(step), self.decay_steps)
        return base * cos_mix(1.0, self.alpha, c, self.decay_steps - c)


class CosineAnnealingLR(Schedule):
    """``lr(t) = eta_min + (b - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    Not clamped: periodic with period ``2 T_max`` (it rises again after ``T_max``), as in
    PyTorch and OneFlow. The position in the period is taken in integers.
    """

    def __init__(self, base_lr: float, T_max: int, eta_min: float = 0.0) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.T_max = checks.integer(cls, "T_max", T_max, low=1)
        self.eta_min = checks.number(cls, "eta_min", eta_min, low=0)

    def _lr(self, step, base):
        t = self.T_max
        r = int_step(step) % (2 * t)
        done = jnp.where(r <= t, r, 2 * t - r)
        return cos_mix(base, self.eta_min, done, t - done)


def restart_cycle(n: jax.Array, t0: int, t_mult: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(k, position in cycle, cycle length)`` of step ``n`` for warm restarts, in int32.

    Cycle ``k`` starts at ``S_k = t0 * (t_mult**k - 1) / (t_mult - 1)`` (``t0 * k`` when
    ``t_mult == 1``) and lasts ``t0 * t_mult**k`` steps. ``k`` is the number of starts
    ``S_j <= n`` for ``j >= 1``, computed by comparison with exact integer starts, never
    with a float logarithm (PyTorch's and OneFlow's ``log`` misfires, e.g. ``t0=1,
    t_mult=3, n=121`` where ``log(243, 3) = 4.999...``).
    """
    if t_mult == 1:
        k = n // t0
        return k, n - k * t0, jnp.full_like(n, t0)
    starts, lengths = [0], [t0]
    while starts[-1] + lengths[-1] <= INT32_MAX:
        starts.append(starts[-1] + lengths[-1])
        lengths.append(lengths[-1] * t_mult)
    pad = 33 - len(starts)  # fixed table shapes (at most 32 cycles fit in int32)
    start_table = np.asarray(starts + [INT32_MAX] * pad, np.int32)
    length_table = np.minimum(np.asarray(lengths + [INT32_MAX] * pad, np.int64), INT32_MAX).astype(np.int32)
    k = jnp.searchsorted(jnp.asarray(start_table), n, side="right").astype(jnp.int32) - 1
    return k, n - jnp.asarray(start_table)[k], jnp.asarray(length_table)[k]


class CosineAnnealingWarmRestarts(Schedule):
    """Cosine annealing restarted every cycle (SGDR), with OneFlow's decay and limit.

    Cycle ``k`` (see :func:`restart_cycle`) has length ``T_k = T_0 * T_mult**k`` and
    position ``s_k``; ``lr = eta_min + (b * decay_rate**k - eta_min) * (1 + cos(pi * s_k /
    T_k)) / 2`` while ``restart_limit == 0`` or ``k < restart_limit``, else ``eta_min``.
    The cycle is found with exact integer arithmetic (no float log), so the rate is
    exactly ``b * decay_rate**k`` at every restart.
    """

    def __init__(
        self,
        base_lr: float,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        decay_rate: float = 1.0,
        restart_limit: int = 0,
    ) -> None:
        cls = "CosineAnnealingWarmRestarts"
        self.base_lr = _base(cls, base_lr)
        self.T_0 = checks.integer(cls, "T_0", T_0, low=1)
        self.T_mult = checks.integer(cls, "T_mult", T_mult, low=1)
        self.eta_min = checks.number(cls, "eta_min", eta_min, low=0)
        self.decay_rate = checks.number(cls, "decay_rate", decay_rate, low=0)
        self.restart_limit = checks.integer(cls, "restart_limit", restart_limit, low=0)

    def _lr(self, step, base):
        k, pos, length = restart_cycle(int_step(step), self.T_0, self.T_mult)
        peak = base * ipow(self.decay_rate, k) if self.decay_rate != 1.0 else base
        lr = cos_mix(peak, self.eta_min, pos, length - pos)
        if self.restart_limit:
            lr = jnp.where(k < self.restart_limit, lr, np.float32(self.eta_min))
        return lr


class LambdaLR(Schedule):
    """``lr(t) = b * lr_lambda(t)``; ``lr_lambda`` gets the int32 step and must use
    ``jnp`` operations (it runs inside the compiled step)."""

    def __init__(self, base_lr: float, lr_lambda: Callable[..., Any]) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.lr_lambda = checks.function(cls, "lr_lambda", lr_lambda)

    def _lr(self, step, base):
        return base * f32(self.lr_lambda(int_step(step)))


class MultiplicativeLR(StatefulSchedule):
    """``lr(t) = b * prod_{s=1..t} lr_lambda(s)`` (PyTorch/OneFlow: ``lr *= lr_lambda(t)``
    at each ``t > 0``).

    The running product is state in the store (``step``, ``factor``), so each train step
    multiplies in one factor; evaluated at any other step it extends or recomputes the
    product from the nearest known point. ``lr_lambda`` gets an int32 step and must use
    ``jnp`` operations.
    """

    def __init__(self, base_lr: float, lr_lambda: Callable[..., Any]) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.lr_lambda = checks.function(cls, "lr_lambda", lr_lambda)

    def init_state(self) -> dict[str, np.ndarray]:
        return {"step": np.zeros((), np.int32), "factor": np.ones((), np.float32)}

    def _lr_state(self, step, base, state):
        n = int_step(step)
        ahead = n >= state["step"]
        start = jnp.where(ahead, state["step"], 0)
        f0 = jnp.where(ahead, state["factor"], np.float32(1.0))
        factor = jax.lax.fori_loop(start + 1, n + 1, lambda s, f: f * f32(self.lr_lambda(s)), f0)
        return base * factor, {"step": n, "factor": factor}


class SequentialLR(Join):
    """``schedulers[i]`` from ``milestones[i-1]`` on; OneFlow semantics: a later schedule
    sees the GLOBAL step unless ``interval_rescaling`` (a bool, or one per milestone) says
    to offset it (``t - milestones[i-1]``). PyTorch's ``SequentialLR`` always offsets:
    ``jobflow.schedule.pytorch.SequentialLR``."""

    _names = ("SequentialLR", "schedulers", "milestones")

    def __init__(
        self, schedulers: Sequence[Schedule], milestones: Sequence[int], interval_rescaling: bool = False
    ) -> None:
        n = len(milestones) if isinstance(milestones, (list, tuple)) else 0
        flags = [interval_rescaling] * n if isinstance(interval_rescaling, bool) else list(interval_rescaling)
        if len(flags) != n or not all(isinstance(f, bool) for f in flags):
            raise ValueError(
                f"SequentialLR(interval_rescaling) must be a bool or one bool per milestone; got "
                f"interval_rescaling={interval_rescaling!r} for milestones={milestones!r}"
            )
        super().__init__(schedulers, milestones, flags)
        self.base_lr = self.schedules[0].base_lr


class WarmupLR(Schedule):
    """OneFlow's ``WarmupLR(scheduler_or_base_lr, warmup_factor=1/3, warmup_iters=5,
    warmup_method="linear", warmup_prefix=False)`` (alias ``WarmUpLR``).

    With ``W = warmup_iters``, for ``t < W``: ``linear``: ``b * (wf + (ef - wf) * t / W)``
    with ``ef = sched(W) / b`` (``ef = 1`` when ``warmup_prefix`` or no scheduler);
    ``constant``: ``b * wf``. From ``t = W``: ``sched(t)``, or ``sched(t - W)`` when
    ``warmup_prefix``. ``b`` is the scheduler's ``base_lr`` (a number gives a constant
    schedule). The ramp meets the schedule without a jump.
    """

    def __init__(
        self,
        scheduler: Schedule,
        warmup_factor: float = 1.0 / 3,
        warmup_iters: int = 5,
        warmup_method: str = "linear",
        warmup_prefix: bool = False,
    ) -> None:
        cls = "WarmupLR"
        self.scheduler = as_schedule(scheduler, f"{cls}(scheduler)")
        if self.scheduler.base_lr is None:
            raise TypeError(
                f"{cls}(scheduler) needs a schedule with a base_lr or a number; got {scheduler!r}"
            )
        self.base_lr = self.scheduler.base_lr
        self.warmup_factor = checks.number(cls, "warmup_factor", warmup_factor, low=0, high=1)
        self.warmup_iters = checks.integer(cls, "warmup_iters", warmup_iters, low=1)
        self.warmup_method = checks.choice(cls, "warmup_method", warmup_method, ("linear", "constant"))
        self.warmup_prefix = checks.flag(cls, "warmup_prefix", warmup_prefix)

    def _lr(self, step, base):
        n, w, wf = int_step(step), self.warmup_iters, self.warmup_factor
        sched = self.scheduler
        if self.warmup_method == "constant":
            warm = base * jnp.full(n.shape, wf, jnp.float32)
        else:
            ef = (
                1.0
                if self.warmup_prefix or not self.base_lr
                else sched.at_base(jnp.full_like(n, w), base) / base
            )
            warm = base * (wf + (ef - wf) * f32(n) / w)
        after = sched.at_base(jnp.maximum(n - w, 0) if self.warmup_prefix else n, base)
        return jnp.where(n < w, warm, after)


WarmUpLR = WarmupLR


class ChainedScheduler(Chain):
    """``lr(t) = f_n(... f_1(b, t) ..., t)``: each schedule takes the previous output as its
    base rate (OneFlow's closed form; for multiplicative schedules it is the product of
    their factors, as PyTorch's ``ChainedScheduler`` computes)."""

    def __init__(self, schedulers: Sequence[Schedule]) -> None:
        super().__init__(schedulers)


class CyclicLR(Schedule):
    """PyTorch's ``CyclicLR`` (triangular, triangular2, exp_range or a custom ``scale_fn``).

    With ``C = step_size_up + step_size_down`` and ``r = t mod C`` (integers):
    ``x = r / up`` while ``r <= up`` else ``(C - r) / down``;
    ``lr = base_lr + (max_lr - base_lr) * x * scale``, where ``scale`` is ``1``
    (triangular), ``0.5 ** (cycle - 1)`` (triangular2, ``cycle = 1 + t // C``),
    ``gamma ** t`` (exp_range) or ``scale_fn(cycle)`` / ``scale_fn(t)`` per ``scale_mode``.
    Momentum cycling (PyTorch's ``cycle_momentum``) is not part of a learning-rate
    schedule and is not offered.
    """

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[..., Any] | None = None,
        scale_mode: str = "cycle",
    ) -> None:
        cls = "CyclicLR"
        self.base_lr = _base(cls, base_lr)
        self.max_lr = checks.number(cls, "max_lr", max_lr, low=0)
        self.step_size_up = checks.integer(cls, "step_size_up", step_size_up, low=1)
        down = self.step_size_up if step_size_down is None else step_size_down
        self.step_size_down = checks.integer(cls, "step_size_down", down, low=1)
        self.gamma = checks.number(cls, "gamma", gamma, low=0)
        if scale_fn is None:
            self.mode = checks.choice(cls, "mode", mode, ("triangular", "triangular2", "exp_range"))
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"
        else:
            self.mode = mode
            self.scale_mode = checks.choice(cls, "scale_mode", scale_mode, ("cycle", "iterations"))
        self.scale_fn = None if scale_fn is None else checks.function(cls, "scale_fn", scale_fn)

    def _lr(self, step, base):
        n = int_step(step)
        up, down = self.step_size_up, self.step_size_down
        r = n % (up + down)
        x = jnp.where(r <= up, f32(r) / up, f32(up + down - r) / down)
        cycle = 1 + n // (up + down)
        if self.scale_fn is not None:
            scale = f32(self.scale_fn(cycle if self.scale_mode == "cycle" else n))
        elif self.mode == "triangular":
            scale = np.float32(1.0)
        elif self.mode == "triangular2":
            scale = ipow(0.5, cycle - 1)
        else:
            scale = ipow(self.gamma, n)
        return base + (self.max_lr - base) * x * scale


class OneCycleLR(Schedule):
    """PyTorch's ``OneCycleLR`` (1cycle policy), learning rate only.

    ``initial = max_lr / div_factor``, ``min = initial / final_div_factor``. Two phases
    (``three_phase=False``): ``initial -> max_lr`` until step ``pct_start * T - 1``, then
    ``max_lr -> min`` until ``T - 1`` (``T = total_steps`` or ``epochs *
    steps_per_epoch``). Three phases: ``initial -> max_lr -> initial`` (ends at ``2 *
    pct_start * T - 2``) then ``initial -> min``. Each phase anneals with ``cos``
    (``end + (start - end) * (1 + cos(pi * pct)) / 2``) or ``linear``. From step ``T - 1``
    on the rate holds at ``min`` (PyTorch raises after step ``T``). Momentum cycling is not offered.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        cls = "OneCycleLR"
        self.max_lr = checks.number(cls, "max_lr", max_lr, low=0)
        if total_steps is not None:
            self.total_steps = checks.integer(cls, "total_steps", total_steps, low=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = checks.integer(cls, "epochs", epochs, low=1) * checks.integer(
                cls, "steps_per_epoch", steps_per_epoch, low=1
            )
        else:
            raise ValueError(
                f"{cls} needs total_steps, or epochs and steps_per_epoch; got total_steps={total_steps!r}, "
                f"epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}"
            )
        self.pct_start = checks.number(cls, "pct_start", pct_start, low=0, high=1)
        self.anneal_strategy = checks.choice(cls, "anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.div_factor = checks.number(cls, "div_factor", div_factor, low=0, low_open=True)
        self.final_div_factor = checks.number(cls, "final_div_factor", final_div_factor, low=0, low_open=True)
        self.three_phase = checks.flag(cls, "three_phase", three_phase)
        self.base_lr = self.max_lr / self.div_factor
        t, p = self.total_steps, self.pct_start
        ends = [p * t - 1, 2 * p * t - 2, t - 1] if self.three_phase else [p * t - 1, t - 1]
        if any(b <= a for a, b in zip([0.0, *ends], ends)):
            raise ValueError(
                f"{cls}: pct_start={pct_start!r} with total_steps={self.total_steps} gives an empty phase "
                f"(phase ends {[round(e, 6) for e in ends]}); use more steps or another pct_start"
            )
        self._ends = ends

    def _lr(self, step, base):
        initial = base
        peak, low = base * self.div_factor, base / self.final_div_factor
        levels = (
            [(initial, peak), (peak, initial), (initial, low)]
            if self.three_phase
            else [(initial, peak), (peak, low)]
        )
        n = jnp.minimum(int_step(step), self.total_steps - 1)
        starts = [0.0, *self._ends[:-1]]
        values = [self._anneal(n, start, end, a, b) for start, end, (a, b) in zip(starts, self._ends, levels)]
        out = values[-1]  # PyTorch: the first phase with t <= its end, else the last one
        for end, value in zip(reversed(self._ends[:-1]), reversed(values[:-1])):
            out = jnp.where(n <= math.floor(end), value, out)
        return out

    def _anneal(self, n, start, end, a, b):
        """From ``a`` at ``start`` to ``b`` at ``end`` (float steps), exact in ``t - start``."""
        s_int, s_frac = split_float(start)
        e_int, e_frac = split_float(end)
        done = f32(n - s_int) - np.float32(s_frac)
        left = f32(e_int - n) + np.float32(e_frac)
        return (cos_mix if self.anneal_strategy == "cos" else lin_mix)(a, b, done, left)

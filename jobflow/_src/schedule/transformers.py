"""HuggingFace transformers' schedules (``transformers.optimization``), as schedule objects.

transformers builds each schedule as ``LambdaLR(optimizer, lambda t: f(t))``, so
``lr(t) = base_lr * f(t)`` with ``t`` the step (0 at the first update, as here). With
``W = num_warmup_steps`` and ``N = num_training_steps``, every warmup (except
``warmup_stable_decay``'s) is ``f(t) = t / max(1, W)`` for ``t < W`` and starts at 0.

``get_scheduler(name, base_lr, num_warmup_steps, num_training_steps, **kwargs)`` takes
the names of ``transformers.SchedulerType``; the named ``get_*`` functions are below.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core import checks
from jobflow._src.core.arguments import checked_arguments
from jobflow._src.schedule.base import Schedule
from jobflow._src.schedule.formulas import f32, half_cos, int_step
from jobflow._src.schedule.plateau import ReduceLROnPlateau

__all__ = [
    "get_scheduler",
    "get_constant_schedule",
    "get_constant_schedule_with_warmup",
    "get_linear_schedule_with_warmup",
    "get_cosine_schedule_with_warmup",
    "get_cosine_with_hard_restarts_schedule_with_warmup",
    "get_polynomial_decay_schedule_with_warmup",
    "get_inverse_sqrt_schedule",
    "get_cosine_with_min_lr_schedule_with_warmup",
    "get_wsd_schedule",
    "get_reduce_on_plateau_schedule",
    "TransformersSchedule",
    "SCHEDULER_NAMES",
]


class TransformersSchedule(Schedule):
    """``lr(t) = base_lr * factor(t)`` for one of transformers' schedules (``name``)."""

    def __init__(self, name: str, base_lr: float, factor: Callable[[Any], Any], **params: Any) -> None:
        self.name = name
        self.base_lr = checks.number(name, "base_lr", base_lr, low=0)
        self.params = params
        self._factor = factor

    def _lr(self, step, base):
        return base * f32(self._factor(int_step(step)))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"transformers.{self.name}(base_lr={self.base_lr!r}{', ' if args else ''}{args})"


def _warm(t, w):
    return f32(t) / max(1, w)


def _cycle_position(k: jax.Array, cycles: float, length: int) -> tuple[jax.Array, int]:
    """``(r, m)`` with ``cycles * k / length = r / m (mod 1)`` for int32 ``k >= 0``.

    When ``cycles`` is a ratio ``a / b`` of small integers (1, 0.5, 1.7, ...) ``r`` and
    ``m = b * length`` are exact integers; otherwise float32 (``m = 1``).
    """
    frac = Fraction(cycles).limit_denominator(1000)
    a, b = frac.numerator, frac.denominator
    m = b * length
    if abs(a / b - cycles) <= 1e-12 * max(1.0, abs(cycles)) and a * m < 2**31:
        return (a * (k % m)) % m, m
    return jnp.mod(f32(k) * np.float32(cycles / length), 1.0), 1


def _cos_factor(t, w, n, num_cycles):
    """``(1 + cos(2 pi c p)) / 2`` with ``p = (t - W) / max(1, N - W)``, unclamped."""
    r, m = _cycle_position(jnp.maximum(t - w, 0), num_cycles, max(1, n - w))
    u = jnp.minimum(r, m - r)  # (1 + cos(2 pi u / m)) / 2, u in [0, m / 2]
    return half_cos(2 * u, m - 2 * u)


def _steps(fn: str, name: str, value: Any, low: int = 0) -> int:
    return checks.integer(fn, name, value, low=low)


@checked_arguments
def get_constant_schedule(base_lr: float) -> TransformersSchedule:
    """``f(t) = 1``."""
    return TransformersSchedule("constant", base_lr, lambda t: jnp.ones(jnp.shape(t), jnp.float32))


@checked_arguments
def get_constant_schedule_with_warmup(base_lr: float, num_warmup_steps: int) -> TransformersSchedule:
    """``f(t) = t / max(1, W)`` for ``t < W``, else 1."""
    w = _steps("constant_with_warmup", "num_warmup_steps", num_warmup_steps)
    return TransformersSchedule(
        "constant_with_warmup", base_lr, lambda t: jnp.where(t < w, _warm(t, w), 1.0), num_warmup_steps=w
    )


@checked_arguments
def get_linear_schedule_with_warmup(
    base_lr: float, num_warmup_steps: int, num_training_steps: int
) -> TransformersSchedule:
    """Warmup, then ``f(t) = max(0, (N - t) / max(1, N - W))``."""
    fn = "linear"
    w, n = (
        _steps(fn, "num_warmup_steps", num_warmup_steps),
        _steps(fn, "num_training_steps", num_training_steps),
    )
    return TransformersSchedule(
        fn,
        base_lr,
        lambda t: jnp.where(t < w, _warm(t, w), jnp.maximum(0.0, f32(n - t) / max(1, n - w))),
        num_warmup_steps=w,
        num_training_steps=n,
    )


@checked_arguments
def get_cosine_schedule_with_warmup(
    base_lr: float, num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5
) -> TransformersSchedule:
    """Warmup, then ``f(t) = max(0, (1 + cos(2 pi c p)) / 2)``, ``p = (t - W) / max(1, N - W)``.

    ``p`` is not clamped: after ``N`` the rate rises again (transformers' behaviour).
    """
    fn = "cosine"
    w, n = (
        _steps(fn, "num_warmup_steps", num_warmup_steps),
        _steps(fn, "num_training_steps", num_training_steps),
    )
    c = checks.number(fn, "num_cycles", num_cycles, low=0)
    return TransformersSchedule(
        fn,
        base_lr,
        lambda t: jnp.where(t < w, _warm(t, w), _cos_factor(t, w, n, c)),
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=c,
    )


@checked_arguments
def get_cosine_with_hard_restarts_schedule_with_warmup(
    base_lr: float, num_warmup_steps: int, num_training_steps: int, num_cycles: float = 1
) -> TransformersSchedule:
    """Warmup, then ``f = 0`` if ``p >= 1`` else ``(1 + cos(pi * ((c p) mod 1))) / 2``."""
    fn = "cosine_with_restarts"
    w, n = (
        _steps(fn, "num_warmup_steps", num_warmup_steps),
        _steps(fn, "num_training_steps", num_training_steps),
    )
    c = checks.number(fn, "num_cycles", num_cycles, low=0)
    length = max(1, n - w)

    def factor(t):
        k = jnp.maximum(t - w, 0)
        r, m = _cycle_position(k, c, length)  # (c p) mod 1 = r / m
        restarts = jnp.where(k >= length, 0.0, half_cos(r, m - r))
        return jnp.where(t < w, _warm(t, w), restarts)

    return TransformersSchedule(fn, base_lr, factor, num_warmup_steps=w, num_training_steps=n, num_cycles=c)


@checked_arguments
def get_polynomial_decay_schedule_with_warmup(
    base_lr: float, num_warmup_steps: int, num_training_steps: int, lr_end: float = 1e-7, power: float = 1.0
) -> TransformersSchedule:
    """Warmup, then ``((base - lr_end) * (1 - (t - W) / (N - W)) ** power + lr_end) / base``;
    ``lr_end / base`` after ``N``. Needs ``base_lr > lr_end``."""
    fn = "polynomial"
    w, n = (
        _steps(fn, "num_warmup_steps", num_warmup_steps),
        _steps(fn, "num_training_steps", num_training_steps),
    )
    if n <= w:
        raise ValueError(f"{fn} needs num_training_steps > num_warmup_steps; got {n} and {w}")
    end = checks.number(fn, "lr_end", lr_end, low=0)
    power = checks.number(fn, "power", power, low=0, low_open=True)
    base = checks.number(fn, "base_lr", base_lr, low=0)
    if not base > end:
        raise ValueError(f"{fn} needs base_lr > lr_end; got base_lr={base_lr!r}, lr_end={lr_end!r}")

    def factor(t):
        remaining = f32(n - jnp.clip(t, w, n)) / (n - w)
        decay = ((base - end) * remaining**power + end) / base
        return jnp.where(t < w, _warm(t, w), decay)

    return TransformersSchedule(
        fn, base, factor, num_warmup_steps=w, num_training_steps=n, lr_end=end, power=power
    )


@checked_arguments
def get_inverse_sqrt_schedule(
    base_lr: float, num_warmup_steps: int, timescale: int | None = None
) -> TransformersSchedule:
    """Warmup, then ``f(t) = 1 / sqrt((t + timescale - W) / timescale)``; ``timescale``
    defaults to ``W`` (10 000 when ``W = 0``)."""
    fn = "inverse_sqrt"
    w = _steps(fn, "num_warmup_steps", num_warmup_steps)
    ts = (w or 10_000) if timescale is None else _steps(fn, "timescale", timescale, low=1)
    return TransformersSchedule(
        fn,
        base_lr,
        lambda t: jnp.where(t < w, _warm(t, w), 1.0 / jnp.sqrt(f32(t + ts - w) / ts)),
        num_warmup_steps=w,
        timescale=ts,
    )


@checked_arguments
def get_cosine_with_min_lr_schedule_with_warmup(
    base_lr: float,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
) -> TransformersSchedule:
    """Warmup, then ``max(0, cos_factor * (1 - r) + r)`` with ``r = min_lr_rate`` or
    ``min_lr / base_lr`` (exactly one of them); the cosine factor is not clamped."""
    fn = "cosine_with_min_lr"
    w, n = (
        _steps(fn, "num_warmup_steps", num_warmup_steps),
        _steps(fn, "num_training_steps", num_training_steps),
    )
    c = checks.number(fn, "num_cycles", num_cycles, low=0)
    base = checks.number(fn, "base_lr", base_lr, low=0, low_open=True)
    if (min_lr is None) == (min_lr_rate is None):
        raise ValueError(
            f"{fn} needs exactly one of min_lr and min_lr_rate; got min_lr={min_lr!r}, "
            f"min_lr_rate={min_lr_rate!r}"
        )
    r = (
        checks.number(fn, "min_lr", min_lr, low=0) / base
        if min_lr is not None
        else checks.number(fn, "min_lr_rate", min_lr_rate, low=0, high=1)
    )
    return TransformersSchedule(
        fn,
        base,
        lambda t: jnp.where(t < w, _warm(t, w), jnp.maximum(0.0, _cos_factor(t, w, n, c) * (1 - r) + r)),
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=c,
        min_lr_rate=r,
    )


_WSD_SHAPES = ("linear", "cosine", "1-sqrt")


def _wsd_lengths(fn, num_warmup_steps, num_decay_steps, num_training_steps, num_stable_steps):
    """``(W, S, D)`` of a warmup-stable-decay schedule, checked; ``S`` from exactly one of
    ``num_stable_steps`` and ``num_training_steps - W - D``."""
    w = _steps(fn, "num_warmup_steps", num_warmup_steps)
    d = _steps(fn, "num_decay_steps", num_decay_steps)
    if (num_training_steps is None) == (num_stable_steps is None):
        raise ValueError(
            f"{fn} needs exactly one of num_training_steps and num_stable_steps; got "
            f"num_training_steps={num_training_steps!r}, num_stable_steps={num_stable_steps!r}"
        )
    s = (
        _steps(fn, "num_stable_steps", num_stable_steps)
        if num_stable_steps is not None
        else _steps(fn, "num_training_steps", num_training_steps) - w - d
    )
    if s < 0:
        raise ValueError(
            f"{fn}: num_training_steps={num_training_steps!r} is shorter than warmup + decay ({w + d})"
        )
    return w, s, d


@checked_arguments
def get_wsd_schedule(
    base_lr: float,
    num_warmup_steps: int,
    num_decay_steps: int,
    num_training_steps: int | None = None,
    num_stable_steps: int | None = None,
    warmup_type: str = "linear",
    decay_type: str = "cosine",
    min_lr_ratio: float = 0.0,
    num_cycles: float = 0.5,
) -> TransformersSchedule:
    """Warmup-stable-decay, with ``m = min_lr_ratio``:

    * ``t < W``: ``p = t / max(1, W)``, ``f = p`` | ``(1 - cos(pi p)) / 2`` | ``1 - sqrt(1 - p)``;
      ``max(0, f (1 - m) + m)`` (starts at ``m``);
    * ``W <= t < W + S``: 1;
    * ``W + S <= t < W + S + D``: ``p = (t - W - S) / max(1, D)``, ``f = 1 - p`` |
      ``(1 + cos(2 pi c p)) / 2`` | ``1 - sqrt(p)``; ``max(0, f (1 - m) + m)``;
    * after that: ``m``.

    ``S = num_stable_steps``, or ``N - W - D`` from ``num_training_steps`` (give exactly one).
    """
    fn = "warmup_stable_decay"
    w, s, d = _wsd_lengths(fn, num_warmup_steps, num_decay_steps, num_training_steps, num_stable_steps)
    wt = checks.choice(fn, "warmup_type", warmup_type, _WSD_SHAPES)
    dt = checks.choice(fn, "decay_type", decay_type, _WSD_SHAPES)
    m = checks.number(fn, "min_lr_ratio", min_lr_ratio, low=0, high=1)
    c = checks.number(fn, "num_cycles", num_cycles, low=0)

    def rising(t):
        left = jnp.maximum(w - t, 0)  # p = t / W, 1 - p = left / W, in integers
        if wt == "linear":
            return f32(t) / max(1, w)
        if wt == "cosine":
            return half_cos(left, t)  # (1 - cos(pi p)) / 2
        return (f32(t) / max(1, w)) / (1.0 + jnp.sqrt(f32(left) / max(1, w)))  # 1 - sqrt(1 - p)

    def falling(t):
        k = jnp.clip(t - w - s, 0, d)
        if dt == "cosine":
            return _cos_factor(k, 0, max(1, d), c)
        rest = f32(d - k) / max(1, d)  # 1 - p
        return rest if dt == "linear" else rest / (1.0 + jnp.sqrt(f32(k) / max(1, d)))  # 1 - sqrt(p)

    def factor(t):
        warm = jnp.maximum(0.0, rising(t) * (1 - m) + m)
        decay = jnp.maximum(0.0, falling(t) * (1 - m) + m)
        return jnp.where(t < w, warm, jnp.where(t < w + s, 1.0, jnp.where(t < w + s + d, decay, m)))

    return TransformersSchedule(
        fn,
        base_lr,
        factor,
        num_warmup_steps=w,
        num_stable_steps=s,
        num_decay_steps=d,
        warmup_type=wt,
        decay_type=dt,
        min_lr_ratio=m,
        num_cycles=c,
    )


@checked_arguments
def get_reduce_on_plateau_schedule(base_lr: float, **kwargs: Any) -> ReduceLROnPlateau:
    """transformers' ``reduce_lr_on_plateau``: PyTorch's ``ReduceLROnPlateau(**kwargs)``."""
    return ReduceLROnPlateau(base_lr, **kwargs)


_BY_NAME: dict[str, Callable[..., Schedule]] = {
    "linear": get_linear_schedule_with_warmup,
    "cosine": get_cosine_schedule_with_warmup,
    "cosine_with_restarts": get_cosine_with_hard_restarts_schedule_with_warmup,
    "polynomial": get_polynomial_decay_schedule_with_warmup,
    "constant": get_constant_schedule,
    "constant_with_warmup": get_constant_schedule_with_warmup,
    "inverse_sqrt": get_inverse_sqrt_schedule,
    "reduce_lr_on_plateau": get_reduce_on_plateau_schedule,
    "cosine_with_min_lr": get_cosine_with_min_lr_schedule_with_warmup,
    "warmup_stable_decay": get_wsd_schedule,
}
SCHEDULER_NAMES = tuple(_BY_NAME)


@checked_arguments
def get_scheduler(
    name: Any,  # a name, or an enum member (transformers' SchedulerType) whose value is one
    base_lr: float,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Schedule:
    """transformers' ``get_scheduler`` with ``base_lr`` in place of the optimizer.

    ``name`` is one of :data:`SCHEDULER_NAMES`. Schedule-specific arguments come in
    ``scheduler_specific_kwargs`` (transformers' way) or as keyword arguments. Like
    transformers, ``constant`` ignores the step counts, ``reduce_lr_on_plateau`` takes
    only its own arguments, and every other name needs ``num_warmup_steps`` (and all
    but ``constant_with_warmup``/``inverse_sqrt`` need ``num_training_steps``).
    """
    name = getattr(name, "value", name)
    checks.choice("get_scheduler", "name", name, SCHEDULER_NAMES)
    kw = {**(scheduler_specific_kwargs or {}), **kwargs}
    fn = _BY_NAME[name]
    if name == "constant":
        return fn(base_lr)
    if name == "reduce_lr_on_plateau":
        return fn(base_lr, **kw)
    if num_warmup_steps is None:
        raise ValueError(f"get_scheduler({name!r}) requires num_warmup_steps")
    if name == "constant_with_warmup":
        return fn(base_lr, num_warmup_steps)
    if name == "inverse_sqrt":
        return fn(base_lr, num_warmup_steps, **kw)
    if name == "warmup_stable_decay":
        return fn(base_lr, num_warmup_steps, num_training_steps=num_training_steps, **kw)
    if num_training_steps is None:
        raise ValueError(f"get_scheduler({name!r}) requires num_training_steps")
    return fn(base_lr, num_warmup_steps, num_training_steps, **kw)

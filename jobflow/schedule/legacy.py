"""OneFlow's legacy schedulers (``flow.optimizer.*Scheduler``), with its kernel formulas.

Source: OneFlow ``learning_rate_schedule_kernel.cpp`` (v0.2-v0.5)::

    lr(t) = warmup(t)   if warmup and t < W
          = decay(t)    otherwise        # the ABSOLUTE step t, not t - W

so at ``t = W`` the rate jumps from the warmup ramp to ``decay(W)`` (OneFlow #3011; kept
for parity). OneFlow computes in double; jobflow in float32.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax.numpy as jnp

from jobflow.schedule.base import Schedule, _f32

__all__ = ["WarmupConf", "warmup", "PiecewiseConstantScheduler", "CosineScheduler"]


def _check_number(cls, name, value, *, positive=False, nonneg=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{cls}({name}) must be a finite number; got {name}={value!r}")
    if positive and not value > 0:
        raise ValueError(f"{cls}({name}) must be > 0; got {name}={value!r}")
    if nonneg and value < 0:
        raise ValueError(f"{cls}({name}) must be >= 0; got {name}={value!r}")
    return value


def _check_steps(cls, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{cls}({name}) must be an int > 0; got {name}={value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class WarmupConf:
    """A warmup phase for a legacy scheduler: ``kind`` is "linear" or "constant"."""

    kind: str
    steps: int
    multiplier: float

    def __call__(self, base_lr, t):
        if self.kind == "constant":
            return base_lr * self.multiplier
        s = self.multiplier
        return base_lr * (s + (1.0 - s) * t / self.steps)


class _Warmup:
    """``flow.optimizer.warmup``: ``linear(steps, start_multiplier)``, ``constant(steps, multiplier)``."""

    @staticmethod
    def linear(steps: int, start_multiplier: float) -> WarmupConf:
        """``lr(t) = base * (s + (1 - s) * t / steps)`` for ``t < steps``; ``0 <= s < 1``."""
        steps = _check_steps("warmup.linear", "steps", steps)
        _check_number("warmup.linear", "start_multiplier", start_multiplier)
        if not 0 <= start_multiplier < 1:
            raise ValueError(f"warmup.linear(start_multiplier) must be in [0, 1); got {start_multiplier!r}")
        return WarmupConf("linear", steps, float(start_multiplier))

    @staticmethod
    def constant(steps: int, multiplier: float) -> WarmupConf:
        """``lr(t) = base * multiplier`` for ``t < steps``; ``0 < multiplier < 1``."""
        steps = _check_steps("warmup.constant", "steps", steps)
        _check_number("warmup.constant", "multiplier", multiplier)
        if not 0 < multiplier < 1:
            raise ValueError(f"warmup.constant(multiplier) must be in (0, 1); got {multiplier!r}")
        return WarmupConf("constant", steps, float(multiplier))


warmup = _Warmup()


class _Legacy(Schedule):
    """Shared warmup handling; subclasses implement ``_decay(t)`` with ``t`` float32."""

    base_lr: float
    warmup: WarmupConf | None

    def _set_warmup(self, warmup):
        if warmup is not None and not isinstance(warmup, WarmupConf):
            raise TypeError(
                f"{type(self).__name__}(warmup) must be flow.optimizer.warmup.linear(...) or "
                f".constant(...); got {warmup!r}"
            )
        self.warmup = warmup

    def _decay(self, t):
        raise NotImplementedError

    def __call__(self, step):
        t = _f32(step)
        lr = self._decay(t)
        if self.warmup is not None:
            lr = jnp.where(t < self.warmup.steps, self.warmup(self.base_lr, t), lr)
        return lr.astype(jnp.float32)


class PiecewiseConstantScheduler(_Legacy):
    """``lr(t) = values[i]`` for the first ``i`` with ``t <= boundaries[i]``; ``values[-1]``
    after the last boundary.

    The boundary is inclusive (OneFlow's kernel; its docstring says ``<``):
    ``PiecewiseConstantScheduler([10], [1.0, 0.1])`` gives 1.0 up to and including step
    10 and 0.1 from step 11. The warmup's base rate is ``values[0]``.
    """

    def __init__(self, boundaries, values, warmup=None):
        cls = "PiecewiseConstantScheduler"
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"{cls} needs len(values) == len(boundaries) + 1; got {len(values)} values "
                f"and {len(boundaries)} boundaries"
            )
        for b in boundaries:
            _check_number(cls, "boundaries", b, nonneg=True)
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{cls}(boundaries) must be strictly increasing; got {boundaries!r}")
        for v in values:
            _check_number(cls, "values", v)
        self.boundaries, self.values_ = tuple(boundaries), tuple(float(v) for v in values)
        self.base_lr = self.values_[0]
        self._set_warmup(warmup)

    def _decay(self, t):
        idx = sum(jnp.asarray(t > b, jnp.int32) for b in self.boundaries) if self.boundaries else 0
        return jnp.asarray(self.values_, jnp.float32)[idx]


class CosineScheduler(_Legacy):
    """``lr(t) = base * ((1 - alpha) * 0.5 * (1 + cos(pi * c / D)) + alpha)``, ``c = min(t, D)``.

    ``D = steps``; for ``t >= D`` the rate stays at ``base * alpha``.
    """

    def __init__(self, base_lr, steps, alpha=0.0, warmup=None):
        cls = "CosineScheduler"
        self.base_lr = float(_check_number(cls, "base_lr", base_lr))
        self.steps = _check_steps(cls, "steps", steps)
        self.alpha = float(_check_number(cls, "alpha", alpha))
        self._set_warmup(warmup)

    def _decay(self, t):
        c = jnp.minimum(t, self.steps)
        cos = 0.5 * (1.0 + jnp.cos(jnp.pi * c / self.steps))
        return self.base_lr * ((1.0 - self.alpha) * cos + self.alpha)

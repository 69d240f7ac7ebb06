"""OneFlow's legacy schedulers (``flow.optimizer.*Scheduler``), with its kernel formulas.

Source: OneFlow ``learning_rate_schedule_kernel.cpp`` (v0.2-v0.5)::

    lr(t) = warmup(t)   if warmup and t < W
          = decay(t)    otherwise        # the ABSOLUTE step t, not t - W

so at ``t = W`` the rate jumps from the warmup ramp to ``decay(W)`` (OneFlow #3011; kept
for parity). OneFlow computes in double; jobflow in float32, with integer powers taken
exactly (``jobflow/schedule/_math.py``). ``D`` below is ``steps``, ``lr`` is ``base_lr``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core import checks
from jobflow._src.core import trace as _trace
from jobflow._src.core.arguments import checked_arguments
from jobflow._src.schedule.base import Schedule
from jobflow._src.schedule.formulas import cos_mix, f32, frac_pow, int_step, ipow, poly_decay

__all__ = [
    "WarmupConf",
    "warmup",
    "PiecewiseConstantScheduler",
    "PiecewiseScalingScheduler",
    "CosineScheduler",
    "PolynomialScheduler",
    "PolynomialSchduler",
    "LinearCosineScheduler",
    "ExponentialScheduler",
    "InverseTimeScheduler",
    "NaturalExpScheduler",
    "CustomScheduler",
]


@checked_arguments
@dataclasses.dataclass(frozen=True)
class WarmupConf:
    """A warmup phase for a legacy scheduler: ``kind`` is "linear" or "constant"."""

    kind: str
    steps: int
    multiplier: float

    def __call__(self, base_lr: Any, t: Any) -> jax.Array:
        if self.kind == "constant":
            return base_lr * self.multiplier
        s = self.multiplier
        return base_lr * (s + (1.0 - s) * t / self.steps)


class _Warmup:
    """``flow.optimizer.warmup``: ``linear(steps, start_multiplier)``, ``constant(steps, multiplier)``."""

    @staticmethod
    @checked_arguments(owner="warmup.linear")
    def linear(steps: int, start_multiplier: float) -> WarmupConf:
        """``lr(t) = base * (s + (1 - s) * t / steps)`` for ``t < steps``; ``0 <= s < 1``."""
        steps = checks.integer("warmup.linear", "steps", steps, low=1)
        s = checks.number(
            "warmup.linear", "start_multiplier", start_multiplier, low=0, high=1, high_open=True
        )
        return WarmupConf("linear", steps, s)

    @staticmethod
    @checked_arguments(owner="warmup.constant")
    def constant(steps: int, multiplier: float) -> WarmupConf:
        """``lr(t) = base * multiplier`` for ``t < steps``; ``0 < multiplier < 1``."""
        steps = checks.integer("warmup.constant", "steps", steps, low=1)
        m = checks.number(
            "warmup.constant", "multiplier", multiplier, low=0, high=1, low_open=True, high_open=True
        )
        return WarmupConf("constant", steps, m)


warmup = _Warmup()


class _Legacy(Schedule):
    """Shared warmup handling; subclasses implement ``_decay(n, base)`` with ``n`` the
    int32 step."""

    warmup: WarmupConf | None

    def _set_warmup(self, warmup):
        if warmup is not None and not isinstance(warmup, WarmupConf):
            raise TypeError(
                f"{type(self).__name__}(warmup) must be flow.optimizer.warmup.linear(...) or "
                f".constant(...); got warmup={warmup!r}"
            )
        self.warmup = warmup

    def _decay(self, n, base):
        raise NotImplementedError

    def _lr(self, step, base):
        n = int_step(step)
        lr = f32(self._decay(n, base))
        if self.warmup is not None:
            lr = jnp.where(n < self.warmup.steps, self.warmup(base, f32(n)), lr)
        return lr.astype(jnp.float32)


def _base(cls, base_lr):
    return checks.number(cls, "base_lr", base_lr)


def _boundaries(cls, boundaries):
    return checks.int_list(cls, "boundaries", boundaries, increasing="strict")


def _segment(n, boundaries):
    """Index ``i`` of the first boundary with ``n <= boundaries[i]`` (inclusive)."""
    return sum((n > b).astype(jnp.int32) for b in boundaries) if boundaries else jnp.zeros_like(n)


class PiecewiseConstantScheduler(_Legacy):
    """``lr(t) = values[i]`` for the first ``i`` with ``t <= boundaries[i]``; ``values[-1]``
    after the last boundary.

    The boundary is inclusive (OneFlow's kernel; its docstring says ``<``):
    ``PiecewiseConstantScheduler([10], [1.0, 0.1])`` gives 1.0 up to and including step
    10 and 0.1 from step 11. The warmup's base rate is ``values[0]``.
    """

    def __init__(
        self, boundaries: Sequence[int], values: Sequence[float], warmup: WarmupConf | None = None
    ) -> None:
        cls = "PiecewiseConstantScheduler"
        self.boundaries = _boundaries(cls, boundaries)
        values = list(values) if not isinstance(values, (str, bytes)) else values
        if not isinstance(values, list) or len(values) != len(self.boundaries) + 1:
            raise ValueError(
                f"{cls} needs len(values) == len(boundaries) + 1; got values={values!r} "
                f"and boundaries={list(self.boundaries)!r}"
            )
        self.values_ = tuple(checks.number(cls, "values", v) for v in values)
        self.base_lr = self.values_[0]
        self._set_warmup(warmup)

    def _decay(self, n, base):
        v = jnp.asarray(self.values_, jnp.float32)[_segment(n, self.boundaries)]
        return v * (base / self.base_lr) if self.base_lr else v


class PiecewiseScalingScheduler(_Legacy):
    """``lr(t) = base_lr * scales[i]`` with ``scales = [1] + scale`` and the same inclusive
    rule as :class:`PiecewiseConstantScheduler` (``scale`` is a number or a list with
    one entry per boundary)."""

    def __init__(
        self,
        base_lr: float,
        boundaries: Sequence[int],
        scale: float | Sequence[float],
        warmup: WarmupConf | None = None,
    ) -> None:
        cls = "PiecewiseScalingScheduler"
        self.base_lr = _base(cls, base_lr)
        self.boundaries = _boundaries(cls, boundaries)
        scales = [scale] * len(self.boundaries) if not isinstance(scale, (list, tuple)) else list(scale)
        if len(scales) != len(self.boundaries):
            raise ValueError(
                f"{cls}(scale) needs one entry per boundary; got scale={scale!r} for "
                f"boundaries={list(self.boundaries)!r}"
            )
        self.scale = tuple(checks.number(cls, "scale", s) for s in scales)
        self._set_warmup(warmup)

    def _decay(self, n, base):
        return base * jnp.asarray((1.0, *self.scale), jnp.float32)[_segment(n, self.boundaries)]


class CosineScheduler(_Legacy):
    """``lr(t) = base * ((1 - alpha) * 0.5 * (1 + cos(pi * c / D)) + alpha)``, ``c = min(t, D)``.

    ``D = steps``; for ``t >= D`` the rate stays at ``base * alpha``.
    """

    def __init__(
        self, base_lr: float, steps: int, alpha: float = 0.0, warmup: WarmupConf | None = None
    ) -> None:
        cls = "CosineScheduler"
        self.base_lr = _base(cls, base_lr)
        self.steps = checks.integer(cls, "steps", steps, low=1)
        self.alpha = checks.number(cls, "alpha", alpha)
        self._set_warmup(warmup)

    def _decay(self, n, base):
        c = jnp.minimum(n, self.steps)
        return base * cos_mix(1.0, self.alpha, c, self.steps - c)


class PolynomialScheduler(_Legacy):
    """``lr(t) = (base - end) * (1 - c / D') ** power + end``.

    ``cycle=False``: ``c = min(t, D)``, ``D' = D`` (the rate holds at ``end`` after ``D``).
    ``cycle=True``: ``c = max(t, 1)``, ``D' = D * ceil(c / D)`` (restarts at each multiple
    of ``D``). ``end_learning_rate`` is absolute (default 1e-4).
    """

    def __init__(
        self,
        base_lr: float,
        steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        warmup: WarmupConf | None = None,
    ) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.steps = checks.integer(cls, "steps", steps, low=1)
        self.end_learning_rate = checks.number(cls, "end_learning_rate", end_learning_rate)
        self.power = checks.number(cls, "power", power, low=0, low_open=True)
        self.cycle = checks.flag(cls, "cycle", cycle)
        self._set_warmup(warmup)

    def _decay(self, n, base):
        return poly_decay(n, base, self.end_learning_rate, self.steps, self.power, self.cycle)


PolynomialSchduler = PolynomialScheduler  # OneFlow's misspelled alias (used by its BERT scripts)


class LinearCosineScheduler(_Legacy):
    """``lr(t) = base * ((alpha + (D - c) / D) * 0.5 * (1 + cos(2 pi num_periods c / D)) + beta)``
    with ``c = min(t, D)``."""

    def __init__(
        self,
        base_lr: float,
        steps: int,
        num_periods: float = 0.5,
        alpha: float = 0.0,
        beta: float = 0.001,
        warmup: WarmupConf | None = None,
    ) -> None:
        cls = "LinearCosineScheduler"
        self.base_lr = _base(cls, base_lr)
        self.steps = checks.integer(cls, "steps", steps, low=1)
        self.num_periods = checks.number(cls, "num_periods", num_periods)
        self.alpha = checks.number(cls, "alpha", alpha)
        self.beta = checks.number(cls, "beta", beta)
        self._set_warmup(warmup)

    def _decay(self, n, base):
        d = self.steps
        c = jnp.minimum(n, d)
        linear = self.alpha + f32(d - c) / d
        cosine = 0.5 * (1.0 + jnp.cos(np.float32(2 * np.pi * self.num_periods / d) * f32(c)))
        return base * (linear * cosine + self.beta)


class _DecayRate(_Legacy):
    def __init__(
        self,
        base_lr: float,
        steps: int,
        decay_rate: float,
        staircase: bool = False,
        warmup: WarmupConf | None = None,
    ) -> None:
        cls = type(self).__name__
        self.base_lr = _base(cls, base_lr)
        self.steps = checks.integer(cls, "steps", steps, low=1)
        self.decay_rate = checks.number(cls, "decay_rate", decay_rate, low=0, low_open=self._positive_rate)
        self.staircase = checks.flag(cls, "staircase", staircase)
        self._set_warmup(warmup)

    _positive_rate = False

    def _p(self, n):
        """``t / D`` (floored when ``staircase``) as float32."""
        return f32(n // self.steps) if self.staircase else f32(n) / self.steps


class ExponentialScheduler(_DecayRate):
    """``lr(t) = base * decay_rate ** p`` with ``p = t / D`` (floored if ``staircase``);
    no clamping."""

    _positive_rate = True

    def _decay(self, n, base):
        p = n // self.steps if self.staircase else n
        return base * (
            ipow(self.decay_rate, p) if self.staircase else frac_pow(self.decay_rate, p, self.steps)
        )


class InverseTimeScheduler(_DecayRate):
    """``lr(t) = base / (1 + decay_rate * p)``, ``p = t / D`` (only ``p`` is floored when
    ``staircase``, not ``decay_rate * p`` as OneFlow's docstring says)."""

    def _decay(self, n, base):
        return base / (1.0 + self.decay_rate * self._p(n))


class NaturalExpScheduler(_DecayRate):
    """``lr(t) = base * exp(-decay_rate * p)``, ``p = t / D`` (floored if ``staircase``)."""

    def _decay(self, n, base):
        return base * jnp.exp(-self.decay_rate * self._p(n))


class CustomScheduler(Schedule):
    """An lr computed in the job body (OneFlow's ``CustomScheduler(lbn)``).

    Build it inside the train job from a traced scalar (or a size-1 array), and give it
    to the job's optimizer; the update of the same step uses that value::

        lr = 0.1 * flow.math.rsqrt(1.0 + flow.math.reduce_mean(loss))
        flow.optimizer.SGD(flow.optimizer.CustomScheduler(lr), momentum=0).minimize(loss)

    The value reaches the optimizer through the trace context's feeds under
    :attr:`feed_key` (gradients do not flow into it); the update evaluates a bound copy
    of the schedule holding it (``schedule/state.py``). No warmup is allowed, as in
    OneFlow.
    """

    def __init__(self, lbn: jax.Array) -> None:
        ctx = _trace.current()
        if ctx is None:
            raise RuntimeError(
                "CustomScheduler(lbn) takes a learning rate computed in the job body; build it "
                "inside the @flow.global_function(type='train') body"
            )
        if not isinstance(lbn, jax.Array) or lbn.size != 1 or not jnp.issubdtype(lbn.dtype, jnp.floating):
            raise TypeError(
                f"CustomScheduler(lbn) needs a floating-point scalar (or size-1 array) computed in the "
                f"job; got lbn={lbn!r}"
            )
        self._key = ctx.unique_name("CustomScheduler")  # deterministic: the same in every trace
        ctx.feeds[self._key] = jax.lax.stop_gradient(jnp.reshape(lbn, ()).astype(jnp.float32))

    @property
    def feed_key(self) -> str:  # type: ignore[override]  # a property overrides the plain attribute on purpose
        return self._key

    def __call__(self, step: Any) -> jax.Array:
        value = self.__dict__.get("_fed")  # set on the bound copy a train step evaluates
        if value is None:
            raise RuntimeError(
                "CustomScheduler's learning rate is computed in its job's body; it only has a "
                "value inside that job's train step"
            )
        return jnp.broadcast_to(value, jnp.shape(step))

    def __repr__(self):
        return f"CustomScheduler({self._key})"

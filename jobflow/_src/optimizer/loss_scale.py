"""Loss-scale policies: OneFlow's ``flow.optimizer.loss_scale.*`` and MindSpore's managers.

A policy is set on the job's top-level optimizer (``loss_scale_policy=``; a
``CombinedOptimizer`` holds the one policy of its job). Each train step then

1. reads the scale ``S`` in use (a constant, or a value in the session store),
2. differentiates ``S * sum_k mean(loss_k)`` and divides every gradient by ``S``,
3. checks the step: it is *non-finite* when any gradient element or the loss is inf/nan,
4. for a policy that skips (``skips_nonfinite``): applies the update only on a finite
   step; otherwise no variable, slot, schedule state, batch-norm statistic or step
   counter changes (see ``jobflow/_step_guard.py``),
5. computes the policy's next state from ``finite`` (the scale the *next* step uses).

Policies:

* :class:`StaticLossScalePolicy` (``static_loss_scale(f)``): OneFlow's static scale, the
  same as ``loss_scale_factor=f``; never skips.
* :class:`FixedLossScaleManager` (MindSpore): a static scale ``>= 1`` that skips
  non-finite steps when ``drop_overflow_update`` (the default).
* :class:`DynamicLossScalePolicy` (``dynamic_loss_scale(...)``): OneFlow's rule.
* :class:`DynamicLossScaleManager` (MindSpore): MindSpore's ``DynamicLossScaleUpdateCell``.

Both dynamic rules take ``max_loss_scale`` (default: the largest float32, OneFlow's own
clamp), so the scale can never become inf. The state is float32 / int32 scalars named
``System-Train-DynamicLossScale-<job>-<Field>`` in the store, so checkpoints save it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core.arguments import CheckedArguments
from jobflow._src.core.counters import INT32_MAX

__all__ = [
    "LossScalePolicy",
    "StaticLossScalePolicy",
    "DynamicLossScalePolicy",
    "static_loss_scale",
    "dynamic_loss_scale",
    "FixedLossScaleManager",
    "DynamicLossScaleManager",
    "FLT_MAX",
]

FLT_MAX = float(np.finfo(np.float32).max)


def _number(owner: str, arg: str, value, *, low: float, low_ok: bool = True, high: float = FLT_MAX) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    x = cast(float, value)  # a Real: typeshed's numbers.Real lacks __ge__ / __gt__
    ok = ok and (x >= low if low_ok else x > low) and x <= high
    if not ok:
        bound = f">= {low:g}" if low_ok else f"> {low:g}"
        raise ValueError(
            f"{owner}({arg}) must be a finite number {bound} and <= {high:g}; got {arg}={value!r}"
        )
    return float(value)


def _count(owner: str, arg: str, value) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < 1
        or int(value) > INT32_MAX
    ):
        raise ValueError(f"{owner}({arg}) must be an int >= 1; got {arg}={value!r}")
    return int(value)


class LossScalePolicy(CheckedArguments):
    """A loss-scale rule evaluated inside the compiled train step.

    Subclasses implement ``initial_state() -> {field: np scalar}`` (empty for a static
    scale), ``scale(state) -> S`` (a float32 scalar) and ``next_state(state, finite)``.
    ``skips_nonfinite`` says whether a non-finite step is dropped (True) or applied.
    """

    skips_nonfinite: bool = False
    _repr_args: tuple[str, ...] = ()

    def initial_state(self) -> dict[str, np.ndarray]:
        return {}

    def scale(self, state: dict) -> jax.Array:
        raise NotImplementedError

    def next_state(self, state: dict, finite: jax.Array) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._repr_args)
        return f"{type(self).__name__}({args})"


class StaticLossScalePolicy(LossScalePolicy):
    """OneFlow's ``flow.optimizer.loss_scale.static_loss_scale(loss_scale_factor)``.

    The same as ``loss_scale_factor=S`` on the optimizer: gradients of ``S * loss``,
    divided by ``S``. Non-finite steps are applied as they are (OneFlow checks nothing
    for a static scale; use ``FixedLossScaleManager`` or
    ``function_config.skip_nonfinite_steps`` to skip them).
    """

    _repr_args: tuple[str, ...] = ("loss_scale_factor",)

    def __init__(self, loss_scale_factor: float) -> None:
        self.loss_scale_factor = _number(
            "static_loss_scale", "loss_scale_factor", loss_scale_factor, low=0.0, low_ok=False
        )

    def scale(self, state: dict[str, Any]) -> jax.Array:
        return jnp.float32(self.loss_scale_factor)


static_loss_scale = StaticLossScalePolicy


class FixedLossScaleManager(StaticLossScalePolicy):
    """MindSpore's ``FixedLossScaleManager(loss_scale=128.0, drop_overflow_update=True)``.

    A static scale ``S >= 1``. With ``drop_overflow_update`` a non-finite step is skipped
    (MindSpore's ``FixedLossScaleUpdateCell``: the optimizer is not called and
    ``global_step`` does not advance); without it the update is applied. jobflow always
    divides the gradients by ``S`` itself, so the optimizer needs no ``loss_scale`` of its
    own (MindSpore asks for one when ``drop_overflow_update=False``).
    """

    _repr_args = ("loss_scale", "drop_overflow_update")

    def __init__(self, loss_scale: float = 128.0, drop_overflow_update: bool = True) -> None:
        if not isinstance(drop_overflow_update, (bool, np.bool_)):
            raise TypeError(
                f"FixedLossScaleManager(drop_overflow_update) must be True or False; "
                f"got {drop_overflow_update!r}"
            )
        self.loss_scale_factor = _number("FixedLossScaleManager", "loss_scale", loss_scale, low=1.0)
        self.drop_overflow_update = bool(drop_overflow_update)

    @property
    def skips_nonfinite(self) -> bool:  # type: ignore[override]  # a property overrides the plain attribute on purpose
        return self.drop_overflow_update

    @property
    def loss_scale(self) -> float:
        return self.loss_scale_factor

    def get_loss_scale(self) -> float:
        """The fixed scale (MindSpore's accessor)."""
        return self.loss_scale_factor

    def get_drop_overflow_update(self) -> bool:
        """Whether a non-finite step is skipped (MindSpore's accessor)."""
        return self.drop_overflow_update


class DynamicLossScalePolicy(LossScalePolicy):
    """OneFlow's ``flow.optimizer.loss_scale.dynamic_loss_scale(initial_loss_scale=2**30,
    increment_period=2000, multiplier=2.0)`` (PR #3886), plus ``max_loss_scale``.

    State: ``LossScale`` (float32, starts at ``initial_loss_scale``) and
    ``GoodStepCounter`` (int32, starts at 0). The step uses the scale ``S`` read before
    its update; then, with ``finite`` the result of the step's check::

        finite:     cnt += 1; if cnt >= increment_period: S = min(S * multiplier, max_loss_scale); cnt = 0
        not finite: cnt = 0;  S = max(S / multiplier, 1)        # and the update is skipped

    So the scale grows after every ``increment_period`` consecutive finite steps and
    halves (for multiplier 2) on every non-finite one, never below 1. OneFlow computes
    the new scale in double and stores float32; jobflow computes in float32 (identical
    for power-of-two multipliers).
    """

    skips_nonfinite = True
    _repr_args = ("initial_loss_scale", "increment_period", "multiplier", "max_loss_scale")

    def __init__(
        self,
        initial_loss_scale: float = 2.0**30,
        increment_period: int = 2000,
        multiplier: float = 2.0,
        *,
        max_loss_scale: float = FLT_MAX,
    ) -> None:
        owner = "dynamic_loss_scale"
        self.max_loss_scale = _number(owner, "max_loss_scale", max_loss_scale, low=1.0)
        self.initial_loss_scale = _number(
            owner, "initial_loss_scale", initial_loss_scale, low=1.0, high=self.max_loss_scale
        )
        self.increment_period = _count(owner, "increment_period", increment_period)
        self.multiplier = _number(owner, "multiplier", multiplier, low=1.0, low_ok=False)

    def initial_state(self) -> dict[str, Any]:
        return {"LossScale": np.float32(self.initial_loss_scale), "GoodStepCounter": np.int32(0)}

    def scale(self, state: dict[str, Any]) -> jax.Array:
        return state["LossScale"]

    def next_state(self, state: dict[str, Any], finite: jax.Array) -> dict[str, Any]:
        s, cnt = state["LossScale"], state["GoodStepCounter"]
        mult = jnp.float32(self.multiplier)
        good = cnt + 1
        grow = good >= self.increment_period
        grown = jnp.where(grow, jnp.minimum(s * mult, jnp.float32(self.max_loss_scale)), s)
        backed_off = jnp.maximum(s / mult, jnp.float32(1.0))
        return {
            "LossScale": jnp.where(finite, grown, backed_off),
            "GoodStepCounter": jnp.where(finite & ~grow, good, jnp.zeros_like(cnt)),
        }


dynamic_loss_scale = DynamicLossScalePolicy


class DynamicLossScaleManager(LossScalePolicy):
    """MindSpore's ``DynamicLossScaleManager(init_loss_scale=2**24, scale_factor=2,
    scale_window=2000)``, with the rule of its ``DynamicLossScaleUpdateCell``, plus
    ``max_loss_scale``.

    State: ``LossScale`` (float32), ``CurrentIteratorStep`` (int32, starts at 1) and
    ``LastOverflowIteratorStep`` (int32, starts at 0). Per step, with ``overflow = not
    finite`` and ``f = scale_factor``, ``W = scale_window``::

        S_o = max(S * (1/f), 1) if overflow else S
        should_inc = (cur - last) >= W
        if overflow or should_inc: last = cur
        S = min(S_o * f, max_loss_scale) if should_inc and not overflow else S_o
        cur += 1                                    # the update is skipped on overflow

    Net effect: ``x f`` after every ``W`` consecutive finite steps (the first time at
    step ``W``), ``/ f`` on each non-finite step, never below 1. (MindSpore's host-side
    ``update_loss_scale`` gives the same sequence; it also raises after 1000 consecutive
    overflows, which jobflow does with ``function_config.max_consecutive_skipped_steps``.)
    """

    skips_nonfinite = True
    _repr_args = ("init_loss_scale", "scale_factor", "scale_window", "max_loss_scale")

    def __init__(
        self,
        init_loss_scale: float = 2.0**24,
        scale_factor: float = 2,
        scale_window: int = 2000,
        *,
        max_loss_scale: float = FLT_MAX,
    ) -> None:
        owner = "DynamicLossScaleManager"
        self.max_loss_scale = _number(owner, "max_loss_scale", max_loss_scale, low=1.0)
        self.init_loss_scale = _number(
            owner, "init_loss_scale", init_loss_scale, low=1.0, high=self.max_loss_scale
        )
        self.scale_factor = _number(owner, "scale_factor", scale_factor, low=1.0, low_ok=False)
        self.scale_window = _count(owner, "scale_window", scale_window)

    def get_drop_overflow_update(self) -> bool:
        """Always True: an overflowing step is skipped (MindSpore's accessor)."""
        return True

    def initial_state(self) -> dict[str, Any]:
        return {
            "LossScale": np.float32(self.init_loss_scale),
            "CurrentIteratorStep": np.int32(1),
            "LastOverflowIteratorStep": np.int32(0),
        }

    def scale(self, state: dict[str, Any]) -> jax.Array:
        return state["LossScale"]

    def next_state(self, state: dict[str, Any], finite: jax.Array) -> dict[str, Any]:
        s, cur, last = state["LossScale"], state["CurrentIteratorStep"], state["LastOverflowIteratorStep"]
        f = jnp.float32(self.scale_factor)
        overflow = ~finite
        s_o = jnp.where(overflow, jnp.maximum(s * (jnp.float32(1.0) / f), jnp.float32(1.0)), s)
        should_inc = (cur - last) >= self.scale_window  # int32 differences stay right after a wrap
        grown = jnp.minimum(s_o * f, jnp.float32(self.max_loss_scale))
        return {
            "LossScale": jnp.where(should_inc & finite, grown, s_o),
            "CurrentIteratorStep": cur + 1,
            "LastOverflowIteratorStep": jnp.where(overflow | should_inc, cur, last),
        }


def as_policy(loss_scale_factor, loss_scale_policy, owner: str) -> LossScalePolicy | None:
    """The policy an optimizer's ``loss_scale_factor`` / ``loss_scale_policy`` describe."""
    if loss_scale_policy is not None and not isinstance(loss_scale_policy, LossScalePolicy):
        raise TypeError(
            f"{owner}(loss_scale_policy) must be flow.optimizer.loss_scale.static_loss_scale(...), "
            f"dynamic_loss_scale(...), FixedLossScaleManager(...) or DynamicLossScaleManager(...); "
            f"got {loss_scale_policy!r}"
        )
    if loss_scale_factor is not None:
        return StaticLossScalePolicy(loss_scale_factor)
    return loss_scale_policy

"""Adafactor as HuggingFace transformers' ``transformers.Adafactor``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jobflow._src.core import checks, counters
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy
from jobflow._src.schedule.base import Schedule

__all__ = ["Adafactor", "RelativeStep"]


class RelativeStep(Schedule):
    """Adafactor's relative step size ``rho(step) = min(c, 1 / sqrt(t))``, ``t = step + 1``,
    with ``c = 1e-6 * t`` when ``warmup_init`` else ``1e-2``."""

    def __init__(self, warmup_init: bool = False):
        self.warmup_init = warmup_init

    def __call__(self, step):
        t = counters.count_from_one(step)
        first = 1e-6 * t if self.warmup_init else jnp.full_like(t, 1e-2)
        return jnp.minimum(first, 1.0 / jnp.sqrt(t))


class AdafactorState(NamedTuple):
    exp_avg_sq_row: dict  # factored variables (ndim >= 2): shape[:-1]
    exp_avg_sq_col: dict  # factored variables: shape[:-2] + shape[-1:]
    exp_avg_sq: dict  # other variables: the variable's shape
    exp_avg: dict  # all variables when beta1 is set


def _rms(x):
    return jnp.sqrt(jnp.mean(jnp.square(x)))


def adafactor_rule(
    lr,
    step,
    eps1: float,
    eps2: float,
    clip_threshold: float,
    decay_rate: float,
    beta1,
    decay,
    scale_parameter: bool,
):
    """Adafactor's update as an optax transformation (``decay`` is ``name -> weight decay``)."""
    t = counters.count_from_one(step)
    beta2t = 1.0 - jnp.power(t, decay_rate)

    def init(params):
        factored = {n: p for n, p in params.items() if p.ndim >= 2}
        return AdafactorState(
            {n: jnp.zeros(p.shape[:-1], p.dtype) for n, p in factored.items()},
            {n: jnp.zeros(p.shape[:-2] + p.shape[-1:], p.dtype) for n, p in factored.items()},
            {n: jnp.zeros_like(p) for n, p in params.items() if p.ndim < 2},
            {n: jnp.zeros_like(p) for n, p in params.items()} if beta1 is not None else {},
        )

    def update(grads, state, params=None):
        new = AdafactorState({}, {}, {}, {})
        deltas = {}
        for n, g in grads.items():
            w = params[n]
            alpha = jnp.maximum(eps2, _rms(w)) * lr if scale_parameter else lr
            sq = jnp.square(g) + eps1
            if g.ndim >= 2:
                row = beta2t * state.exp_avg_sq_row[n] + (1 - beta2t) * jnp.mean(sq, axis=-1)
                col = beta2t * state.exp_avg_sq_col[n] + (1 - beta2t) * jnp.mean(sq, axis=-2)
                new.exp_avg_sq_row[n], new.exp_avg_sq_col[n] = row.astype(w.dtype), col.astype(w.dtype)
                r = jnp.expand_dims(jnp.reciprocal(jnp.sqrt(row / jnp.mean(row, axis=-1, keepdims=True))), -1)
                c = jnp.expand_dims(jnp.reciprocal(jnp.sqrt(col)), -2)
                u = r * c * g
            else:
                v = beta2t * state.exp_avg_sq[n] + (1 - beta2t) * sq
                new.exp_avg_sq[n] = v.astype(w.dtype)
                u = jnp.reciprocal(jnp.sqrt(v)) * g
            u = u / jnp.maximum(1.0, _rms(u) / clip_threshold) * alpha
            if beta1 is not None:
                u = beta1 * state.exp_avg[n] + (1 - beta1) * u
                new.exp_avg[n] = u.astype(w.dtype)
            rate = decay(n)
            deltas[n] = (-u - rate * alpha * w if rate else -u).astype(w.dtype)
        return deltas, new

    return optax.GradientTransformation(init, update)


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern 2018) exactly as ``transformers.Adafactor``.

    With ``t = step + 1``, ``RMS(x) = ||x|| / sqrt(numel)``, ``rho = lr_scheduler(step)``
    (by default the relative step ``min(1e-2, 1/sqrt(t))``, or ``min(1e-6 t, 1/sqrt(t))``
    with ``warmup_init``; ``job.last_info["lr"]`` reports it)::

        alpha = max(eps[1], RMS(w)) * rho   if scale_parameter   else rho
        beta2t = 1 - t^decay_rate;  G = g^2 + eps[0]
        ndim >= 2 (factored over the last two axes; slots <var>-exp_avg_sq_row/_col):
            R <- beta2t R + (1 - beta2t) mean_{-1}(G);  C <- beta2t C + (1 - beta2t) mean_{-2}(G)
            u = g * rsqrt(R / mean_{-1}(R))[..., None] * rsqrt(C)[..., None, :]
        else (slot <var>-exp_avg_sq):
            V <- beta2t V + (1 - beta2t) G;  u = g * rsqrt(V)
        u <- alpha * u / max(1, RMS(u) / clip_threshold)
        beta1 set:  m <- beta1 m + (1 - beta1) u;  u = m            (slot <var>-exp_avg)
        w <- w - weight_decay * alpha * w - u

    ``optax.adafactor`` differs: it factors only when both of the two largest axes are
    >= 128 and does not scale the weight decay by the lr.

    Args:
      lr_scheduler: None with ``relative_step=True`` (the default); an external lr
        (number, schedule, ...) needs ``relative_step=False``.
      eps, clip_threshold, decay_rate, beta1, weight_decay, scale_parameter,
      relative_step, warmup_init: transformers' arguments and defaults.
      weight_decay_includes, weight_decay_excludes, loss_scale_factor, grad_clipping,
        train_step_lbn, loss_scale_policy, variables: (keyword only) see
        :class:`~jobflow.optimizer.Optimizer`.
    """

    _weight_decay_kind = "decoupled"

    def __init__(
        self,
        lr_scheduler: LearningRate | None = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
        *,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
    ) -> None:
        owner = type(self).__name__
        relative_step = checks.flag(owner, "relative_step", relative_step)
        warmup_init = checks.flag(owner, "warmup_init", warmup_init)
        if lr_scheduler is not None and relative_step:
            raise ValueError(
                f"{owner}: an external lr_scheduler needs relative_step=False; got "
                f"lr_scheduler={lr_scheduler!r} with relative_step=True (transformers' rule)"
            )
        if lr_scheduler is None and not relative_step:
            raise ValueError(f"{owner}(relative_step=False) needs an lr_scheduler")
        if warmup_init and not relative_step:
            raise ValueError(f"{owner}(warmup_init=True) needs relative_step=True")
        super().__init__(
            RelativeStep(warmup_init) if relative_step else lr_scheduler,
            loss_scale_factor,
            grad_clipping,
            train_step_lbn,
            loss_scale_policy,
            variables,
            weight_decay=weight_decay,
            weight_decay_includes=weight_decay_includes,
            weight_decay_excludes=weight_decay_excludes,
        )
        if not (isinstance(eps, (tuple, list)) and len(eps) == 2):
            raise ValueError(f"{owner}(eps) must be a pair (eps1, eps2); got eps={eps!r}")
        self.eps = (
            checks.number(owner, "eps[0]", eps[0], low=0),
            checks.number(owner, "eps[1]", eps[1], low=0),
        )
        self.clip_threshold = checks.number(owner, "clip_threshold", clip_threshold, low=0, low_open=True)
        self.decay_rate = checks.number(owner, "decay_rate", decay_rate, high=0, high_open=True)
        self.beta1 = None if beta1 is None else checks.fraction(owner, "beta1", beta1)
        self.scale_parameter = checks.flag(owner, "scale_parameter", scale_parameter)
        self.relative_step, self.warmup_init = relative_step, warmup_init

    def _make_tx(self, lr, step):
        return adafactor_rule(
            lr,
            step,
            self.eps[0],
            self.eps[1],
            self.clip_threshold,
            self.decay_rate,
            self.beta1,
            self.weight_decay_for,
            self.scale_parameter,
        )

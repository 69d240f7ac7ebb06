"""LARS with OneFlow's trust ratio and momentum rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection, l2_norm
from jobflow._src.optimizer.loss_scale import LossScalePolicy
from jobflow._src.optimizer.sgd import SGDMomentumState

__all__ = ["LARS", "lars_rule"]


def lars_rule(
    lr, momentum_beta: float, epsilon: float, lars_coefficient: float, decay
) -> optax.GradientTransformation:
    """OneFlow's LARS kernel (per variable; ``decay`` is ``name -> weight decay``)."""

    def init(params):
        return SGDMomentumState({n: jnp.zeros_like(p) for n, p in params.items()})

    def update(grads, state, params=None):
        bufs, deltas = {}, {}
        for n, g in grads.items():
            w, wd = params[n], decay(n)
            w_norm, g_norm = l2_norm(w), l2_norm(g)
            trust = jnp.where(
                (w_norm > 0) & (g_norm > 0), lars_coefficient * w_norm / (epsilon + g_norm + wd * w_norm), 1.0
            )
            local_lr = lr * trust
            buf = momentum_beta * state.momentum[n] - local_lr * g
            delta = buf - local_lr * wd * w if wd else buf
            bufs[n], deltas[n] = buf.astype(w.dtype), delta.astype(w.dtype)
        return deltas, SGDMomentumState(bufs)

    return optax.GradientTransformation(init, update)


class LARS(Optimizer):
    """Layer-wise adaptive rate scaling (OneFlow's ``flow.optimizer.LARS``, v0.4+ kernel).

    Per variable, with ``||.||`` its L2 norm and ``wd`` its weight decay (0 when filtered
    out by the include/exclude rules)::

        trust = lars_coefficient * ||w|| / (epsilon + ||g|| + wd * ||w||)   if ||w|| > 0 and ||g|| > 0
              = 1                                                           otherwise
        local_lr = lr * trust
        momentum <- momentum_beta * momentum - local_lr * g
        w <- w + momentum - local_lr * wd * w

    Slot ``<var>-momentum``. With ``weight_decay=0`` this equals
    ``optax.lars(lr, weight_decay=0, trust_coefficient=lars_coefficient, eps=epsilon,
    momentum=momentum_beta)``; with weight decay, optax adds ``wd * w`` to the gradient
    inside the momentum and the norm instead. MindSpore's ``nn.LARS`` wraps another
    optimizer and clips the ratio; it is not reproduced.
    """

    _weight_decay_kind = "decoupled"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        momentum_beta: float = 0.9,
        epsilon: float = 1e-9,
        lars_coefficient: float = 1e-4,
        loss_scale_factor: float | None = None,
        weight_decay: float | None = None,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
    ) -> None:
        super().__init__(
            lr_scheduler,
            loss_scale_factor,
            grad_clipping,
            train_step_lbn,
            loss_scale_policy,
            variables,
            weight_decay=weight_decay,
            weight_decay_includes=weight_decay_includes,
            weight_decay_excludes=weight_decay_excludes,
        )
        owner = type(self).__name__
        self.momentum_beta = checks.fraction(owner, "momentum_beta", momentum_beta)
        self.epsilon = checks.number(owner, "epsilon", epsilon, low=0)
        self.lars_coefficient = checks.number(
            owner, "lars_coefficient", lars_coefficient, low=0, low_open=True
        )

    def _make_tx(self, lr, step):
        return lars_rule(lr, self.momentum_beta, self.epsilon, self.lars_coefficient, self.weight_decay_for)

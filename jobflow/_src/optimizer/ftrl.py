"""FTRL-proximal as MindSpore's ``nn.FTRL`` (TensorFlow's ``ApplyFtrl``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["Ftrl"]


class FtrlState(NamedTuple):
    accum: dict  # per variable: running sum of g^2, initially initial_accum
    linear: dict  # per variable: the linear term, initially 0


def _power(x, lr_power):
    """``x ** (-lr_power)``, with the square root for the usual lr_power = -0.5."""
    return jnp.sqrt(x) if lr_power == -0.5 else jnp.power(x, -lr_power)


def ftrl_rule(lr, initial_accum: float, lr_power: float, l1: float, l2: float):
    def init(params):
        return FtrlState(
            {n: jnp.full_like(p, initial_accum) for n, p in params.items()},
            {n: jnp.zeros_like(p) for n, p in params.items()},
        )

    def update(grads, state, params=None):
        accs, lins, deltas = {}, {}, {}
        for n, g in grads.items():
            w, acc = params[n], state.accum[n]
            new_acc = acc + jnp.square(g)
            lin = state.linear[n] + g - (_power(new_acc, lr_power) - _power(acc, lr_power)) / lr * w
            quadratic = _power(new_acc, lr_power) / lr + 2 * l2
            new_w = jnp.where(jnp.abs(lin) > l1, (jnp.sign(lin) * l1 - lin) / quadratic, 0.0)
            accs[n], lins[n] = new_acc.astype(w.dtype), lin.astype(w.dtype)
            deltas[n] = (new_w - w).astype(w.dtype)
        return deltas, FtrlState(accs, lins)

    return optax.GradientTransformation(init, update)


class Ftrl(Optimizer):
    """FTRL-proximal (McMahan et al. 2013) as MindSpore's ``nn.FTRL``.

    With ``g`` the processed gradient plus ``weight_decay * w`` (L2), ``p = -lr_power``::

        accum' = accum + g^2                                   (slot <var>-accum)
        linear <- linear + g - (accum'^p - accum^p) / lr * w   (slot <var>-linear)
        w <- (sign(linear) * l1 - linear) / (accum'^p / lr + 2 * l2)   if |linear| > l1
             0                                                          otherwise
        accum <- accum'

    ``lr_power`` must be <= 0 (-0.5 is the usual square root). MindSpore and TensorFlow
    take a fixed lr, and so should you: the weights are recomputed each step from the
    accumulated ``linear`` divided by the *current* lr, so a decaying schedule shrinks
    all weights with it (a schedule is accepted and applied exactly as written above).
    MindSpore 2.10's CPU kernel always adds ``+l1`` (it tests ``linear != 0`` instead of
    its sign); this follows the documented ``sign(linear) * l1``.
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    _weight_decay_kind = "coupled"

    def __init__(
        self,
        lr_scheduler: LearningRate = 0.001,
        initial_accum: float = 0.1,
        lr_power: float = -0.5,
        l1: float = 0.0,
        l2: float = 0.0,
        weight_decay: float = 0.0,
        *,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
        loss_scale_factor: float | None = None,
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
        self.initial_accum = checks.number(owner, "initial_accum", initial_accum, low=0)
        self.lr_power = checks.number(owner, "lr_power", lr_power, high=0)
        self.l1 = checks.number(owner, "l1", l1, low=0)
        self.l2 = checks.number(owner, "l2", l2, low=0)

    def _make_tx(self, lr, step):
        return ftrl_rule(lr, self.initial_accum, self.lr_power, self.l1, self.l2)

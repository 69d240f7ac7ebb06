"""Adagrad (PyTorch's / OneFlow's) and ProximalAdagrad (MindSpore's / TensorFlow's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["Adagrad", "ProximalAdagrad"]


class AdagradState(NamedTuple):
    sum: dict  # per variable: running sum of g^2


class ProximalAdagradState(NamedTuple):
    accum: dict  # per variable: running sum of g^2, initially `accum`


def adagrad_rule(lr, step, lr_decay: float, initial_accumulator_value: float, eps: float):
    def init(params):
        return AdagradState({n: jnp.full_like(p, initial_accumulator_value) for n, p in params.items()})

    def update(grads, state, params=None):
        clr = lr / (1 + jnp.asarray(step).astype(jnp.float32) * lr_decay)
        sums, deltas = {}, {}
        for n, g in grads.items():
            s = state.sum[n] + jnp.square(g)
            sums[n] = s.astype(g.dtype)
            deltas[n] = (-clr * g / (jnp.sqrt(s) + eps)).astype(g.dtype)
        return deltas, AdagradState(sums)

    return optax.GradientTransformation(init, update)


def proximal_adagrad_rule(lr, accum: float, l1: float, l2: float):
    def init(params):
        return ProximalAdagradState({n: jnp.full_like(p, accum) for n, p in params.items()})

    def update(grads, state, params=None):
        accs, deltas = {}, {}
        for n, g in grads.items():
            w = params[n]
            a = state.accum[n] + jnp.square(g)
            lr_t = lr / jnp.sqrt(a)
            prox = w - lr_t * g
            new_w = jnp.sign(prox) / (1 + lr_t * l2) * jnp.maximum(jnp.abs(prox) - lr_t * l1, 0.0)
            accs[n], deltas[n] = a.astype(w.dtype), (new_w - w).astype(w.dtype)
        return deltas, ProximalAdagradState(accs)

    return optax.GradientTransformation(init, update)


class Adagrad(Optimizer):
    """Adagrad as PyTorch's ``torch.optim.Adagrad`` (and OneFlow's eager ``Adagrad``).

    With ``g`` the processed gradient plus ``weight_decay * w`` (L2)::

        clr = lr / (1 + step * lr_decay)          (step = 0 for the first update)
        sum <- sum + g^2                          (slot <var>-sum, initially initial_accumulator_value)
        w <- w - clr * g / (sqrt(sum) + eps)

    ``optax.adagrad`` differs: epsilon inside the square root, initial accumulator 0.1.
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    _weight_decay_kind = "coupled"

    def __init__(
        self,
        lr_scheduler: LearningRate = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
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
        self.lr_decay = checks.number(owner, "lr_decay", lr_decay, low=0)
        self.initial_accumulator_value = checks.number(
            owner, "initial_accumulator_value", initial_accumulator_value, low=0
        )
        self.eps = checks.number(owner, "eps", eps, low=0)

    def _make_tx(self, lr, step):
        return adagrad_rule(lr, step, self.lr_decay, self.initial_accumulator_value, self.eps)


class ProximalAdagrad(Optimizer):
    """Proximal Adagrad as MindSpore's ``nn.ProximalAdagrad`` (TensorFlow's ``ApplyProximalAdagrad``).

    With ``g`` the processed gradient plus ``weight_decay * w`` (L2)::

        accum <- accum + g^2                      (slot <var>-accum, initially `accum`)
        lr_t = lr / sqrt(accum)
        p = w - lr_t * g
        w <- sign(p) / (1 + lr_t * l2) * max(|p| - lr_t * l1, 0)

    (The per-element ``lr_t`` also scales the l1 and l2 terms, as the kernels compute;
    TensorFlow's docstring writes ``lr`` there.) There is no epsilon: ``accum`` stays > 0
    since it starts at ``accum`` > 0.
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    _weight_decay_kind = "coupled"

    def __init__(
        self,
        lr_scheduler: LearningRate = 0.001,
        accum: float = 0.1,
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
        self.accum = checks.number(owner, "accum", accum, low=0, low_open=True)
        self.l1 = checks.number(owner, "l1", l1, low=0)
        self.l2 = checks.number(owner, "l2", l2, low=0)

    def _make_tx(self, lr, step):
        return proximal_adagrad_rule(lr, self.accum, self.l1, self.l2)

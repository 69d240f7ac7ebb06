"""LAMB: Adam's direction scaled per variable by a trust ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import optax

from jobflow._src.optimizer.adam import AdamState, bias_correction_factor, check_betas
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection, l2_norm
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["LAMB", "lamb_rule", "TRUST_RATIO_FORMS"]

TRUST_RATIO_FORMS = ("oneflow", "optax", "mindspore")


def _trust(form, w, g, m_hat, v_hat, u, wd, epsilon):
    """The trust ratio of one variable (see :class:`LAMB`)."""
    w_norm = l2_norm(w)
    if form == "mindspore":
        r_norm = l2_norm(m_hat * jnp.reciprocal(jnp.sqrt(v_hat + epsilon)) + wd * w)
        ratio = jnp.where((w_norm > 0) & (l2_norm(g) > 0), w_norm / r_norm, 1.0)
        return jnp.clip(ratio, 0.0, 10.0)
    d_norm = l2_norm(u + wd * w if form == "optax" else u)
    return jnp.where((w_norm > 0) & (d_norm > 0), w_norm / d_norm, 1.0)


def lamb_rule(lr, step, beta1: float, beta2: float, epsilon: float, decay, form: str = "oneflow"):
    """LAMB's update as an optax transformation (``decay`` is ``name -> weight decay``)."""
    bc1, bc2 = bias_correction_factor(beta1, step), bias_correction_factor(beta2, step)

    def init(params):
        return AdamState(
            {n: jnp.zeros_like(p) for n, p in params.items()},
            {n: jnp.zeros_like(p) for n, p in params.items()},
            {},
        )

    def update(grads, state, params=None):
        ms, vs, deltas = {}, {}, {}
        for n, g in grads.items():
            w, wd = params[n], decay(n)
            m = beta1 * state.m[n] + (1 - beta1) * g
            v = beta2 * state.v[n] + (1 - beta2) * jnp.square(g)
            m_hat, v_hat = m / bc1, v / bc2
            u = m_hat / (jnp.sqrt(v) / jnp.sqrt(bc2) + epsilon)
            if form == "mindspore":
                u = m_hat / (jnp.sqrt(v_hat) + epsilon)
            trust = _trust(form, w, g, m_hat, v_hat, u, wd, epsilon)
            deltas[n] = (-lr * trust * (u + wd * w)).astype(w.dtype)
            ms[n], vs[n] = m.astype(w.dtype), v.astype(w.dtype)
        return deltas, AdamState(ms, vs, {})

    return optax.GradientTransformation(init, update)


class LAMB(Optimizer):
    """LAMB (OneFlow's ``flow.optimizer.LAMB``), with the trust ratios of optax and MindSpore.

    With ``t = step + 1``, ``m_hat = m / (1 - beta1^t)``, ``v_hat = v / (1 - beta2^t)``
    (``m``, ``v`` as in :class:`Adam`), ``wd`` the variable's weight decay and per-variable
    L2 norms::

        u = m_hat / (sqrt(v_hat) + epsilon)
        trust_ratio="oneflow":   r = ||w|| / ||u||                if both > 0, else 1
        trust_ratio="optax":     r = ||w|| / ||u + wd * w||       if both > 0, else 1
        trust_ratio="mindspore": r = clip(||w|| / ||m_hat / sqrt(v_hat + epsilon) + wd * w||, 0, 10)
                                     if ||w|| > 0 and ||g|| > 0, else 1
        w <- w - lr * r * (u + wd * w)

    "oneflow" is OneFlow's kernel (the decay is left out of the ratio), with the bias
    correction of the current step (OneFlow 0.4's kernel used ``beta^(t+1)``); "optax"
    is the paper's and ``optax.lamb``'s; "mindspore" is ``mindspore.nn.Lamb``. All three
    agree on the update direction; with ``weight_decay=0`` "oneflow" and "optax" are the
    same. Slots ``<var>-m`` and ``<var>-v``.
    """

    _weight_decay_kind = "decoupled"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        loss_scale_factor: float | None = None,
        weight_decay: float | None = None,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        trust_ratio: str = "oneflow",
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
        self.beta1, self.beta2, self.epsilon = check_betas(type(self).__name__, beta1, beta2, epsilon)
        if trust_ratio not in TRUST_RATIO_FORMS:
            raise ValueError(
                f"LAMB(trust_ratio) must be one of {list(TRUST_RATIO_FORMS)}; got {trust_ratio!r}"
            )
        self.trust_ratio = trust_ratio

    def _make_tx(self, lr, step):
        return lamb_rule(
            lr, step, self.beta1, self.beta2, self.epsilon, self.weight_decay_for, self.trust_ratio
        )

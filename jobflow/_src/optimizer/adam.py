"""Adam, AdamW and LazyAdam (OneFlow's names; bias correction on by default)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jobflow._src.core import checks, counters
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["Adam", "AdamW", "LazyAdam", "adam_rule", "bias_correction_factor", "check_betas"]


class AdamState(NamedTuple):
    m: dict  # per variable: first moment, shape and dtype of the variable
    v: dict  # per variable: second moment
    max_v: dict  # per variable: running max of v (AMSGrad only; empty otherwise)


def _row_mask(g):
    """True for rows (slices along axis 0) with a non-zero gradient, shaped to broadcast."""
    if g.ndim == 0:
        return g != 0
    active = jnp.any(g != 0, axis=tuple(range(1, g.ndim)))
    return active.reshape((g.shape[0],) + (1,) * (g.ndim - 1))


def bias_correction_factor(beta: float, step) -> jax.Array:
    """``1 - beta^t`` with ``t = step + 1``, as ``-expm1(t * log(beta))`` in float32.

    This is accurate to a few float32 ulps because ``beta`` itself is never rounded to
    float32 (``1 - float32(0.999)`` is off by 1.3e-5 relative); PyTorch computes the same
    factor in float64. ``t`` is computed in float32 (``counters.count_from_one``), so a
    counter of ``2**31 - 1`` gives ``t = 2**31`` and a factor of 1, never an overflow.
    """
    t = counters.count_from_one(step)
    log_beta = math.log(beta) if beta > 0 else -math.inf
    return -jnp.expm1(t * jnp.float32(log_beta))


def adam_rule(
    lr,
    step,
    beta1: float,
    beta2: float,
    epsilon: float,
    *,
    bias_correction: bool = True,
    amsgrad: bool = False,
    epsilon_hat: bool = False,
    decay=None,
    lazy: bool = False,
):
    """The Adam family's update as an optax transformation (see :class:`Adam`).

    ``decay`` is ``name -> weight decay`` for decoupled decay ``w -= lr * wd * w`` (AdamW);
    ``lazy`` keeps rows whose gradient is all zero unchanged (LazyAdam).
    """
    bc1, bc2 = bias_correction_factor(beta1, step), bias_correction_factor(beta2, step)

    def init(params):
        zeros = lambda: {n: jnp.zeros_like(p) for n, p in params.items()}
        return AdamState(zeros(), zeros(), zeros() if amsgrad else {})

    def direction(m, v):
        if not bias_correction:
            return m / (jnp.sqrt(v) + epsilon)
        if epsilon_hat:
            return (jnp.sqrt(bc2) / bc1) * m / (jnp.sqrt(v) + epsilon)
        return (m / bc1) / (jnp.sqrt(v) / jnp.sqrt(bc2) + epsilon)

    def update(grads, state, params=None):
        ms, vs, maxs, deltas = {}, {}, {}, {}
        for n, g in grads.items():
            m = beta1 * state.m[n] + (1 - beta1) * g
            v = beta2 * state.v[n] + (1 - beta2) * jnp.square(g)
            denom_v = v
            if amsgrad:
                maxs[n] = denom_v = jnp.maximum(state.max_v[n], v).astype(g.dtype)
            delta = -lr * direction(m, denom_v)
            rate = decay(n) if decay is not None else 0.0
            if rate:
                delta = delta - lr * rate * params[n]
            if lazy:
                active = _row_mask(g)
                m = jnp.where(active, m, state.m[n])
                v = jnp.where(active, v, state.v[n])
                delta = jnp.where(active, delta, jnp.zeros_like(delta))
                if amsgrad:
                    maxs[n] = jnp.where(active, maxs[n], state.max_v[n])
            ms[n], vs[n] = m.astype(g.dtype), v.astype(g.dtype)
            deltas[n] = delta.astype(g.dtype)
        return deltas, AdamState(ms, vs, maxs)

    return optax.GradientTransformation(init, update)


def check_betas(owner: str, beta1, beta2, epsilon) -> tuple[float, float, float]:
    return (
        checks.fraction(owner, "beta1", beta1),
        checks.fraction(owner, "beta2", beta2),
        checks.number(owner, "epsilon", epsilon, low=0),
    )


class Adam(Optimizer):
    r"""Adam (OneFlow's ``flow.optimizer.Adam``; PyTorch's ``torch.optim.Adam`` by default).

    With ``t = step + 1`` (the first update has t = 1), ``bc1 = 1 - beta1^t``,
    ``bc2 = 1 - beta2^t``::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        max_v <- max(max_v, v);  v' = max_v if amsgrad else v          (PyTorch's AMSGrad)
        do_bias_correction:  w <- w - lr * (m / bc1) / (sqrt(v') / sqrt(bc2) + epsilon)
        epsilon_hat:         w <- w - lr * sqrt(bc2) / bc1 * m / (sqrt(v') + epsilon)
        no bias correction:  w <- w - lr * m / (sqrt(v') + epsilon)

    The default is PyTorch's and OneFlow >= 0.5's form (epsilon after the bias-corrected
    square root). ``epsilon_hat=True`` gives TensorFlow 1's / MindSpore's ``nn.Adam`` form
    (epsilon added before the correction, i.e. ``epsilon_torch = epsilon / sqrt(bc2)``).
    Slots ``<var>-m``, ``<var>-v`` (and ``<var>-max_v`` with amsgrad), initially 0.
    ``do_bias_correction`` defaults to True (OneFlow < 0.5 defaulted to False). Adam has no
    weight decay; use :class:`AdamW`, or an L2 regularizer on ``get_variable`` for
    PyTorch's coupled ``weight_decay``.

    Args:
      lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy,
      variables: see :class:`~jobflow.optimizer.Optimizer` (OneFlow's order).
      beta1, beta2: in [0, 1). epsilon: >= 0.
      do_bias_correction: divide the moments by ``1 - beta^t``.
      amsgrad: (keyword only) PyTorch's AMSGrad (the max of the raw ``v``).
      epsilon_hat: (keyword only) the TensorFlow / MindSpore epsilon placement.
    """

    _lazy = False

    def __init__(
        self,
        lr_scheduler: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        do_bias_correction: bool = True,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        amsgrad: bool = False,
        epsilon_hat: bool = False,
    ) -> None:
        super().__init__(
            lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        self._set_adam_args(beta1, beta2, epsilon, do_bias_correction, amsgrad, epsilon_hat)

    def _set_adam_args(self, beta1, beta2, epsilon, do_bias_correction, amsgrad, epsilon_hat):
        owner = type(self).__name__
        self.beta1, self.beta2, self.epsilon = check_betas(owner, beta1, beta2, epsilon)
        self.do_bias_correction = checks.flag(owner, "do_bias_correction", do_bias_correction)
        self.amsgrad = checks.flag(owner, "amsgrad", amsgrad)
        self.epsilon_hat = checks.flag(owner, "epsilon_hat", epsilon_hat)
        if self.epsilon_hat and not self.do_bias_correction:
            raise ValueError(
                f"{owner}(epsilon_hat=True) only changes the bias-corrected form; "
                f"it needs do_bias_correction=True"
            )

    def _make_tx(self, lr, step):
        decay = self.weight_decay_for if self._weight_decay_kind == "decoupled" else None
        return adam_rule(
            lr,
            step,
            self.beta1,
            self.beta2,
            self.epsilon,
            bias_correction=self.do_bias_correction,
            amsgrad=self.amsgrad,
            epsilon_hat=self.epsilon_hat,
            decay=decay,
            lazy=self._lazy,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (OneFlow's ``flow.optimizer.AdamW``).

    :class:`Adam`'s update plus ``w <- w - lr * wd * w`` with the weight before the step
    (``wd = weight_decay`` for the variables the include/exclude rules select, 0 for the
    others). This is PyTorch's ``torch.optim.AdamW`` and ``optax.adamw`` (decay scaled by
    the scheduled lr, not by the bias correction); PyTorch's default weight_decay is 1e-2,
    OneFlow's (and this one's) None, i.e. no decay.
    """

    _weight_decay_kind = "decoupled"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        do_bias_correction: bool = True,
        loss_scale_factor: float | None = None,
        weight_decay: float | None = None,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        amsgrad: bool = False,
        epsilon_hat: bool = False,
    ) -> None:
        Optimizer.__init__(
            self,
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
        self._set_adam_args(beta1, beta2, epsilon, do_bias_correction, amsgrad, epsilon_hat)


class LazyAdam(Adam):
    """Adam that leaves untouched the rows (slices along axis 0) whose gradient is all zero.

    For an embedding read through ``flow.gather``, the rows not looked up in this step
    get an exactly-zero gradient; LazyAdam keeps their ``m``, ``v`` and weight exactly
    unchanged, and updates the other rows with :class:`Adam`'s rule (bias correction
    always on, ``t = step + 1`` from the job's counter). How it differs from Adam: the
    moments of untouched rows do not decay, so a row seen rarely moves as if no steps
    passed in between; the bias correction still uses the global step (TensorFlow's
    ``LazyAdam``, OneFlow's indexed-slices rewrite). A row whose gradient sums to exactly
    zero counts as untouched. Regularizers on the variable make every row's gradient
    non-zero, and so every row updates (OneFlow applies the sparse rewrite only
    without them). Variables of any shape work; a scalar is one row.
    """

    _lazy = True

    def __init__(
        self,
        lr_scheduler: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        epsilon_hat: bool = False,
    ) -> None:
        Optimizer.__init__(
            self, lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        self._set_adam_args(beta1, beta2, epsilon, True, False, epsilon_hat)

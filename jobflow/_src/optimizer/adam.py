"""Adam, AdamW and LazyAdam with OneFlow legacy's numbers (bias correction off by default).

The PyTorch-convention classes (bias correction on, epsilon after the corrected square
root, AdamW's decay by the uncorrected lr) are in ``optimizer/pytorch.py``
(``flow.optimizer.pytorch.Adam`` / ``AdamW``); both share :func:`adam_rule`.
"""

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
from jobflow._src.optimizer.transforms import row_mask

__all__ = [
    "Adam",
    "AdamW",
    "LazyAdam",
    "adam_rule",
    "bias_correction_factor",
    "check_betas",
    "BIAS_CORRECTIONS",
]

# How the bias correction enters the update (see :func:`adam_rule`).
BIAS_CORRECTIONS = (None, "oneflow", "pytorch")


class AdamState(NamedTuple):
    m: dict  # per variable: first moment, shape and dtype of the variable
    v: dict  # per variable: second moment
    max_v: dict  # per variable: running max of v (AMSGrad only; empty otherwise)


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


def _step_sizes(lr, step, beta1, beta2, bias_correction):
    """``(lr_t, bc1, sqrt(bc2))``: OneFlow's corrected lr ``lr*sqrt(bc2)/bc1`` (or ``lr``),
    and the factors PyTorch divides the moments by (1 where they are not used)."""
    if bias_correction is None:
        return lr, 1.0, 1.0
    bc1, bc2 = bias_correction_factor(beta1, step), bias_correction_factor(beta2, step)
    if bias_correction == "oneflow":
        return lr * jnp.sqrt(bc2) / bc1, 1.0, 1.0
    return lr, bc1, jnp.sqrt(bc2)


def adam_rule(
    lr,
    step,
    beta1: float,
    beta2: float,
    epsilon: float,
    *,
    bias_correction: str | None = "pytorch",
    amsgrad: bool = False,
    decay=None,
    lazy: bool = False,
):
    """The Adam family's update as an optax transformation.

    With ``t = step + 1``, ``bc1 = 1 - beta1^t``, ``bc2 = 1 - beta2^t``, ``wd = decay(name)``
    (0 without ``decay``) and ``v'`` = ``max(max_v, v)`` with amsgrad, else ``v``::

        None:       w -= lr   * (m / (sqrt(v') + eps) + wd * w)
        "oneflow":  w -= lr_t * (m / (sqrt(v') + eps) + wd * w),  lr_t = lr * sqrt(bc2) / bc1
        "pytorch":  w -= lr * (m / bc1) / (sqrt(v') / sqrt(bc2) + eps) + lr * wd * w

    ``lazy`` keeps rows whose gradient is all zero unchanged (LazyAdam).
    """
    lr_t, bc1, sqrt_bc2 = _step_sizes(lr, step, beta1, beta2, bias_correction)

    def init(params):
        zeros = lambda: {n: jnp.zeros_like(p) for n, p in params.items()}
        return AdamState(zeros(), zeros(), zeros() if amsgrad else {})

    def update(grads, state, params=None):
        ms, vs, maxs, deltas = {}, {}, {}, {}
        neg_lr_t = -lr_t  # once, not per variable (the same number: negation is exact)
        for n, g in grads.items():
            m = beta1 * state.m[n] + (1 - beta1) * g
            v = beta2 * state.v[n] + (1 - beta2) * jnp.square(g)
            denom_v = v
            if amsgrad:
                maxs[n] = denom_v = jnp.maximum(state.max_v[n], v).astype(g.dtype)
            delta = neg_lr_t * ((m / bc1) / (jnp.sqrt(denom_v) / sqrt_bc2 + epsilon))
            rate = decay(n) if decay is not None else 0.0
            if rate:
                delta = delta - lr_t * rate * params[n]
            if lazy:
                active = row_mask(g)
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
    r"""Adam with OneFlow legacy's kernel (``flow.optimizer.Adam``, OneFlow v0.2 to v0.4).

    With ``t = step + 1`` (the first update has t = 1)::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)   if do_bias_correction   else lr
        w <- w - lr_t * m / (sqrt(v) + epsilon)

    **Bias correction is off by default**, as in OneFlow's legacy API; when on, it scales
    the learning rate and epsilon is not corrected (TensorFlow 1's and MindSpore's
    ``nn.Adam`` form too). PyTorch's ``torch.optim.Adam`` always corrects and puts
    epsilon after the corrected square root, ``w -= lr * (m/bc1) / (sqrt(v/bc2) + eps)``:
    that is ``flow.optimizer.pytorch.Adam``. The difference, one step from w = 0 with
    lr = 0.1 and g = 1 (m = 0.1, v = 0.001): OneFlow's default moves w by
    ``0.1 * 0.1 / (sqrt(0.001) + 1e-8) = 0.316228``, PyTorch by ``0.1``; with
    ``do_bias_correction=True`` OneFlow moves it by ``0.1 * (1 - 3.2e-7)`` (the uncorrected
    epsilon counts ``1/sqrt(1 - beta2) = 31.6`` times more), PyTorch by ``0.1 * (1 - 1e-8)``.

    Slots ``<var>-m``, ``<var>-v`` (and ``<var>-max_v`` with amsgrad), initially 0. Adam
    has no weight decay; use :class:`AdamW`, or an L2 regularizer on ``get_variable``.

    Args:
      lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy,
      variables: see :class:`~jobflow.optimizer.Optimizer` (OneFlow's order).
      beta1, beta2: in [0, 1). epsilon: >= 0.
      do_bias_correction: scale the lr by ``sqrt(1 - beta2^t) / (1 - beta1^t)``.
      amsgrad: (keyword only; jobflow's addition) use ``max_v = max(max_v, v)`` for ``v``
        (PyTorch's AMSGrad; OneFlow >= 0.5 has it too).
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    _lazy = False
    # Which corrected form do_bias_correction=True selects (see adam_rule).
    _corrected_form = "oneflow"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        do_bias_correction: bool = False,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        self._set_adam_args(beta1, beta2, epsilon, do_bias_correction, amsgrad)

    def _set_adam_args(self, beta1, beta2, epsilon, do_bias_correction, amsgrad):
        owner = type(self).__name__
        self.beta1, self.beta2, self.epsilon = check_betas(owner, beta1, beta2, epsilon)
        self.do_bias_correction = checks.flag(owner, "do_bias_correction", do_bias_correction)
        self.amsgrad = checks.flag(owner, "amsgrad", amsgrad)

    @property
    def bias_correction(self) -> str | None:
        """How the bias correction enters the update: None (off), ``"oneflow"`` (it scales
        the lr) or ``"pytorch"`` (it divides the moments)."""
        return self._corrected_form if self.do_bias_correction else None

    def _make_tx(self, lr, step):
        decay = self.weight_decay_for if self._weight_decay_kind == "decoupled" else None
        return adam_rule(
            lr,
            step,
            self.beta1,
            self.beta2,
            self.epsilon,
            bias_correction=self.bias_correction,
            amsgrad=self.amsgrad,
            decay=decay,
            lazy=self._lazy,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay, OneFlow legacy's kernel (``flow.optimizer.AdamW``).

    With ``wd = weight_decay`` for the variables the include/exclude rules select (0 for
    the others) and ``lr_t`` as in :class:`Adam`::

        w <- w - lr_t * (m / (sqrt(v) + epsilon) + wd * w)

    with the weight before the step. OneFlow's kernel (``AdamUpdateFunctor``, v0.2 to
    v0.4) scales the decay by the bias-corrected ``lr_t`` too; PyTorch's
    ``torch.optim.AdamW`` (and OneFlow >= 0.5) decays by ``lr * wd * w``: use
    ``flow.optimizer.pytorch.AdamW``. Without bias correction (the default) the two
    decays are equal. With it, at t = 1 and beta1 = 0.9, beta2 = 0.999,
    ``lr_t = lr * sqrt(0.001) / 0.1 = 0.316 * lr``: lr = 0.1, wd = 0.01, w = 1 decays by
    0.000316 here and by 0.001 in PyTorch. ``weight_decay`` defaults to None (no decay),
    as in OneFlow (PyTorch's default is 1e-2).
    """

    _weight_decay_kind = "decoupled"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        do_bias_correction: bool = False,
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
        self._set_adam_args(beta1, beta2, epsilon, do_bias_correction, amsgrad)


class LazyAdam(Adam):
    """Adam that leaves untouched the rows (slices along axis 0) whose gradient is all zero.

    OneFlow's ``LazyAdam`` is its Adam with bias correction forced on, so each touched
    row follows :class:`Adam` with ``do_bias_correction=True``:
    ``w -= lr_t * m / (sqrt(v) + epsilon)``, ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``,
    ``t = step + 1`` from the job's counter. For an embedding read through ``flow.gather``,
    the rows not looked up in this step get an exactly-zero gradient; LazyAdam keeps their
    ``m``, ``v`` and weight exactly unchanged. How it differs from Adam: the moments of
    untouched rows do not decay, so a row seen rarely moves as if no steps passed in
    between; the bias correction still uses the global step (TensorFlow's ``LazyAdam``,
    OneFlow's indexed-slices rewrite). A row whose gradient sums to exactly zero counts
    as untouched. Regularizers on the variable make every row's gradient non-zero, and so
    every row updates (OneFlow applies the sparse rewrite only without them). Variables
    of any shape work; a scalar is one row.

    An embedding table that the job body reads only through ``flow.gather(table, ids)``
    along axis 0 updates row-sparsely: its gradient is ``(unique ids, summed rows)`` and
    the update reads and writes the table, ``m`` and ``v`` at those rows only, O(rows
    looked up) per step whatever the table's size, with the numbers above (to float32
    rounding; see ``optimizer/sparse_rows.py``).
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
    ) -> None:
        Optimizer.__init__(
            self, lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        self._set_adam_args(beta1, beta2, epsilon, True, False)

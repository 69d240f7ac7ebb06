"""SGD and SGDW with OneFlow's momentum rule, and MindSpore's Momentum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["SGD", "SGDW", "Momentum", "sgd_momentum", "sgd_decayed"]


class SGDMomentumState(NamedTuple):
    momentum: dict  # per variable, shape and dtype of the variable


def sgd_momentum(lr, momentum: float, nesterov: bool = False, decay=None) -> optax.GradientTransformation:
    """OneFlow's momentum SGD: ``buf = momentum * buf - lr * g``; ``w += buf``.

    With ``nesterov``: ``w += momentum * buf - lr * g`` (the new buffer). With ``decay``
    (a function ``name -> weight decay``): also ``w -= lr * decay(name) * w`` (SGDW).

    The learning rate is inside the buffer, so with a constant lr this equals PyTorch's
    ``buf = momentum * buf + g; w -= lr * buf``; when lr changes, past steps keep the
    lr they were taken with.
    """

    def init(params):
        return SGDMomentumState(jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        bufs, deltas = {}, {}
        for n, g in grads.items():
            b = state.momentum[n]
            buf = (momentum * b - lr * g).astype(b.dtype)
            delta = momentum * buf - lr * g if nesterov else buf
            rate = decay(n) if decay is not None else 0.0
            if rate:
                delta = delta - lr * rate * params[n]
            bufs[n], deltas[n] = buf, delta.astype(b.dtype)
        return deltas, SGDMomentumState(bufs)

    return optax.GradientTransformation(init, update)


def sgd_decayed(lr, decay) -> optax.GradientTransformation:
    """``w -= lr * (g + decay(name) * w)`` (plain SGD with decoupled weight decay)."""

    def update(grads, state, params=None):
        return {n: (-lr * (g + decay(n) * params[n])).astype(g.dtype) for n, g in grads.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class SGD(Optimizer):
    """Stochastic gradient descent (OneFlow's ``flow.optimizer.SGD``).

    Update, with ``g`` the processed gradient and ``lr = lr_scheduler(step)``::

        momentum == 0:  w <- w - lr * g
        momentum  > 0:  buf <- momentum * buf - lr * g;  w <- w + buf
        nesterov:       buf <- momentum * buf - lr * g;  w <- w + momentum * buf - lr * g

    The buffer is the slot ``<var>-momentum``, initially 0. The default momentum is 0.9,
    as in OneFlow (its LeNet example passes ``momentum=0``). With a constant lr this is
    PyTorch's ``torch.optim.SGD`` (dampening 0); PyTorch's ``weight_decay`` is the L2
    regularizer ``get_variable(..., regularizer=flow.regularizers.l2(wd))``.

    Args:
      lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy,
      variables: see :class:`~jobflow.optimizer.Optimizer` (OneFlow's order).
      momentum: in [0, 1).
      nesterov: (keyword only; jobflow's addition) Nesterov momentum.
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    def __init__(
        self,
        lr_scheduler: LearningRate,
        loss_scale_factor: float | None = None,
        momentum: float = 0.9,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        self._set_momentum(momentum, nesterov)

    def _set_momentum(self, momentum, nesterov):
        owner = type(self).__name__
        self.momentum = checks.fraction(owner, "momentum", momentum)
        self.nesterov = checks.flag(owner, "nesterov", nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError(f"{owner}(nesterov=True) needs momentum > 0; got momentum={momentum!r}")

    def _make_tx(self, lr, step):
        if self.momentum == 0:
            return optax.scale_by_learning_rate(lr)
        return sgd_momentum(lr, self.momentum, self.nesterov)


class SGDW(SGD):
    """SGD with decoupled weight decay (OneFlow's ``flow.optimizer.SGDW``).

    With ``wd = weight_decay`` for the variables the include/exclude rules select (0 for
    the others)::

        momentum == 0:  w <- w - lr * (g + wd * w)
        momentum  > 0:  buf <- momentum * buf - lr * g;  w <- w + buf - lr * wd * w

    The decay uses the scheduled lr and the weight before the step, and stays out of the
    momentum buffer (unlike an L2 regularizer).
    """

    _weight_decay_kind = "decoupled"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        loss_scale_factor: float | None = None,
        momentum: float = 0.9,
        weight_decay: float | None = None,
        weight_decay_includes: str | Sequence[str] | None = None,
        weight_decay_excludes: str | Sequence[str] | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        nesterov: bool = False,
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
        self._set_momentum(momentum, nesterov)

    def _make_tx(self, lr, step):
        if self.momentum == 0:
            return sgd_decayed(lr, self.weight_decay_for)
        return sgd_momentum(lr, self.momentum, self.nesterov, decay=self.weight_decay_for)


class Momentum(Optimizer):
    """MindSpore's ``nn.Momentum`` (``ApplyMomentum``): the learning rate is outside the buffer.

    With ``g`` the processed gradient plus ``weight_decay * w`` (L2, for the variables the
    include/exclude rules select)::

        v <- momentum * v + g
        w <- w - lr * v                      (use_nesterov=False)
        w <- w - lr * (g + momentum * v)     (use_nesterov=True)

    This is ``optax.sgd(lr, momentum, nesterov)``; with a constant lr it equals
    :class:`SGD`. Slot ``<var>-momentum``. MindSpore skips variables whose names contain
    ``beta``/``gamma`` by default; pass ``weight_decay_excludes=["beta", "gamma"]`` for that.
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    _weight_decay_kind = "coupled"

    def __init__(
        self,
        lr_scheduler: LearningRate,
        momentum: float,
        weight_decay: float = 0.0,
        use_nesterov: bool = False,
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
        self.momentum = checks.number(type(self).__name__, "momentum", momentum, low=0)
        self.use_nesterov = checks.flag(type(self).__name__, "use_nesterov", use_nesterov)

    def _make_tx(self, lr, step):
        return optax.sgd(lr, self.momentum, self.use_nesterov)

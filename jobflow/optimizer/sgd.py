"""SGD with OneFlow's momentum rule."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jobflow.optimizer.base import Optimizer

__all__ = ["SGD", "sgd_momentum"]


class SGDMomentumState(NamedTuple):
    momentum: dict  # per variable, shape and dtype of the variable


def sgd_momentum(lr, momentum: float) -> optax.GradientTransformation:
    """OneFlow's momentum SGD: ``buf = momentum * buf - lr * g``; ``w += buf``.

    The learning rate is inside the buffer, so with a constant lr this equals PyTorch's
    ``buf = momentum * buf + g; w -= lr * buf``; when lr changes, past steps keep the
    lr they were taken with.
    """

    def init(params):
        return SGDMomentumState(jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        buf = jax.tree.map(lambda b, g: (momentum * b - lr * g).astype(b.dtype), state.momentum, grads)
        return buf, SGDMomentumState(buf)

    return optax.GradientTransformation(init, update)


class SGD(Optimizer):
    """Stochastic gradient descent (OneFlow's ``flow.optimizer.SGD``).

    Update, with ``g`` the processed gradient and ``lr = lr_scheduler(step)``::

        momentum == 0:  w <- w - lr * g
        momentum  > 0:  buf <- momentum * buf - lr * g;  w <- w + buf

    The buffer is the slot ``<var>-momentum``, initially 0. The default momentum is 0.9,
    as in OneFlow (its LeNet example passes ``momentum=0``).
    """

    def __init__(self, lr_scheduler, momentum: float = 0.9, loss_scale_factor=None,
                 grad_clipping=None, train_step_lbn=None, loss_scale_policy=None, variables=None):
        super().__init__(lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn,
                         loss_scale_policy, variables)
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum < 1:
            raise ValueError(f"SGD(momentum) must be in [0, 1); got momentum={momentum!r}")
        self.momentum = float(momentum)

    def _make_tx(self, lr, step):
        if self.momentum == 0:
            return optax.scale_by_learning_rate(lr)
        return sgd_momentum(lr, self.momentum)

"""RMSProp: OneFlow's rule (epsilon inside the square root), with PyTorch's and MindSpore's forms."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["RMSProp", "rmsprop_rule"]


class RMSPropState(NamedTuple):
    mean_square: dict  # per variable, initially initial_mean_square
    mean_gradient: dict  # per variable (centered only)
    momentum: dict  # per variable (momentum > 0 only)


def rmsprop_rule(
    lr,
    decay_rate: float,
    epsilon: float,
    centered: bool,
    momentum: float,
    epsilon_inside_sqrt: bool,
    initial_mean_square: float,
) -> optax.GradientTransformation:
    """RMSProp's update as an optax transformation (see :class:`RMSProp`)."""

    def init(params):
        return RMSPropState(
            {n: jnp.full_like(p, initial_mean_square) for n, p in params.items()},
            {n: jnp.zeros_like(p) for n, p in params.items()} if centered else {},
            {n: jnp.zeros_like(p) for n, p in params.items()} if momentum else {},
        )

    def update(grads, state, params=None):
        new = RMSPropState({}, {}, {})
        deltas = {}
        for n, g in grads.items():
            ms = decay_rate * state.mean_square[n] + (1 - decay_rate) * jnp.square(g)
            new.mean_square[n] = ms.astype(g.dtype)
            den = ms
            if centered:
                mg = decay_rate * state.mean_gradient[n] + (1 - decay_rate) * g
                new.mean_gradient[n] = mg.astype(g.dtype)
                den = ms - jnp.square(mg)
            scaled = lr * g / (jnp.sqrt(den + epsilon) if epsilon_inside_sqrt else jnp.sqrt(den) + epsilon)
            if momentum:
                buf = momentum * state.momentum[n] + scaled
                new.momentum[n] = buf.astype(g.dtype)
                scaled = buf
            deltas[n] = (-scaled).astype(g.dtype)
        return deltas, new

    return optax.GradientTransformation(init, update)


class RMSProp(Optimizer):
    """RMSProp (OneFlow's ``flow.optimizer.RMSProp``).

    With ``d = decay_rate``::

        ms <- d * ms + (1 - d) * g^2                     (slot <var>-mean_square)
        centered:  mg <- d * mg + (1 - d) * g;  den = ms - mg^2     (slot <var>-mean_gradient)
        else:      den = ms
        step = lr * g / sqrt(den + epsilon)              (epsilon_inside_sqrt=True, OneFlow's)
             = lr * g / (sqrt(den) + epsilon)            (epsilon_inside_sqrt=False, PyTorch's)
        momentum == 0:  w <- w - step
        momentum  > 0:  buf <- momentum * buf + step;  w <- w - buf    (slot <var>-momentum)

    OneFlow's RMSProp has no momentum; with it, the lr is inside the buffer (TensorFlow's,
    MindSpore's and optax's rule), which equals PyTorch's ``buf = momentum*buf + g/den;
    w -= lr*buf`` while the lr is constant.

    * PyTorch ``torch.optim.RMSprop(lr, alpha, eps, momentum, centered)``:
      ``RMSProp(lr, decay_rate=alpha, epsilon=eps, centered=centered, momentum=momentum,
      epsilon_inside_sqrt=False)``.
    * MindSpore ``nn.RMSProp(lr, decay=0.9, momentum=0.0, epsilon=1e-10, centered)``:
      ``RMSProp(lr, decay_rate=decay, epsilon=epsilon, centered=centered,
      momentum=momentum, initial_mean_square=1.0)`` (MindSpore starts ``ms`` at one).

    Args:
      lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy,
      variables: see :class:`~jobflow.optimizer.Optimizer` (OneFlow's order).
      decay_rate: in [0, 1). epsilon: >= 0. centered: subtract the mean gradient's square.
      momentum, epsilon_inside_sqrt, initial_mean_square: (keyword only) as above.
    """

    _row_local = True  # elementwise rule (optimizer/sparse_rows.py)

    def __init__(
        self,
        lr_scheduler: LearningRate,
        decay_rate: float = 0.99,
        epsilon: float = 1e-8,
        centered: bool = False,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
        *,
        momentum: float = 0.0,
        epsilon_inside_sqrt: bool = True,
        initial_mean_square: float = 0.0,
    ) -> None:
        super().__init__(
            lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        owner = type(self).__name__
        self.decay_rate = checks.fraction(owner, "decay_rate", decay_rate)
        self.epsilon = checks.number(owner, "epsilon", epsilon, low=0)
        self.centered = checks.flag(owner, "centered", centered)
        self.momentum = checks.fraction(owner, "momentum", momentum)
        self.epsilon_inside_sqrt = checks.flag(owner, "epsilon_inside_sqrt", epsilon_inside_sqrt)
        self.initial_mean_square = checks.number(owner, "initial_mean_square", initial_mean_square, low=0)

    def _make_tx(self, lr, step):
        return rmsprop_rule(
            lr,
            self.decay_rate,
            self.epsilon,
            self.centered,
            self.momentum,
            self.epsilon_inside_sqrt,
            self.initial_mean_square,
        )

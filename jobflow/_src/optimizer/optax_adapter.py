"""``Optax``: any optax transformation as a jobflow optimizer."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

from jobflow._src.optimizer.base import GradClipping, LearningRate, Optimizer, VariableSelection
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["Optax"]


class Optax(Optimizer):
    """Runs an optax transformation inside the job's compiled step.

    Three forms:

    * ``Optax(optax.adamw, lr_scheduler)``: a factory ``lr -> GradientTransformation``
      (any optax alias, or ``functools.partial(optax.lamb, weight_decay=0.01)``), called
      each step with ``lr = lr_scheduler(step)``;
    * ``Optax(optax.scale_by_adam(), lr_scheduler)``: a transformation producing a
      direction ``d``; the update is ``-lr * d`` (``optax.scale_by_learning_rate``);
    * ``Optax(optax.adam(1e-3))``: a complete optimizer, its updates added as they are
      (no ``lr`` in ``job.last_info``).

    The transformation's state leaves are stored like every optimizer's: leaves that
    belong to a variable as ``<var>-<field>`` (``mu``/``nu``/``trace`` as ``m``/``v``/
    ``momentum``), others (optax's own ``count``s) as ``System-Optimizer-<job>-<i>-...``.
    Those counts advance with each applied update, like the job's step counter. The
    transformation sees a dict ``{full variable name: array}``, so masks and
    ``optax.multi_transform`` labels can key on names.

    Args:
      tx: a GradientTransformation or a factory of one (see above).
      lr_scheduler: as for every optimizer; required with a factory.
      loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables:
        (keyword only) see :class:`~jobflow.optimizer.Optimizer`.
    """

    _lr_optional = True

    def __init__(
        self,
        tx: optax.GradientTransformation,
        lr_scheduler: LearningRate | None = None,
        *,
        loss_scale_factor: float | None = None,
        grad_clipping: GradClipping | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
        variables: VariableSelection | None = None,
    ) -> None:
        if isinstance(tx, optax.GradientTransformation):
            self._factory = None
        elif callable(tx):
            if lr_scheduler is None:
                raise ValueError(
                    f"Optax(tx) got a factory {tx!r}, which needs an lr_scheduler to call it with"
                )
            made = tx(jnp.float32(0))
            if not isinstance(made, optax.GradientTransformation):
                raise TypeError(
                    f"Optax(tx): the factory {tx!r} must return an optax GradientTransformation; got {made!r}"
                )
            self._factory = tx
        else:
            raise TypeError(
                f"Optax(tx) must be an optax GradientTransformation or a function "
                f"lr -> GradientTransformation; got {tx!r}"
            )
        super().__init__(
            lr_scheduler, loss_scale_factor, grad_clipping, train_step_lbn, loss_scale_policy, variables
        )
        self.tx = tx

    def _make_tx(self, lr, step):
        if self._factory is not None:
            return self._factory(lr)
        if self.lr_scheduler is None:
            return self.tx
        return optax.chain(self.tx, optax.scale_by_learning_rate(lr))

    def __repr__(self):
        return f"Optax({self.tx!r}, lr_scheduler={self.lr_scheduler!r})"

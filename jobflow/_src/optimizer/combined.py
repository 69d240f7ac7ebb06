"""``CombinedOptimizer``: several optimizers on disjoint variable sets in one train job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobflow._src.optimizer.base import Optimizer
from jobflow._src.optimizer.loss_scale import LossScalePolicy

__all__ = ["CombinedOptimizer"]


class CombinedOptimizer(Optimizer):
    """Several optimizers in one job (OneFlow's ``flow.optimizer.CombinedOptimizer``)::

        flow.optimizer.CombinedOptimizer([
            flow.optimizer.SGD(0.1, momentum=0.9, variables=r"^backbone"),
            flow.optimizer.Adam(1e-3, variables=r"^head"),
        ]).minimize(loss)

    Each optimizer keeps its own schedule, clipping, weight decay and parameter groups;
    their variable sets must be disjoint (an overlap is an error naming the variable).
    Variables no optimizer selects are not trained. The loss scale is set here, not on
    the inner optimizers. ``job.last_info`` reports each update's learning rate as
    ``lr``, ``lr_1``, ... in order.
    """

    _lr_optional = True

    def __init__(
        self,
        optimizers: Sequence[Optimizer],
        loss_scale_factor: float | None = None,
        train_step_lbn: Any = None,
        loss_scale_policy: LossScalePolicy | None = None,
    ) -> None:
        if (
            not isinstance(optimizers, Sequence)
            or not optimizers
            or not all(isinstance(o, Optimizer) for o in optimizers)
        ):
            raise TypeError(
                f"CombinedOptimizer(optimizers) must be a non-empty list of optimizers; got {optimizers!r}"
            )
        for i, opt in enumerate(optimizers):
            if isinstance(opt, CombinedOptimizer):
                raise TypeError(
                    f"CombinedOptimizer(optimizers[{i}]) is itself a CombinedOptimizer; "
                    f"list its optimizers directly"
                )
            if opt.loss_scale_factor is not None or opt.loss_scale_policy is not None:
                raise ValueError(
                    f"CombinedOptimizer(optimizers[{i}]): {opt.label()} sets a loss scale; "
                    f"a job has one loss scale, set it on the CombinedOptimizer"
                )
        super().__init__(None, loss_scale_factor, None, train_step_lbn, loss_scale_policy)
        self.optimizers = list(optimizers)

    def leaves(self) -> list[Optimizer]:
        return [leaf for opt in self.optimizers for leaf in opt.leaves()]

    def _make_tx(self, lr, step):
        raise TypeError("CombinedOptimizer has no update rule of its own; its leaves() do the updates")

    def __repr__(self):
        return f"CombinedOptimizer({self.optimizers!r})"

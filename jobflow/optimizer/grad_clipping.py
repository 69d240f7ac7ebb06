"""Gradient clipping rules for ``Optimizer(grad_clipping=...)`` (OneFlow's ``flow.optimizer.grad_clipping``)."""

from jobflow._src.optimizer.clipping import ClipByGlobalNorm as ClipByGlobalNorm
from jobflow._src.optimizer.clipping import ClipByNorm as ClipByNorm
from jobflow._src.optimizer.clipping import ClipByValue as ClipByValue
from jobflow._src.optimizer.clipping import by_global_norm as by_global_norm
from jobflow._src.optimizer.clipping import by_norm as by_norm
from jobflow._src.optimizer.clipping import by_value as by_value

__all__ = [
    "ClipByGlobalNorm",
    "ClipByNorm",
    "ClipByValue",
    "by_global_norm",
    "by_norm",
    "by_value",
]

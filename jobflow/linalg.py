"""Linear algebra (OneFlow's ``flow.linalg``)."""

from jobflow._src.ops.array_ops import matmul as matmul

__all__ = [
    "matmul",
]

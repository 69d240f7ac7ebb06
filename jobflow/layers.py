"""Layers with variables (OneFlow's ``flow.layers``): dense, conv2d, normalization, Flax modules."""

from jobflow._src.ops.layers import batch_normalization as batch_normalization
from jobflow._src.ops.layers import conv2d as conv2d
from jobflow._src.ops.layers import dense as dense
from jobflow._src.ops.layers import flax_module as flax_module
from jobflow._src.ops.layers import layer_norm as layer_norm

__all__ = [
    "dense",
    "conv2d",
    "batch_normalization",
    "layer_norm",
    "flax_module",
]

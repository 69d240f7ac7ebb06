"""Layers with variables (OneFlow's ``flow.layers``): dense, convolutions, normalization,
PReLU, upsampling, Flax modules."""

from jobflow._src.ops.layers import batch_normalization as batch_normalization
from jobflow._src.ops.layers import batch_normalization_add_relu as batch_normalization_add_relu
from jobflow._src.ops.layers import batch_normalization_relu as batch_normalization_relu
from jobflow._src.ops.layers import conv1d as conv1d
from jobflow._src.ops.layers import conv2d as conv2d
from jobflow._src.ops.layers import conv3d as conv3d
from jobflow._src.ops.layers import dense as dense
from jobflow._src.ops.layers import flax_module as flax_module
from jobflow._src.ops.layers import layer_norm as layer_norm
from jobflow._src.ops.layers import prelu as prelu
from jobflow._src.ops.spatial import upsample_2d as upsample_2d

__all__ = [
    "dense",
    "conv1d",
    "conv2d",
    "conv3d",
    "batch_normalization",
    "batch_normalization_relu",
    "batch_normalization_add_relu",
    "layer_norm",
    "prelu",
    "upsample_2d",
    "flax_module",
]

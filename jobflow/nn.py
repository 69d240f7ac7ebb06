"""Neural-network ops (OneFlow's ``flow.nn``): convolution, pooling, activations, dropout, losses."""

from jobflow._src.ops.nn import avg_pool2d as avg_pool2d
from jobflow._src.ops.nn import bias_add as bias_add
from jobflow._src.ops.nn import conv2d as conv2d
from jobflow._src.ops.nn import dropout as dropout
from jobflow._src.ops.nn import gelu as gelu
from jobflow._src.ops.nn import layer_norm as layer_norm
from jobflow._src.ops.nn import leaky_relu as leaky_relu
from jobflow._src.ops.nn import log_softmax as log_softmax
from jobflow._src.ops.nn import max_pool2d as max_pool2d
from jobflow._src.ops.nn import moments as moments
from jobflow._src.ops.nn import relu as relu
from jobflow._src.ops.nn import sigmoid as sigmoid
from jobflow._src.ops.nn import sigmoid_cross_entropy_with_logits as sigmoid_cross_entropy_with_logits
from jobflow._src.ops.nn import softmax as softmax
from jobflow._src.ops.nn import softmax_cross_entropy_with_logits as softmax_cross_entropy_with_logits
from jobflow._src.ops.nn import (
    sparse_softmax_cross_entropy_with_logits as sparse_softmax_cross_entropy_with_logits,
)
from jobflow._src.ops.nn import tanh as tanh

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "relu",
    "leaky_relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "dropout",
    "bias_add",
    "moments",
    "layer_norm",
    "sparse_softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
]

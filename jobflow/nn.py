"""Neural-network ops (OneFlow's ``flow.nn``): convolutions, pooling, normalization,
activations, dropout, losses. OneFlow's PyTorch-named losses (``MSELoss``, ...) are
functions here too: ``flow.nn.MSELoss(input, target)`` returns the loss."""

from jobflow._src.ops.elementwise import elu as elu
from jobflow._src.ops.elementwise import hardsigmoid as hardsigmoid
from jobflow._src.ops.elementwise import hardswish as hardswish
from jobflow._src.ops.elementwise import hardtanh as hardtanh
from jobflow._src.ops.elementwise import mish as mish
from jobflow._src.ops.elementwise import relu6 as relu6
from jobflow._src.ops.elementwise import swish as swish
from jobflow._src.ops.fused import fused_bias_add_gelu as fused_bias_add_gelu
from jobflow._src.ops.fused import (
    fused_self_attention_query_mul_key_and_value as fused_self_attention_query_mul_key_and_value,
)
from jobflow._src.ops.fused import logsoftmax as logsoftmax
from jobflow._src.ops.fused import softmax_grad as softmax_grad
from jobflow._src.ops.indexing import fused_scale_tril as fused_scale_tril
from jobflow._src.ops.indexing import tril as tril
from jobflow._src.ops.losses import bce_loss as BCELoss
from jobflow._src.ops.losses import bce_with_logits_loss as BCEWithLogitsLoss
from jobflow._src.ops.losses import (
    distributed_sparse_softmax_cross_entropy_with_logits as distributed_sparse_softmax_cross_entropy_with_logits,
)
from jobflow._src.ops.losses import kl_div_loss as KLDivLoss
from jobflow._src.ops.losses import l1_loss as L1Loss
from jobflow._src.ops.losses import margin_ranking_loss as MarginRankingLoss
from jobflow._src.ops.losses import mse_loss as MSELoss
from jobflow._src.ops.losses import sparse_cross_entropy as sparse_cross_entropy
from jobflow._src.ops.losses import triplet_margin_loss as TripletMarginLoss
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
from jobflow._src.ops.normalization import batch_normalization as batch_normalization
from jobflow._src.ops.normalization import group_normalization as GroupNorm
from jobflow._src.ops.normalization import instance_normalization1d as InstanceNorm1d
from jobflow._src.ops.normalization import instance_normalization2d as InstanceNorm2d
from jobflow._src.ops.normalization import instance_normalization3d as InstanceNorm3d
from jobflow._src.ops.random_ops import fused_bias_add_dropout as fused_bias_add_dropout
from jobflow._src.ops.random_ops import fused_scale_tril_softmax_dropout as fused_scale_tril_softmax_dropout
from jobflow._src.ops.random_ops import random_mask_like as random_mask_like
from jobflow._src.ops.spatial import avg_pool3d as avg_pool3d
from jobflow._src.ops.spatial import compat_conv2d as compat_conv2d
from jobflow._src.ops.spatial import conv1d as conv1d
from jobflow._src.ops.spatial import conv2d_transpose as conv2d_transpose
from jobflow._src.ops.spatial import conv3d as conv3d
from jobflow._src.ops.spatial import max_pool3d as max_pool3d
from jobflow._src.ops.spatial import pixel_shuffle as PixelShuffle
from jobflow._src.ops.spatial import pixel_shufflev2 as PixelShufflev2
from jobflow._src.ops.spatial import torch_conv2d_transpose as torch_conv2d_transpose

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
    "conv1d",
    "conv3d",
    "compat_conv2d",
    "conv2d_transpose",
    "torch_conv2d_transpose",
    "max_pool3d",
    "avg_pool3d",
    "PixelShuffle",
    "PixelShufflev2",
    "batch_normalization",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "L1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "MSELoss",
    "MarginRankingLoss",
    "TripletMarginLoss",
    "KLDivLoss",
    "sparse_cross_entropy",
    "distributed_sparse_softmax_cross_entropy_with_logits",
    "elu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "relu6",
    "mish",
    "swish",
    "logsoftmax",
    "softmax_grad",
    "fused_bias_add_gelu",
    "fused_self_attention_query_mul_key_and_value",
    "random_mask_like",
    "fused_bias_add_dropout",
    "fused_scale_tril_softmax_dropout",
    "tril",
    "fused_scale_tril",
]

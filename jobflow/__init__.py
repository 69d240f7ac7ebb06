"""jobflow: OneFlow-style static jobs compiled to one XLA program each, on JAX.

import jobflow as flow
import jobflow.typing as tp

@flow.global_function(type="train")
def train_job(x: tp.Numpy.Placeholder((32, 4)), y: tp.Numpy.Placeholder((32,), dtype=flow.int32)) -> tp.Numpy:
    logits = flow.layers.dense(x, 3, kernel_initializer=flow.random_normal_initializer(), name="fc")
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
    flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
    return loss
"""

from numpy import dtype as dtype

from jobflow import checkpoint as checkpoint
from jobflow import config as config
from jobflow import data as data
from jobflow import distribute as distribute
from jobflow import distributed as distributed
from jobflow import errors as errors
from jobflow import image as image
from jobflow import layers as layers
from jobflow import linalg as linalg
from jobflow import math as math
from jobflow import nn as nn
from jobflow import optimizer as optimizer
from jobflow import profiler as profiler
from jobflow import random as random
from jobflow import regularizers as regularizers
from jobflow import schedule as schedule
from jobflow import scope as scope
from jobflow import summary as summary
from jobflow import system as system
from jobflow import train as train
from jobflow import typing as typing
from jobflow import unittest as unittest
from jobflow._src.core.dtypes import bfloat16 as bfloat16
from jobflow._src.core.dtypes import char as char
from jobflow._src.core.dtypes import double as double
from jobflow._src.core.dtypes import float16 as float16
from jobflow._src.core.dtypes import float32 as float  # noqa: F401 - OneFlow's name
from jobflow._src.core.dtypes import float32 as float32
from jobflow._src.core.dtypes import float64 as float64
from jobflow._src.core.dtypes import half as half
from jobflow._src.core.dtypes import int8 as int8
from jobflow._src.core.dtypes import int32 as int  # noqa: F401 - OneFlow's name
from jobflow._src.core.dtypes import int32 as int32
from jobflow._src.core.dtypes import int64 as int64
from jobflow._src.core.dtypes import int64 as long  # noqa: F401 - OneFlow's name
from jobflow._src.core.dtypes import uint8 as uint8
from jobflow._src.core.errors import NonFiniteStepsError as NonFiniteStepsError
from jobflow._src.core.version import __version__ as __version__
from jobflow._src.data.image_nodes import Resize as image_resize  # noqa: F401 - OneFlow's alias
from jobflow._src.data.image_nodes import flip as image_flip  # noqa: F401 - OneFlow's alias
from jobflow._src.data.image_nodes import normalize as image_normalize  # noqa: F401 - OneFlow's alias
from jobflow._src.data.image_nodes import random_crop as image_random_crop  # noqa: F401 - OneFlow's alias
from jobflow._src.data.image_nodes import target_resize as image_target_resize  # noqa: F401 - OneFlow's alias
from jobflow._src.graph.function_config import FunctionConfig as ExecutionConfig  # noqa: F401 - OneFlow's alias
from jobflow._src.graph.function_config import FunctionConfig as FunctionConfig
from jobflow._src.graph.function_config import function_config as function_config
from jobflow._src.graph.runtime_knobs import eager_execution_enabled as eager_execution_enabled
from jobflow._src.graph.runtime_knobs import enable_eager_execution as enable_eager_execution
from jobflow._src.graph.scope import namespace as name_scope  # noqa: F401 - OneFlow's deprecated alias
from jobflow._src.graph.scope import placement as device_prior_placement  # noqa: F401 - deprecated alias
from jobflow._src.graph.scope import placement as fixed_placement  # noqa: F401 - deprecated alias
from jobflow._src.graph.variables import constant_initializer as constant_initializer
from jobflow._src.graph.variables import get_variable as get_variable
from jobflow._src.graph.variables import glorot_normal_initializer as glorot_normal_initializer
from jobflow._src.graph.variables import glorot_uniform_initializer as glorot_uniform_initializer
from jobflow._src.graph.variables import kaiming_initializer as kaiming_initializer
from jobflow._src.graph.variables import ones_initializer as ones_initializer
from jobflow._src.graph.variables import random_normal_initializer as random_normal_initializer
from jobflow._src.graph.variables import random_uniform_initializer as random_uniform_initializer
from jobflow._src.graph.variables import truncated_normal as truncated_normal
from jobflow._src.graph.variables import truncated_normal_initializer as truncated_normal_initializer
from jobflow._src.graph.variables import variance_scaling_initializer as variance_scaling_initializer
from jobflow._src.graph.variables import xavier_normal_initializer as xavier_normal_initializer
from jobflow._src.graph.variables import xavier_uniform_initializer as xavier_uniform_initializer
from jobflow._src.graph.variables import zeros_initializer as zeros_initializer
from jobflow._src.ops.array_ops import amp_white_identity as amp_white_identity
from jobflow._src.ops.array_ops import broadcast_like as broadcast_like
from jobflow._src.ops.array_ops import broadcast_to_compatible_with as broadcast_to_compatible_with
from jobflow._src.ops.array_ops import cast as cast
from jobflow._src.ops.array_ops import cast_to_static_shape as cast_to_static_shape
from jobflow._src.ops.array_ops import concat as concat
from jobflow._src.ops.array_ops import constant as constant
from jobflow._src.ops.array_ops import (
    convert_oneflow_dtype_to_numpy_dtype as convert_oneflow_dtype_to_numpy_dtype,
)
from jobflow._src.ops.array_ops import dynamic_reshape as dynamic_reshape
from jobflow._src.ops.array_ops import expand as expand
from jobflow._src.ops.array_ops import expand_dims as expand_dims
from jobflow._src.ops.array_ops import flatten as flatten
from jobflow._src.ops.array_ops import identity as identity
from jobflow._src.ops.array_ops import identity_n as identity_n
from jobflow._src.ops.array_ops import matmul as matmul
from jobflow._src.ops.array_ops import ones as ones
from jobflow._src.ops.array_ops import pad as pad
from jobflow._src.ops.array_ops import pad_grad as pad_grad
from jobflow._src.ops.array_ops import reshape as reshape
from jobflow._src.ops.array_ops import reshape_like as reshape_like
from jobflow._src.ops.array_ops import slice as slice
from jobflow._src.ops.array_ops import squeeze as squeeze
from jobflow._src.ops.array_ops import stack as stack
from jobflow._src.ops.array_ops import transpose as transpose
from jobflow._src.ops.array_ops import zeros as zeros
from jobflow._src.ops.creation import constant_like as constant_like
from jobflow._src.ops.creation import constant_scalar as constant_scalar
from jobflow._src.ops.creation import ones_like as ones_like
from jobflow._src.ops.creation import range as range
from jobflow._src.ops.creation import zeros_like as zeros_like
from jobflow._src.ops.debug import watch as watch
from jobflow._src.ops.debug import watch_diff as watch_diff
from jobflow._src.ops.distribute_ops import cast_to_current_logical_view as cast_to_current_logical_view
from jobflow._src.ops.distribute_ops import hierarchical_parallel_cast as hierarchical_parallel_cast
from jobflow._src.ops.distribute_ops import parallel_cast as parallel_cast
from jobflow._src.ops.indexing import argsort as argsort
from jobflow._src.ops.indexing import diag as diag
from jobflow._src.ops.indexing import dim_gather as dim_gather
from jobflow._src.ops.indexing import gather as gather
from jobflow._src.ops.indexing import gather_nd as gather_nd
from jobflow._src.ops.indexing import masked_fill as masked_fill
from jobflow._src.ops.indexing import one_hot as one_hot
from jobflow._src.ops.indexing import reverse as reverse
from jobflow._src.ops.indexing import scatter_nd as scatter_nd
from jobflow._src.ops.indexing import slice_update as slice_update
from jobflow._src.ops.indexing import slice_v2 as slice_v2
from jobflow._src.ops.indexing import sort as sort
from jobflow._src.ops.indexing import tensor_scatter_nd_add as tensor_scatter_nd_add
from jobflow._src.ops.indexing import tensor_scatter_nd_update as tensor_scatter_nd_update
from jobflow._src.ops.indexing import where as where
from jobflow._src.ops.losses import combined_margin_loss as combined_margin_loss
from jobflow._src.ops.losses import ctc_loss as ctc_loss
from jobflow._src.ops.losses import smooth_l1_loss as smooth_l1_loss
from jobflow._src.ops.math import clip_by_value as clamp  # noqa: F401 - OneFlow's alias
from jobflow._src.ops.math import clip_by_value as clip  # noqa: F401 - OneFlow's alias
from jobflow._src.ops.math import clip_by_value as clip_by_scalar  # noqa: F401 - OneFlow's alias
from jobflow._src.ops.math import clip_by_value as clip_by_value
from jobflow._src.ops.reductions import count_not_finite as count_not_finite
from jobflow._src.ops.reductions import elem_cnt as elem_cnt
from jobflow._src.ops.reductions import in_top_k as in_top_k
from jobflow._src.ops.reductions import multi_count_not_finite as multi_count_not_finite
from jobflow._src.ops.reductions import unsorted_batch_segment_sum as unsorted_batch_segment_sum
from jobflow._src.ops.reductions import unsorted_segment_sum as unsorted_segment_sum
from jobflow._src.ops.reductions import unsorted_segment_sum_like as unsorted_segment_sum_like
from jobflow._src.ops.spatial import constant_pad2d as constant_pad2d
from jobflow._src.ops.spatial import reflection_pad2d as reflection_pad2d
from jobflow._src.ops.spatial import replication_pad2d as replication_pad2d
from jobflow._src.ops.spatial import same_padding as same_padding
from jobflow._src.ops.spatial import zero_pad2d as zero_pad2d
from jobflow._src.ops.state import assign as assign
from jobflow._src.runtime.job import Job as Job
from jobflow._src.runtime.job import global_function as global_function
from jobflow._src.runtime.progress import TrainingProgress as TrainingProgress
from jobflow._src.runtime.progress import progress as progress
from jobflow._src.runtime.session import clear_default_session as clear_default_session
from jobflow._src.runtime.session import get_all_variables as get_all_variables
from jobflow._src.runtime.session import load_variables as load_variables
from jobflow._src.runtime.session import sync_default_session as sync_default_session
from jobflow.config import env as env

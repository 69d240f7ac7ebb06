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

from jobflow import checkpoint as checkpoint
from jobflow import config as config
from jobflow import errors as errors
from jobflow import layers as layers
from jobflow import math as math
from jobflow import nn as nn
from jobflow import optimizer as optimizer
from jobflow import regularizers as regularizers
from jobflow import schedule as schedule
from jobflow import scope as scope
from jobflow import train as train
from jobflow import typing as typing
from jobflow._src.core.dtypes import bfloat16 as bfloat16
from jobflow._src.core.dtypes import char as char
from jobflow._src.core.dtypes import double as double
from jobflow._src.core.dtypes import float16 as float16
from jobflow._src.core.dtypes import float32 as float  # noqa: F401 - OneFlow's name
from jobflow._src.core.dtypes import float32 as float32
from jobflow._src.core.dtypes import float64 as float64
from jobflow._src.core.dtypes import half as half
from jobflow._src.core.dtypes import int8 as int8
from jobflow._src.core.dtypes import int32 as int32
from jobflow._src.core.dtypes import int64 as int64
from jobflow._src.core.dtypes import uint8 as uint8
from jobflow._src.core.errors import NonFiniteStepsError as NonFiniteStepsError
from jobflow._src.core.version import __version__ as __version__
from jobflow._src.graph.function_config import FunctionConfig as FunctionConfig
from jobflow._src.graph.function_config import function_config as function_config
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
from jobflow._src.ops.array_ops import cast as cast
from jobflow._src.ops.array_ops import concat as concat
from jobflow._src.ops.array_ops import constant as constant
from jobflow._src.ops.array_ops import expand_dims as expand_dims
from jobflow._src.ops.array_ops import flatten as flatten
from jobflow._src.ops.array_ops import gather as gather
from jobflow._src.ops.array_ops import identity as identity
from jobflow._src.ops.array_ops import matmul as matmul
from jobflow._src.ops.array_ops import ones as ones
from jobflow._src.ops.array_ops import pad as pad
from jobflow._src.ops.array_ops import reshape as reshape
from jobflow._src.ops.array_ops import slice as slice
from jobflow._src.ops.array_ops import squeeze as squeeze
from jobflow._src.ops.array_ops import stack as stack
from jobflow._src.ops.array_ops import transpose as transpose
from jobflow._src.ops.array_ops import zeros as zeros
from jobflow._src.runtime.job import Job as Job
from jobflow._src.runtime.job import global_function as global_function
from jobflow._src.runtime.session import clear_default_session as clear_default_session
from jobflow._src.runtime.session import get_all_variables as get_all_variables
from jobflow._src.runtime.session import load_variables as load_variables
from jobflow._src.runtime.session import sync_default_session as sync_default_session
from jobflow.config import env as env

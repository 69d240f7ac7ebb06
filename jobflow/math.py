"""Element-wise and reduction math (OneFlow's ``flow.math``)."""

from jobflow._src.ops.array_ops import broadcast_to_compatible_with as broadcast_to_compatible_with
from jobflow._src.ops.elementwise import acos as acos
from jobflow._src.ops.elementwise import acosh as acosh
from jobflow._src.ops.elementwise import asin as asin
from jobflow._src.ops.elementwise import asinh as asinh
from jobflow._src.ops.elementwise import atan as atan
from jobflow._src.ops.elementwise import atan2 as atan2
from jobflow._src.ops.elementwise import atanh as atanh
from jobflow._src.ops.elementwise import ceil as ceil
from jobflow._src.ops.elementwise import cos as cos
from jobflow._src.ops.elementwise import cosh as cosh
from jobflow._src.ops.elementwise import erf as erf
from jobflow._src.ops.elementwise import erfc as erfc
from jobflow._src.ops.elementwise import expm1 as expm1
from jobflow._src.ops.elementwise import floor as floor
from jobflow._src.ops.elementwise import floordiv as floordiv
from jobflow._src.ops.elementwise import greater_equal as greater_equal
from jobflow._src.ops.elementwise import less_equal as less_equal
from jobflow._src.ops.elementwise import lgamma as lgamma
from jobflow._src.ops.elementwise import log1p as log1p
from jobflow._src.ops.elementwise import log_sigmoid as log_sigmoid
from jobflow._src.ops.elementwise import logical_and as logical_and
from jobflow._src.ops.elementwise import mod as mod
from jobflow._src.ops.elementwise import polyval as polyval
from jobflow._src.ops.elementwise import reciprocal as reciprocal
from jobflow._src.ops.elementwise import reciprocal_no_nan as reciprocal_no_nan
from jobflow._src.ops.elementwise import rint as rint
from jobflow._src.ops.elementwise import round as round
from jobflow._src.ops.elementwise import sigmoid_v2 as sigmoid_v2
from jobflow._src.ops.elementwise import sign as sign
from jobflow._src.ops.elementwise import sin as sin
from jobflow._src.ops.elementwise import sinh as sinh
from jobflow._src.ops.elementwise import softplus as softplus
from jobflow._src.ops.elementwise import squared_difference as squared_difference
from jobflow._src.ops.elementwise import tan as tan
from jobflow._src.ops.elementwise import tanh_v2 as tanh_v2
from jobflow._src.ops.elementwise import xdivy as xdivy
from jobflow._src.ops.elementwise import xlogy as xlogy
from jobflow._src.ops.fused import gelu_grad as gelu_grad
from jobflow._src.ops.fused import sigmoid_grad as sigmoid_grad
from jobflow._src.ops.indexing import fused_scale_tril as fused_scale_tril
from jobflow._src.ops.indexing import tril as tril
from jobflow._src.ops.math import abs as abs
from jobflow._src.ops.math import add as add
from jobflow._src.ops.math import add_n as add_n
from jobflow._src.ops.math import argmax as argmax
from jobflow._src.ops.math import clip_by_value as clip_by_value
from jobflow._src.ops.math import divide as divide
from jobflow._src.ops.math import equal as equal
from jobflow._src.ops.math import exp as exp
from jobflow._src.ops.math import gelu as gelu
from jobflow._src.ops.math import greater as greater
from jobflow._src.ops.math import less as less
from jobflow._src.ops.math import log as log
from jobflow._src.ops.math import maximum as maximum
from jobflow._src.ops.math import minimum as minimum
from jobflow._src.ops.math import multiply as multiply
from jobflow._src.ops.math import negative as negative
from jobflow._src.ops.math import not_equal as not_equal
from jobflow._src.ops.math import pow as pow
from jobflow._src.ops.math import reduce_max as reduce_max
from jobflow._src.ops.math import reduce_mean as reduce_mean
from jobflow._src.ops.math import reduce_min as reduce_min
from jobflow._src.ops.math import reduce_prod as reduce_prod
from jobflow._src.ops.math import reduce_sum as reduce_sum
from jobflow._src.ops.math import relu as relu
from jobflow._src.ops.math import rsqrt as rsqrt
from jobflow._src.ops.math import sigmoid as sigmoid
from jobflow._src.ops.math import sqrt as sqrt
from jobflow._src.ops.math import square as square
from jobflow._src.ops.math import subtract as subtract
from jobflow._src.ops.math import tanh as tanh
from jobflow._src.ops.math import top_k as top_k
from jobflow._src.ops.random_ops import fused_scale_tril_softmax_dropout as fused_scale_tril_softmax_dropout
from jobflow._src.ops.reductions import in_top_k as in_top_k
from jobflow._src.ops.reductions import l2_normalize as l2_normalize
from jobflow._src.ops.reductions import reduce_all as reduce_all
from jobflow._src.ops.reductions import reduce_any as reduce_any
from jobflow._src.ops.reductions import reduce_euclidean_norm as reduce_euclidean_norm
from jobflow._src.ops.reductions import reduce_logsumexp as reduce_logsumexp
from jobflow._src.ops.reductions import reduce_std as reduce_std
from jobflow._src.ops.reductions import reduce_variance as reduce_variance
from jobflow._src.ops.reductions import reduced_shape_elem_cnt as reduced_shape_elem_cnt
from jobflow._src.ops.reductions import two_stage_reduce_max as two_stage_reduce_max
from jobflow._src.ops.reductions import two_stage_reduce_min as two_stage_reduce_min
from jobflow._src.ops.reductions import unsorted_batch_segment_sum as unsorted_batch_segment_sum
from jobflow._src.ops.reductions import unsorted_segment_sum as unsorted_segment_sum
from jobflow._src.ops.reductions import unsorted_segment_sum_like as unsorted_segment_sum_like

__all__ = [
    "add",
    "add_n",
    "subtract",
    "multiply",
    "divide",
    "negative",
    "abs",
    "square",
    "sqrt",
    "rsqrt",
    "exp",
    "log",
    "pow",
    "maximum",
    "minimum",
    "sigmoid",
    "tanh",
    "relu",
    "gelu",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "argmax",
    "top_k",
    "equal",
    "not_equal",
    "greater",
    "less",
    "clip_by_value",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "cos",
    "cosh",
    "erf",
    "erfc",
    "expm1",
    "floor",
    "lgamma",
    "log1p",
    "log_sigmoid",
    "reciprocal",
    "reciprocal_no_nan",
    "rint",
    "round",
    "sigmoid_v2",
    "sign",
    "sin",
    "sinh",
    "softplus",
    "tan",
    "tanh_v2",
    "atan2",
    "floordiv",
    "mod",
    "xdivy",
    "xlogy",
    "squared_difference",
    "greater_equal",
    "less_equal",
    "logical_and",
    "polyval",
    "reduce_all",
    "reduce_any",
    "reduce_euclidean_norm",
    "reduce_logsumexp",
    "reduce_std",
    "reduce_variance",
    "reduced_shape_elem_cnt",
    "two_stage_reduce_max",
    "two_stage_reduce_min",
    "in_top_k",
    "l2_normalize",
    "unsorted_segment_sum",
    "unsorted_segment_sum_like",
    "unsorted_batch_segment_sum",
    "tril",
    "fused_scale_tril",
    "fused_scale_tril_softmax_dropout",
    "sigmoid_grad",
    "gelu_grad",
    "broadcast_to_compatible_with",
]

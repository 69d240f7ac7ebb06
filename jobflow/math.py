"""Elementwise and reduction math (OneFlow's ``flow.math``)."""

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
]

"""Neural-network ops (``flow.nn``) with OneFlow's names, arguments and layouts.

Layouts default to NCHW. ``padding="SAME"`` is OneFlow's SAME_LOWER: the total padding
``max(0, (ceil(in/s) - 1) * s + (k - 1) * d + 1 - in)`` is split with the larger half
*before* (TF's SAME puts it after; use ``"SAME_UPPER"`` for that).
"""

from __future__ import annotations

import math as _pymath
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import ArgumentError
from jobflow._src.ops import amp as _amp
from jobflow._src.ops import lowering as _lowering
from jobflow._src.ops.math import gelu, relu, sigmoid, tanh

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

_CHANNELS_FIRST = ("NCHW", "channels_first", "NCW", "NCDHW")


def _pair(value, n, what):
    if isinstance(value, numbers.Integral):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) == n + 2:  # OneFlow also accepts full-rank lists [1, 1, s, s]
        value = value[2:] if value[:2] == (1, 1) else value[1:-1]
    if len(value) != n:
        raise ValueError(f"{what} must be an int or {n} ints; got {value!r}")
    return value


def _padding(padding, in_sizes, kernel, strides, dilations, channels_first, op):
    """Explicit (before, after) pairs for each spatial axis."""
    n = len(in_sizes)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return [(0, 0)] * n
        if mode not in ("SAME", "SAME_LOWER", "SAME_UPPER"):
            raise ValueError(
                f"{op}(padding) must be 'VALID', 'SAME', 'SAME_LOWER', 'SAME_UPPER' or pairs; got {padding!r}"
            )
        pads = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small = total // 2
            pads.append((total - small, small) if mode in ("SAME", "SAME_LOWER") else (small, total - small))
        return pads
    pairs = [tuple(int(v) for v in p) if isinstance(p, (list, tuple)) else (int(p), int(p)) for p in padding]
    if len(pairs) == n + 2:
        pairs = pairs[2:] if channels_first else pairs[1:-1]
    if len(pairs) != n or any(len(p) != 2 for p in pairs):
        raise ValueError(f"{op}(padding) needs one (before, after) pair per spatial axis; got {padding!r}")
    return pairs


def conv2d(
    input: jax.Array,
    filters: jax.Array,
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Any] = "VALID",
    data_format: str = "NCHW",
    dilations: int | Sequence[int] | None = None,
    groups: int = 1,
    name: str | None = None,
) -> jax.Array:
    """2-D convolution of ``input`` with the weight array ``filters``.

    ``out[n, o, i, j] = sum_{c, a, b} x_pad[n, g*C/G + c, i*sh + a*dh, j*sw + b*dw] *
    w[o, c, a, b]`` for the group ``g`` of output channel ``o`` (PyTorch's and OneFlow's
    cross-correlation). Weight layout: ``(out, in/groups, kh, kw)`` for NCHW,
    ``(out, kh, kw, in/groups)`` for NHWC. Computed channels-last inside (the NCHW result
    equals an NCHW convolution to float rounding; ``ops/lowering.py``). A white-list op
    under automatic mixed precision.
    """
    return _conv2d(input, filters, strides, padding, data_format, dilations, groups)


def _conv2d(input, filters, strides, padding, data_format, dilations, groups, bias=None):
    """:func:`conv2d`, with an optional per-channel ``bias`` added channels-last."""
    cf = data_format in _CHANNELS_FIRST
    if input.ndim != 4 or filters.ndim != 4:
        raise ValueError(f"conv2d needs rank-4 input and filters; got {input.shape} and {filters.shape}")
    stride = _pair(strides, 2, "conv2d(strides)")
    dilation = _pair(1 if dilations is None else dilations, 2, "conv2d(dilations)")
    spatial = input.shape[2:] if cf else input.shape[1:3]
    kernel = filters.shape[2:] if cf else filters.shape[1:3]
    pads = _padding(padding, spatial, kernel, stride, dilation, cf, "conv2d")
    x, w = _amp.white(input, filters)
    spec = "OIHW" if cf else "OHWI"
    return _lowering.conv(x, w, stride, pads, dilation, groups, cf, spec, bias=bias)


def _pool(input, ksize, strides, padding, data_format, ceil_mode, op, n=2):
    """Window, strides and explicit padding of an ``n``-d pool over ``input``."""
    if input.ndim != n + 2:
        raise ValueError(f"{op} needs a rank-{n + 2} input; got shape {input.shape}")
    cf = data_format in _CHANNELS_FIRST
    ksize = _pair(ksize, n, f"{op}(ksize)")
    strides = _pair(strides, n, f"{op}(strides)")
    spatial = input.shape[2:] if cf else input.shape[1:-1]
    pads = _padding(padding, spatial, ksize, strides, (1,) * n, cf, op)
    if ceil_mode:
        new = []
        for size, k, s, (lo, hi) in zip(spatial, ksize, strides, pads):
            out = _pymath.ceil((size + lo + hi - k) / s) + 1
            if (out - 1) * s >= size + lo:  # the last window must start inside the input
                out -= 1
            new.append((lo, max(hi, (out - 1) * s + k - size - lo)))
        pads = new
    if cf:
        window, stride, full = (1, 1, *ksize), (1, 1, *strides), [(0, 0), (0, 0), *pads]
    else:
        window, stride, full = (1, *ksize, 1), (1, *strides, 1), [(0, 0), *pads, (0, 0)]
    return window, stride, full, cf


def _max_pool(input, window, stride, pads, cf):
    """Max pooling: reshape + max when the windows tile the input (``ops/lowering.py``),
    else ``reduce_window``; the gradient goes to the first maximum of each window."""
    blocks = _lowering.block_pool(input, window, stride, pads, cf, "max")
    if blocks is not None:
        return blocks
    init = -jnp.inf if jnp.issubdtype(input.dtype, jnp.floating) else int(jnp.iinfo(input.dtype).min)
    return jax.lax.reduce_window(input, init, jax.lax.max, window, stride, pads)


def _avg_pool(input, window, stride, pads, cf):
    """Average pooling: reshape + mean when the windows tile the input, else
    ``reduce_window`` sums over the count of unpadded positions."""
    blocks = _lowering.block_pool(input, window, stride, pads, cf, "avg")
    if blocks is not None:
        return _like(blocks, input)
    x = _wide(input)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, stride, pads)
    ones = jnp.ones(input.shape, x.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, stride, pads)
    return _like(total / count, input)


def max_pool2d(
    input: ArrayLike,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: str = "NCHW",
    ceil_mode: bool = False,
    name: str | None = None,
) -> jax.Array:
    """Max pooling; padded positions never win."""
    return _max_pool(input, *_pool(input, ksize, strides, padding, data_format, ceil_mode, "max_pool2d"))


def avg_pool2d(
    input: ArrayLike,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: str = "NCHW",
    ceil_mode: bool = False,
    name: str | None = None,
) -> jax.Array:
    """Average pooling; padded positions are excluded from the count (cuDNN's
    ``COUNT_EXCLUDE_PADDING``, TF's rule)."""
    return _avg_pool(input, *_pool(input, ksize, strides, padding, data_format, ceil_mode, "avg_pool2d"))


def leaky_relu(x: jax.Array, alpha: float = 0.2, name: str | None = None) -> jax.Array:
    return jnp.where(x >= 0, x, alpha * x)


def _wide(x):
    """``x`` in at least float32 (for sums over low-precision values)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _like(y, x):
    """``y`` (computed by ``_wide``) back in the dtype of the float input ``x``."""
    return y.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else y


def softmax(logits: jax.Array, axis: int | None = None, name: str | None = None) -> jax.Array:
    """Softmax along ``axis`` (default: the last), accumulated in float32; the result
    has the input's dtype (a gray-list op under mixed precision)."""
    return _like(jax.nn.softmax(_wide(logits), axis=-1 if axis is None else axis), logits)


def log_softmax(logits: jax.Array, axis: int | None = None, name: str | None = None) -> jax.Array:
    """Log-softmax along ``axis`` (default: the last); float32 under mixed precision."""
    (logits,) = _amp.float32(logits)
    return jax.nn.log_softmax(logits, axis=-1 if axis is None else axis)


def dropout(
    x: jax.Array,
    rate: float,
    noise_shape: Sequence[int] | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> jax.Array:
    """Zeroes each element with probability ``rate`` and scales the rest by ``1/(1-rate)``.

    The identity in predict jobs. In train jobs each call draws a fresh mask from the
    job's random stream (seeded per ``function_config.seed`` / ``flow.config.seed``);
    ``seed`` fixes the mask stream of this op instead.
    """
    if not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"dropout(rate) must be in [0, 1); got rate={rate!r}")
    ctx = _trace.require("dropout")
    key = ctx.next_key()
    if not ctx.is_train or rate == 0:
        return x
    if seed is not None:
        key = jax.random.fold_in(jax.random.key(int(seed)), jax.random.randint(key, (), 0, 2**31 - 1))
    shape = x.shape if noise_shape is None else tuple(noise_shape)
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype)).astype(x.dtype)


def bias_add(
    value: jax.Array, bias: jax.Array, data_format: str | None = None, name: str | None = None
) -> jax.Array:
    """Adds the 1-D ``bias`` along the channel axis: axis 1 by default and for ``NC...``
    formats, the last axis for ``N...C`` formats (OneFlow's rule)."""
    axis = 1
    if data_format is not None and not data_format.startswith("NC") and data_format.endswith("C"):
        axis = value.ndim - 1
    if value.ndim < 2:
        axis = value.ndim - 1
    shape = [1] * value.ndim
    shape[axis] = bias.shape[0]
    return value + jnp.reshape(bias, shape).astype(value.dtype)


def moments(
    x: jax.Array, axes: int | Sequence[int], keepdims: bool = False, name: str | None = None
) -> tuple[jax.Array, jax.Array]:
    """``(mean, variance)`` of ``x`` over ``axes`` (population variance)."""
    axis = tuple(axes) if isinstance(axes, (list, tuple)) else (axes,)
    (x,) = _amp.float32(x)
    mean = jnp.mean(x, axis=axis, keepdims=keepdims)
    var = jnp.var(x, axis=axis, keepdims=keepdims)
    return mean, var


def layer_norm(
    inputs: jax.Array,
    gamma: jax.Array | None = None,
    beta: jax.Array | None = None,
    begin_norm_axis: int = 1,
    begin_params_axis: int = -1,
    epsilon: float = 1e-5,
    name: str | None = None,
) -> jax.Array:
    """Normalizes over axes ``begin_norm_axis..`` and applies ``gamma``/``beta`` (shape
    ``inputs.shape[begin_params_axis:]``). Statistics in float32."""
    nd = inputs.ndim
    axes = tuple(range(begin_norm_axis % nd, nd))
    x = inputs.astype(jnp.float32)
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.var(x, axis=axes, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + epsilon)

    def full_rank(p):
        return jnp.reshape(p.astype(jnp.float32), (1,) * (nd - p.ndim) + p.shape)

    if gamma is not None:
        y = y * full_rank(gamma)
    if beta is not None:
        y = y + full_rank(beta)
    return y.astype(inputs.dtype)


def _shapes(labels: jax.Array, logits: jax.Array) -> str:
    return f"got labels shape {tuple(labels.shape)} and logits shape {tuple(logits.shape)}"


def _swapped(fn: str, labels: jax.Array, logits: jax.Array) -> str:
    """A hint when the arguments look swapped (labels carrying the class axis)."""
    looks = tuple(labels.shape[:-1]) == tuple(logits.shape) and labels.ndim >= 1
    float_labels = not jnp.issubdtype(labels.dtype, jnp.integer)
    if looks or (jnp.issubdtype(logits.dtype, jnp.integer) and float_labels):
        return f": did you swap them? {fn}(labels, logits) takes labels first"
    return ""


def sparse_softmax_cross_entropy_with_logits(
    labels: jax.Array, logits: jax.Array, name: str | None = None
) -> jax.Array:
    """Per-example ``-log softmax(logits)[label]`` (float32).

    ``labels`` (integer class ids) has shape ``logits.shape[:-1]`` (a trailing 1 is
    accepted). A shape mismatch raises :class:`~jobflow.errors.ArgumentError` with both
    shapes, and says so when the two arguments look swapped. With
    ``function_config().check_input_values(True)``, a job argument passed as ``labels``
    is checked to lie in ``[0, num_classes)`` before each call.
    """
    fn = "sparse_softmax_cross_entropy_with_logits"
    _trace.note_label_range(labels, logits.shape[-1], fn)
    if labels.ndim == logits.ndim and labels.ndim and labels.shape[-1] == 1:
        labels = jnp.squeeze(labels, -1)
    if labels.shape != logits.shape[:-1]:
        raise ArgumentError(
            f"{fn}(labels, logits) takes labels shape logits.shape[:-1] (one class id per row of "
            f"logits); {_shapes(labels, logits)}{_swapped(fn, labels, logits)}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ArgumentError(
            f"{fn} needs integer labels (class ids); got labels dtype {labels.dtype}"
            f"{_swapped(fn, labels, logits)}"
        )
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def _same_shape(fn: str, labels: jax.Array, logits: jax.Array) -> None:
    if labels.shape == logits.shape:
        return
    hint = ""
    if tuple(labels.shape) == tuple(logits.shape[:-1]):
        hint = (
            ": labels look like class ids (shape logits.shape[:-1]); use "
            "sparse_softmax_cross_entropy_with_logits or one-hot them"
        )
    elif tuple(labels.shape[:-1]) == tuple(logits.shape):
        hint = f": did you swap them? {fn}(labels, logits) takes labels first"
    raise ArgumentError(
        f"{fn}(labels, logits) takes labels shape equal to logits shape; {_shapes(labels, logits)}{hint}"
    )


def softmax_cross_entropy_with_logits(
    labels: jax.Array, logits: jax.Array, name: str | None = None
) -> jax.Array:
    """Per-example ``-sum(labels * log_softmax(logits), -1)`` (float32); ``labels`` (class
    probabilities) has the shape of ``logits``."""
    _same_shape("softmax_cross_entropy_with_logits", labels, logits)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), labels.astype(jnp.float32))


def sigmoid_cross_entropy_with_logits(
    labels: jax.Array, logits: jax.Array, name: str | None = None
) -> jax.Array:
    """Element-wise ``max(x, 0) - x * z + log(1 + exp(-|x|))`` (float32); ``labels`` has
    the shape of ``logits``."""
    _same_shape("sigmoid_cross_entropy_with_logits", labels, logits)
    return optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), labels.astype(jnp.float32))

"""Convolutions, pools, paddings and resampling over spatial axes beyond
``nn.conv2d`` / ``max_pool2d`` / ``avg_pool2d`` (see ``ops/nn.py`` for the padding rules):
``conv1d``, ``conv3d``, ``compat_conv2d``, ``conv2d_transpose``, ``torch_conv2d_transpose``,
``max_pool3d``, ``avg_pool3d``, ``same_padding``, the ``*_pad2d`` family, ``upsample_2d``
and ``PixelShuffle``.

Under automatic mixed precision only ``conv2d`` is a white-list op in OneFlow:
``conv1d``, ``conv3d`` and the transposed convolutions compute in float32;
``avg_pool3d`` is gray, ``max_pool3d`` and ``same_padding`` follow their input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jobflow._src.core import checks
from jobflow._src.ops import amp as _amp
from jobflow._src.ops import lowering as _lowering
from jobflow._src.ops import nn as _nn

__all__ = [
    "conv1d",
    "conv3d",
    "compat_conv2d",
    "conv2d_transpose",
    "torch_conv2d_transpose",
    "max_pool3d",
    "avg_pool3d",
    "same_padding",
    "reflection_pad2d",
    "replication_pad2d",
    "constant_pad2d",
    "zero_pad2d",
    "upsample_2d",
    "pixel_shuffle",
    "pixel_shufflev2",
]

_WEIGHT_SPECS = {1: ("OIW", "OWI"), 3: ("OIDHW", "ODHWI")}  # channels-first, channels-last


def _conv_nd(input, filters, strides, padding, data_format, dilations, groups, n, op, bias=None):
    """An ``n``-d convolution: weight ``(out, in/groups, *k)`` channels-first, else
    ``(out, *k, in/groups)``; OneFlow's SAME (SAME_LOWER) padding."""
    if input.ndim != n + 2 or filters.ndim != n + 2:
        raise ValueError(f"{op} needs rank-{n + 2} input and filters; got {input.shape} and {filters.shape}")
    cf = data_format in _nn._CHANNELS_FIRST
    strides = _nn._pair(strides, n, f"{op}(strides)")
    dilations = _nn._pair(1 if dilations is None else dilations, n, f"{op}(dilations)")
    spatial = input.shape[2:] if cf else input.shape[1:-1]
    kernel = filters.shape[2:] if cf else filters.shape[1:-1]
    pads = _nn._padding(padding, spatial, kernel, strides, dilations, cf, op)
    x, w = _amp.float32(input, filters)
    spec = _WEIGHT_SPECS[n][0 if cf else 1]
    return _lowering.conv(x, w, strides, pads, dilations, groups, cf, spec, bias=bias)


def conv1d(
    input: ArrayLike,
    filters: ArrayLike,
    strides: Any,
    padding: Any,
    data_format: str = "NCW",
    dilations: Any = None,
    groups: int = 1,
    name: str | None = None,
) -> jax.Array:
    """1-D convolution (``"NCW"`` or ``"NWC"``); weight ``(out, in/groups, k)`` for NCW."""
    return _conv_nd(input, filters, strides, padding, data_format, dilations, groups, 1, "nn.conv1d")


def conv3d(
    input: ArrayLike,
    filters: ArrayLike,
    strides: Any,
    padding: Any,
    data_format: str = "NCDHW",
    dilations: Any = None,
    groups: int = 1,
    name: str | None = None,
) -> jax.Array:
    """3-D convolution (``"NCDHW"`` or ``"NDHWC"``); weight ``(out, in/groups, kd, kh, kw)``
    for NCDHW, ``(out, kd, kh, kw, in/groups)`` for NDHWC."""
    return _conv_nd(input, filters, strides, padding, data_format, dilations, groups, 3, "nn.conv3d")


def compat_conv2d(
    input: jax.Array,
    filters: jax.Array,
    strides: Any,
    padding: Any,
    data_format: str = "NCHW",
    dilations: Any = None,
    groups: int = 1,
    name: str | None = None,
) -> jax.Array:
    """``nn.conv2d`` with TensorFlow's ``"SAME"``: the larger half of the padding goes
    *after* (OneFlow's SAME_UPPER)."""
    if isinstance(padding, str) and padding.upper() == "SAME":
        padding = "SAME_UPPER"
    return _nn.conv2d(input, filters, strides, padding, data_format, dilations, groups)


def _transpose_conv(x, w, strides, dilations, pads, cf):
    """The gradient-of-conv form: ``x`` dilated by ``strides``, the flipped kernel, and
    ``pads = [(crop_before, crop_after - output_padding)]`` off the full output."""
    kernel = w.shape[2:] if cf else w.shape[1:-1]
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    padding = [(e - 1 - lo, e - 1 - hi) for e, (lo, hi) in zip(eff, pads)]
    spatial = (2, 3) if cf else (1, 2)
    x, w = _amp.float32(x, w)
    flipped = jnp.flip(w, spatial)
    spec = "IOHW" if cf else "IHWO"
    return _lowering.conv(x, flipped, (1, 1), padding, dilations, 1, cf, spec, lhs_dilation=strides)


def _one_of(a, b, what):
    if (a is None) == (b is None):
        raise ValueError(f"nn.conv2d_transpose takes exactly one of {what}")
    return a if a is not None else b


def _deconv_args(value, filter, input, filters, strides, dilations, data_format, op):
    x = _one_of(value, input, "value and input")
    w = _one_of(filter, filters, "filter and filters")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{op} needs rank-4 input and filters; got {x.shape} and {w.shape}")
    if data_format.upper() not in ("NCHW", "NHWC"):
        raise ValueError(f"{op}(data_format) must be 'NCHW' or 'NHWC'; got {data_format!r}")
    if strides is None:
        raise ValueError(f"{op}(strides) is required: an int or a list of 2 ints")
    cf = data_format.upper() == "NCHW"
    strides = _nn._pair(strides, 2, f"{op}(strides)")
    dilations = _nn._pair(1 if dilations is None else dilations, 2, f"{op}(dilations)")
    return x, w, cf, strides, dilations


def conv2d_transpose(
    value: ArrayLike | None = None,
    filter: Any = None,
    output_shape: Any = None,
    strides: Any = None,
    padding: str = "VALID",
    data_format: str = "NCHW",
    name: str | None = None,
    input: ArrayLike | None = None,
    filters: ArrayLike | None = None,
    dilations: Any = None,
) -> jax.Array:
    """Transposed 2-D convolution to ``output_shape`` (OneFlow's ``deconv2d``, TF's form).

    Weight ``(in, out, kh, kw)`` for NCHW, ``(in, kh, kw, out)`` for NHWC. ``padding``
    ``"VALID"``: no cropping; ``"SAME"``: ``out`` must be in ``((in-1)*s, in*s]`` and the
    full output ``(in-1)*s + eff`` is cropped by ``need = max(0, (in-1)*s + eff - out)``,
    the *smaller* half ``need // 2`` before. Rows the crop leaves short at the end
    (``output_padding``) are zeros-fed, as OneFlow's kernel.
    """
    x, w, cf, strides, dilations = _deconv_args(
        value, filter, input, filters, strides, dilations, data_format, "nn.conv2d_transpose"
    )
    if output_shape is None or len(output_shape) != 4 or output_shape[0] != x.shape[0]:
        raise ValueError(
            f"nn.conv2d_transpose(output_shape) must be 4 sizes starting with the batch {x.shape[0]}; got {output_shape!r}"
        )
    channels = w.shape[1] if cf else w.shape[3]
    out_c, out_hw = (output_shape[1], output_shape[2:]) if cf else (output_shape[3], output_shape[1:3])
    if out_c != channels:
        raise ValueError(
            f"nn.conv2d_transpose: output_shape channels {out_c} must equal the filters' {channels}"
        )
    in_hw = x.shape[2:] if cf else x.shape[1:3]
    kernel = w.shape[2:] if cf else w.shape[1:3]
    mode = checks.choice("nn.conv2d_transpose", "padding", str(padding).upper(), ("VALID", "SAME"))
    pads = []
    for i, o, k, s, d in zip(in_hw, out_hw, kernel, strides, dilations):
        eff = (k - 1) * d + 1
        ok = (o + s - eff) // s == i if mode == "VALID" else (o + s - 1) // s == i
        if not ok:
            raise ValueError(
                f"nn.conv2d_transpose: output_shape {tuple(output_shape)} cannot come from input {x.shape} "
                f"with kernel {tuple(kernel)}, strides {strides}, padding {mode!r}"
            )
        need = max(0, (i - 1) * s + eff - o) if mode == "SAME" else 0
        full = (i - 1) * s + eff - need
        pads.append((need // 2, need - need // 2 - (o - full)))
    return _transpose_conv(x, w, strides, dilations, pads, cf)


def torch_conv2d_transpose(
    value: ArrayLike | None = None,
    filter: Any = None,
    output_padding: Any = None,
    strides: Any = None,
    padding_needed: Any = None,
    data_format: str = "NCHW",
    name: str | None = None,
    input: ArrayLike | None = None,
    filters: ArrayLike | None = None,
    dilations: Any = None,
) -> jax.Array:
    """Transposed 2-D convolution in PyTorch's terms: ``padding_needed`` is the total
    (even) padding per spatial axis, ``padding_needed[i] / 2`` cropped each side, then
    ``output_padding`` rows added at the end (``torch.nn.functional.conv_transpose2d``
    with ``padding=padding_needed // 2``)."""
    op = "nn.torch_conv2d_transpose"
    x, w, cf, strides, dilations = _deconv_args(
        value, filter, input, filters, strides, dilations, data_format, op
    )
    needed = _nn._pair(0 if padding_needed is None else padding_needed, 2, f"{op}(padding_needed)")
    if any(p % 2 for p in needed):
        raise ValueError(f"{op}(padding_needed) must be even numbers; got padding_needed={padding_needed!r}")
    extra = _nn._pair(0 if output_padding is None else output_padding, 2, f"{op}(output_padding)")
    pads = [(p // 2, p // 2 - e) for p, e in zip(needed, extra)]
    return _transpose_conv(x, w, strides, dilations, pads, cf)


def max_pool3d(
    input: ArrayLike,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: str = "NCDHW",
    ceil_mode: bool = False,
    name: str | None = None,
) -> jax.Array:
    """3-D max pooling (``"NCDHW"`` or ``"NDHWC"``); padded positions never win."""
    pool = _nn._pool(input, ksize, strides, padding, data_format, ceil_mode, "nn.max_pool3d", n=3)
    return _nn._max_pool(input, *pool)


def avg_pool3d(
    input: ArrayLike,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: str = "NCDHW",
    ceil_mode: bool = False,
    name: str | None = None,
) -> jax.Array:
    """3-D average pooling; padded positions are excluded from the count."""
    pool = _nn._pool(input, ksize, strides, padding, data_format, ceil_mode, "nn.avg_pool3d", n=3)
    return _nn._avg_pool(input, *pool)


def same_padding(
    x: jax.Array,
    padding: Any,
    data_format: Any,
    kernel_size: Any,
    strides: Any,
    dilation_rate: Any,
    name: str | None = None,
) -> jax.Array:
    """``x`` zero-padded so that a VALID convolution with these sizes gives the
    ``"SAME_LOWER"`` / ``"SAME_UPPER"`` output size."""
    mode = checks.choice("same_padding", "padding", str(padding).upper(), ("SAME_LOWER", "SAME_UPPER"))
    n = x.ndim - 2
    cf = data_format.startswith("NC")
    spatial = x.shape[2:] if cf else x.shape[1:-1]
    k = _nn._pair(kernel_size, n, "same_padding(kernel_size)")
    s = _nn._pair(strides, n, "same_padding(strides)")
    d = _nn._pair(dilation_rate, n, "same_padding(dilation_rate)")
    pads = _nn._padding(mode, spatial, k, s, d, cf, "same_padding")
    full = [(0, 0), (0, 0), *pads] if cf else [(0, 0), *pads, (0, 0)]
    return jnp.pad(x, full)


def _pad2d_pairs(x, padding, op):
    """OneFlow's ``[left, right, top, bottom]`` (or one int) as ``jnp.pad`` pairs (NCHW)."""
    if x.ndim != 4:
        raise ValueError(f"{op} needs an NCHW input; got shape {x.shape}")
    p = [padding] * 4 if isinstance(padding, int) else list(padding)
    if len(p) != 4 or not all(isinstance(v, int) and v >= 0 for v in p):
        raise ValueError(
            f"{op}(padding) must be an int or [left, right, top, bottom]; got padding={padding!r}"
        )
    return [(0, 0), (0, 0), (p[2], p[3]), (p[0], p[1])]


def reflection_pad2d(x: jax.Array, padding: Any, name: str | None = None) -> jax.Array:
    """Pads H and W of an NCHW ``x`` by reflection (the edge is not repeated)."""
    pairs = _pad2d_pairs(x, padding, "reflection_pad2d")
    if any(lo >= n or hi >= n for (lo, hi), n in zip(pairs[2:], x.shape[2:])):
        raise ValueError(
            f"reflection_pad2d(padding) must be smaller than H and W {x.shape[2:]}; got {padding!r}"
        )
    return jnp.pad(x, pairs, mode="reflect")


def replication_pad2d(x: ArrayLike, padding: Any, name: str | None = None) -> jax.Array:
    """Pads H and W of an NCHW ``x`` by repeating the edge."""
    return jnp.pad(x, _pad2d_pairs(x, padding, "replication_pad2d"), mode="edge")


def constant_pad2d(
    x: ArrayLike, padding: Any, constant_value: float = 0, name: str | None = None
) -> jax.Array:
    """Pads H and W of an NCHW ``x`` with ``constant_value``."""
    return jnp.pad(x, _pad2d_pairs(x, padding, "constant_pad2d"), constant_values=constant_value)


def zero_pad2d(x: ArrayLike, padding: Any, name: str | None = None) -> jax.Array:
    """Pads H and W of an NCHW ``x`` with zeros."""
    return constant_pad2d(x, padding, 0)


def _nearest(size, out, scale):
    """OneFlow's nearest source index ``floor((dst + 0.5) / scale)``, clamped."""
    src = jnp.floor((jnp.arange(out, dtype=jnp.float32) + 0.5) * (1.0 / scale)).astype(jnp.int32)
    return jnp.clip(src, 0, size - 1)


def _bilinear(x, axis, out, scale, align_corners):
    """``x`` linearly resampled to ``out`` along ``axis`` (OneFlow's source index rule)."""
    size = x.shape[axis]
    dst = jnp.arange(out, dtype=jnp.float32)
    if align_corners:
        src = dst * ((size - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = jnp.maximum((dst + 0.5) * (1.0 / scale) - 0.5, 0.0)
    lo = jnp.floor(src).astype(jnp.int32)
    hi = jnp.where(src < size - 1, jnp.ceil(src), size - 1).astype(jnp.int32)
    shape = [1] * x.ndim
    shape[axis] = out
    lerp = jnp.reshape(src - jnp.floor(src), shape).astype(x.dtype)
    a, b = jnp.take(x, lo, axis=axis), jnp.take(x, hi, axis=axis)
    return a + (b - a) * lerp


def upsample_2d(
    x: jax.Array,
    size: Sequence[int] = (2, 2),
    align_corners: bool = False,
    data_format: str = "NCHW",
    interpolation: str = "nearest",
    name: str = "Upsample2D",
) -> jax.Array:
    """H and W scaled by ``size`` (an int or ``(h, w)``), ``"nearest"`` or ``"bilinear"``
    (OneFlow's kernel: PyTorch's rule with the given scale). Output size ``int(in * s)``."""
    sh, sw = (size, size) if isinstance(size, (int, float)) else tuple(size)
    mode = checks.choice("layers.upsample_2d", "interpolation", interpolation, ("nearest", "bilinear"))
    if mode == "nearest" and align_corners:
        raise ValueError("layers.upsample_2d: interpolation 'nearest' does not support align_corners=True")
    fmt = checks.choice("layers.upsample_2d", "data_format", data_format.upper(), ("NCHW", "NHWC"))
    h_axis, w_axis = (2, 3) if fmt == "NCHW" else (1, 2)
    (x,) = _amp.float32(x)
    for axis, s in ((h_axis, sh), (w_axis, sw)):
        out = int(float(s) * x.shape[axis])
        if mode == "nearest":
            x = jnp.take(x, _nearest(x.shape[axis], out, float(s)), axis=axis)
        else:
            x = _bilinear(x, axis, out, float(s), align_corners)
    return x


def pixel_shufflev2(
    input: jax.Array, h_upscale_factor: Any, w_upscale_factor: Any, name: str | None = None
) -> jax.Array:
    """NCHW ``(N, C*h*w, H, W)`` -> ``(N, C, H*h, W*w)`` (sub-pixel convolution layout)."""
    h = checks.integer("nn.PixelShufflev2", "h_upscale_factor", h_upscale_factor, low=1)
    w = checks.integer("nn.PixelShufflev2", "w_upscale_factor", w_upscale_factor, low=1)
    if input.ndim != 4 or input.shape[1] % (h * w):
        raise ValueError(
            f"nn.PixelShuffle needs an NCHW input with channels divisible by {h * w}; got shape {input.shape}"
        )
    n, c, height, width = input.shape
    out = jnp.reshape(input, (n, c // (h * w), h, w, height, width))
    out = jnp.transpose(out, (0, 1, 4, 2, 5, 3))
    return jnp.reshape(out, (n, c // (h * w), height * h, width * w))


def pixel_shuffle(input: jax.Array, upscale_factor: Any, name: str | None = None) -> jax.Array:
    """:func:`pixel_shufflev2` with the same factor for H and W."""
    return pixel_shufflev2(input, upscale_factor, upscale_factor)

"""How convolutions and pools are handed to XLA: the forms XLA's CPU backend runs fastest,
with OneFlow's layouts and numbers kept at the ops' edges (issue 15, measured in
docs/performance.md).

* **Pools whose windows tile the input run as reshape + reduce** (on by default). With
  ``strides == ksize``, no padding and every spatial size divisible by its window, each
  window is a block: the input, channels-last, is reshaped to
  ``(N, o1, k1, ..., on, kn, C)`` and reduced over the ``k`` axes. Its gradient is one
  elementwise select over the input instead of XLA's ``reduce_window`` /
  ``select_and_scatter`` pair (which jax 0.10 lowers to a variadic reduce-window carrying
  indices). Max pooling keeps OneFlow's and PyTorch's rule for ties and NaN: the window is
  scanned in row-major order with ``out = x_0; out = x_i if x_i > out or isnan(x_i)``, and
  the gradient goes to the element chosen (a ``custom_jvp``, so forward- and reverse-mode
  both work). Average pooling is ``sum(block) / (k1 * ... * kn)``, summed in at least
  float32. Other pools (overlapping, padded, not dividing, or max windows over 16
  elements) use ``reduce_window``.
* **Convolutions channels-last inside** (off by default): an ``NC...`` convolution as
  ``transpose(conv(transpose(x, N...C), w), NC...)``. XLA's CPU layout assignment
  already runs ``NCHW`` convolutions on channels-last buffers; the explicit transposes
  made LeNet's step slower (the bias gradient then sums a transposed copy), so this stays
  off and exists for measurements.

``ENABLED`` holds the two switches; it is read when a job is traced.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp

__all__ = ["ENABLED", "conv", "block_pool"]

ENABLED = {"channels_last_conv": False, "block_pool": True}

# Max pooling over a block of more elements than this unrolls too many selects: reduce_window.
_MAX_UNROLLED = 16


def _to_last(x):
    return jnp.moveaxis(x, 1, -1)


def _to_first(x):
    return jnp.moveaxis(x, -1, 1)


def conv(x, w, strides, pads, dilations, groups, channels_first, weight_spec, lhs_dilation=None, bias=None):
    """``lax.conv_general_dilated`` of ``x`` (``NC...`` if ``channels_first``, else ``N...C``)
    with ``w`` in ``weight_spec`` (``"OIHW"``, ``"OHWI"``, ``"IOHW"``, ...); channels-last
    inside when ``ENABLED["channels_last_conv"]``. ``bias`` (1-D, one per output channel,
    cast to the result's dtype) is added along the channel axis, inside the conv's layout."""
    n = x.ndim - 2
    spatial = "DHW"[3 - n :]
    last = f"N{spatial}C"
    inside_last = not channels_first or ENABLED["channels_last_conv"]
    io = last if inside_last else f"NC{spatial}"
    out = jax.lax.conv_general_dilated(
        _to_last(x) if channels_first and inside_last else x,
        w,
        strides,
        pads,
        lhs_dilation=lhs_dilation,
        rhs_dilation=dilations,
        dimension_numbers=(io, weight_spec, io),
        feature_group_count=groups,
    )
    if bias is not None:
        shape = [1] * out.ndim
        shape[-1 if inside_last else 1] = bias.shape[0]
        out = out + jnp.reshape(bias, shape).astype(out.dtype)
    return _to_first(out) if channels_first and inside_last else out


def _tiles(shape, window, stride, pads):
    """Whether a pool's windows tile the input exactly (no overlap, gap or padding)."""
    return (
        tuple(window) == tuple(stride)
        and all(lo == 0 and hi == 0 for lo, hi in pads)
        and all(size % k == 0 for size, k in zip(shape, window))
    )


def _k_axes(blocks):
    """The window axes of ``(N, o1, k1, ..., on, kn, C)`` blocks: 2, 4, ..., 2n."""
    return tuple(range(2, blocks.ndim - 1, 2))


def _first_max(blocks):
    """``(max, index)`` over each block's window, scanned in row-major window order:
    ``out = x_0; out, idx = x_i, i if x_i > out or isnan(x_i)`` (OneFlow's and PyTorch's
    kernels: the first maximum, or the last NaN, wins)."""
    k_axes = _k_axes(blocks)
    window = [blocks.shape[a] for a in k_axes]
    floating = jnp.issubdtype(blocks.dtype, jnp.floating)
    out = idx = None
    for i, offset in enumerate(itertools.product(*(range(k) for k in window))):
        index = [slice(None)] * blocks.ndim
        for axis, o in zip(k_axes, offset):
            index[axis] = o
        value = blocks[tuple(index)]
        if out is None:
            out, idx = value, jnp.zeros(value.shape, jnp.int8)
            continue
        take = value > out
        if floating:
            take = take | jnp.isnan(value)
        out = jnp.where(take, value, out)
        idx = jnp.where(take, jnp.int8(i), idx)
    return out, idx


@jax.custom_jvp
def _block_max(blocks):
    """The first maximum of each block's window; its derivative is the selected element's."""
    return _first_max(blocks)[0]


@_block_max.defjvp
def _block_max_jvp(primals, tangents):
    (blocks,), (tangent,) = primals, tangents
    out, idx = _first_max(blocks)
    k_axes = _k_axes(blocks)
    position = jnp.zeros((), jnp.int8)
    for axis in k_axes:  # row-major window position, broadcast over the block axes
        shape = [1] * blocks.ndim
        shape[axis] = blocks.shape[axis]
        position = position * jnp.int8(blocks.shape[axis]) + jnp.arange(
            blocks.shape[axis], dtype=jnp.int8
        ).reshape(shape)
    chosen = position == jnp.expand_dims(idx, k_axes)
    # One term of each sum is not zero; its transpose is a single select over the input.
    return out, jnp.sum(jnp.where(chosen, tangent, jnp.zeros((), tangent.dtype)), axis=k_axes)


def block_pool(x, window, stride, pads, channels_first, kind):
    """``kind`` (``"max"`` or ``"avg"``) pooling as reshape + reduce when the windows tile
    ``x`` (see the module docstring), else None. ``window``, ``stride`` and ``pads`` cover
    every axis of ``x``; ``avg`` returns the float32 (or wider) mean."""
    n = x.ndim - 2
    if not ENABLED["block_pool"] or not _tiles(x.shape, window, stride, pads):
        return None
    axes = range(2, n + 2) if channels_first else range(1, n + 1)
    k = [window[a] for a in axes]
    if any(window[a] != 1 for a in range(x.ndim) if a not in axes):
        return None
    if kind == "max" and math.prod(k) > _MAX_UNROLLED:
        return None
    xl = _to_last(x) if channels_first else x
    shape = [xl.shape[0]]
    for size, kk in zip(xl.shape[1:-1], k):
        shape += [size // kk, kk]
    blocks = jnp.reshape(xl, (*shape, xl.shape[-1]))
    if kind == "max":
        floating = jnp.issubdtype(blocks.dtype, jnp.floating)
        out = _block_max(blocks) if floating else _first_max(blocks)[0]
    else:
        wide = blocks.astype(jnp.promote_types(blocks.dtype, jnp.float32))
        out = jnp.sum(wide, axis=_k_axes(blocks)) / math.prod(k)
    return _to_first(out) if channels_first else out

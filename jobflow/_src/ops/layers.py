"""Layers that create variables (``flow.layers``), with OneFlow's names and layouts.

Variables are named ``<name>-weight``, ``<name>-bias``, ... under the current namespace.
A layer called again with the same ``name`` in a job reuses its variables (so a
sub-network can run twice, e.g. a GAN discriminator; OneFlow #3542). A layer created
without a name gets ``Dense``, ``Dense_1``, ... in call order; name layers explicitly
when jobs share them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jobflow._src.core import trace as _trace
from jobflow._src.graph import variables as _vars
from jobflow._src.ops import array_ops as _ops
from jobflow._src.ops import nn as _nn
from jobflow._src.ops.flax_interop import flax_module

__all__ = ["dense", "conv2d", "batch_normalization", "layer_norm", "flax_module"]


def _name(name, base):
    return name if name is not None else _trace.require(f"layers.{base.lower()}").unique_name(base)


def dense(
    inputs: jax.Array,
    units: int,
    activation: Callable[[jax.Array], jax.Array] | None = None,
    use_bias: bool = True,
    kernel_initializer: _vars.Initializer | None = None,
    bias_initializer: _vars.Initializer | None = None,
    kernel_regularizer: _vars.Regularizer | None = None,
    bias_regularizer: _vars.Regularizer | None = None,
    trainable: bool = True,
    name: str | None = None,
    model_distribute: Any = None,
) -> jax.Array:
    """``activation(x @ W^T + b)`` with ``W`` of shape ``(units, in)`` (OneFlow's layout).

    Inputs of rank > 2 are flattened to ``(-1, in)`` and reshaped back. As in OneFlow,
    both initializers default to the constant 0: pass ``kernel_initializer``.
    """
    if not isinstance(units, int) or units < 1:
        raise ValueError(f"layers.dense(units) must be an int >= 1; got {units!r}")
    name = _name(name, "Dense")
    lead, fan_in = inputs.shape[:-1], inputs.shape[-1]
    x = jnp.reshape(inputs, (-1, fan_in)) if inputs.ndim > 2 else inputs
    w = _vars.get_variable(
        f"{name}-weight",
        (units, fan_in),
        initializer=kernel_initializer or _vars.constant_initializer(0),
        regularizer=kernel_regularizer,
        trainable=trainable,
    )
    out = _ops.matmul(x, w, transpose_b=True)
    if use_bias:
        b = _vars.get_variable(
            f"{name}-bias",
            (units,),
            initializer=bias_initializer or _vars.constant_initializer(0),
            regularizer=bias_regularizer,
            trainable=trainable,
        )
        out = _nn.bias_add(out, b)
    if activation is not None:
        out = activation(out)
    return jnp.reshape(out, (*lead, units)) if inputs.ndim > 2 else out


def conv2d(
    inputs: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int] = 1,
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Any] = "VALID",
    data_format: str = "NCHW",
    dilation_rate: int | Sequence[int] | None = None,
    groups: int = 1,
    activation: Callable[[jax.Array], jax.Array] | None = None,
    use_bias: bool = True,
    kernel_initializer: _vars.Initializer | None = None,
    bias_initializer: _vars.Initializer | None = None,
    kernel_regularizer: _vars.Regularizer | None = None,
    bias_regularizer: _vars.Regularizer | None = None,
    trainable: bool = True,
    name: str | None = None,
    weight_name: str | None = None,
    bias_name: str | None = None,
) -> jax.Array:
    """2-D convolution layer: weight ``(filters, in/groups, kh, kw)`` for NCHW.

    ``kernel_initializer`` defaults to Xavier uniform and ``bias_initializer`` to 0
    (OneFlow's defaults). ``padding="SAME"`` is OneFlow's SAME_LOWER.
    """
    if not isinstance(filters, int) or filters < 1:
        raise ValueError(f"layers.conv2d(filters) must be an int >= 1; got {filters!r}")
    name = _name(name, "Conv2d")
    cf = data_format in _nn._CHANNELS_FIRST
    k = _nn._pair(kernel_size, 2, "layers.conv2d(kernel_size)")
    cin = inputs.shape[1] if cf else inputs.shape[-1]
    if cin % groups:
        raise ValueError(f"layers.conv2d: input channels {cin} do not divide into groups={groups}")
    shape = (filters, cin // groups, *k) if cf else (filters, *k, cin // groups)
    w = _vars.get_variable(
        weight_name or f"{name}-weight",
        shape,
        initializer=kernel_initializer or _vars.xavier_uniform_initializer(data_format),
        regularizer=kernel_regularizer,
        trainable=trainable,
    )
    out = _nn.conv2d(inputs, w, strides, padding, data_format, dilation_rate, groups)
    if use_bias:
        b = _vars.get_variable(
            bias_name or f"{name}-bias",
            (filters,),
            initializer=bias_initializer or _vars.constant_initializer(0),
            regularizer=bias_regularizer,
            trainable=trainable,
        )
        out = _nn.bias_add(out, b, "NCHW" if cf else "NHWC")
    if activation is not None:
        out = activation(out)
    return out


def batch_normalization(
    inputs: jax.Array,
    axis: int = -1,
    momentum: float = 0.99,
    epsilon: float = 0.001,
    center: bool = True,
    scale: bool = True,
    beta_initializer: _vars.Initializer | None = None,
    gamma_initializer: _vars.Initializer | None = None,
    beta_regularizer: _vars.Regularizer | None = None,
    gamma_regularizer: _vars.Regularizer | None = None,
    moving_mean_initializer: _vars.Initializer | None = None,
    moving_variance_initializer: _vars.Initializer | None = None,
    trainable: bool = True,
    training: bool = True,
    name: str | None = None,
) -> jax.Array:
    """Batch normalization over every axis except ``axis`` (use ``axis=1`` for NCHW).

    Variables: ``-gamma``, ``-beta`` (trainable), ``-moving_mean``, ``-moving_variance``.
    In a train job with ``training=True`` the batch statistics normalize and the moving
    ones update: ``mov = momentum * mov + (1 - momentum) * batch`` (the unbiased batch
    variance, as cuDNN). Predict jobs always use the moving statistics. Statistics are
    computed in float32.
    """
    if not 0 <= momentum <= 1:
        raise ValueError(f"batch_normalization(momentum) must be in [0, 1]; got {momentum!r}")
    ctx = _trace.require("layers.batch_normalization")
    name = _name(name, "BatchNorm")
    axis = axis % inputs.ndim
    c = inputs.shape[axis]
    f32 = jnp.float32
    zero, one = _vars.constant_initializer(0), _vars.constant_initializer(1)
    mm_name, mv_name = f"{name}-moving_mean", f"{name}-moving_variance"
    mov_mean = _vars.get_variable(mm_name, (c,), f32, moving_mean_initializer or zero, trainable=False)
    mov_var = _vars.get_variable(mv_name, (c,), f32, moving_variance_initializer or one, trainable=False)
    gamma = (
        _vars.get_variable(f"{name}-gamma", (c,), f32, gamma_initializer or one, gamma_regularizer, trainable)
        if scale
        else None
    )
    beta = (
        _vars.get_variable(f"{name}-beta", (c,), f32, beta_initializer or zero, beta_regularizer, trainable)
        if center
        else None
    )
    reduce = tuple(i for i in range(inputs.ndim) if i != axis)
    shape = [1] * inputs.ndim
    shape[axis] = c
    x = inputs.astype(f32)
    if training and ctx.is_train:
        mean = jnp.mean(x, axis=reduce)
        var = jnp.var(x, axis=reduce)
        n = x.size // c
        unbiased = var * (n / max(n - 1, 1))
        ctx.updates[_vars.full_name(mm_name)] = jax.lax.stop_gradient(
            momentum * mov_mean + (1 - momentum) * mean
        )
        ctx.updates[_vars.full_name(mv_name)] = jax.lax.stop_gradient(
            momentum * mov_var + (1 - momentum) * unbiased
        )
    else:
        mean, var = mov_mean, mov_var
    y = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape) + epsilon)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y.astype(inputs.dtype)


def layer_norm(
    inputs: jax.Array,
    center: bool = True,
    scale: bool = True,
    trainable: bool = True,
    begin_norm_axis: int = 1,
    begin_params_axis: int = -1,
    epsilon: float = 1e-5,
    name: str | None = None,
) -> jax.Array:
    """Layer normalization over axes ``begin_norm_axis..``; ``-gamma``/``-beta`` have
    shape ``inputs.shape[begin_params_axis:]``."""
    name = _name(name, "LayerNorm")
    pshape = tuple(inputs.shape[begin_params_axis % inputs.ndim :])
    gamma = (
        _vars.get_variable(
            f"{name}-gamma", pshape, jnp.float32, _vars.constant_initializer(1), trainable=trainable
        )
        if scale
        else None
    )
    beta = (
        _vars.get_variable(
            f"{name}-beta", pshape, jnp.float32, _vars.constant_initializer(0), trainable=trainable
        )
        if center
        else None
    )
    return _nn.layer_norm(inputs, gamma, beta, begin_norm_axis, begin_params_axis, epsilon)

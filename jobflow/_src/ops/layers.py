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
from jobflow._src.core.errors import ArgumentError
from jobflow._src.graph import distribute as _distribute
from jobflow._src.graph import variables as _vars
from jobflow._src.ops import array_ops as _ops
from jobflow._src.ops import nn as _nn
from jobflow._src.ops import spatial as _spatial
from jobflow._src.ops.flax_interop import flax_module

__all__ = [
    "dense",
    "conv1d",
    "conv2d",
    "conv3d",
    "batch_normalization",
    "batch_normalization_relu",
    "batch_normalization_add_relu",
    "layer_norm",
    "prelu",
    "flax_module",
]


def _name(name, base):
    return name if name is not None else _trace.require(f"layers.{base.lower()}").unique_name(base)


def _dense_layouts(model_distribute: Any) -> tuple[Any, Any]:
    """``(weight distribute, bias distribute)`` of ``dense(model_distribute=...)``."""
    if model_distribute is None or isinstance(
        model_distribute, (_distribute.AutoDistribute, _distribute.BroadcastDistribute)
    ):
        return model_distribute, model_distribute
    if isinstance(model_distribute, _distribute.SplitDistribute) and model_distribute.axis in (0, 1):
        # split(0): weight rows (output units) and the bias; split(1): the weight's input
        # columns, the bias replicated (it has no axis 1)
        bias = model_distribute if model_distribute.axis == 0 else _distribute.broadcast()
        return model_distribute, bias
    raise ArgumentError(
        f"layers.dense(model_distribute) must be flow.distribute.auto(), broadcast(), split(0) "
        f"or split(1); got model_distribute={model_distribute!r}"
    )


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

    ``model_distribute`` lays the variables out over the job's devices (model
    parallelism; the numbers are those of one device): ``flow.distribute.split(0)``
    splits ``W`` along its output units and the bias with it (OneFlow's column-parallel
    dense); ``split(1)`` splits ``W`` along its inputs and replicates the bias (a jobflow
    extension: OneFlow 0.4 accepts only ``split(0)``); ``broadcast()`` replicates both;
    None or ``auto()`` lets jobflow decide.
    """
    if not isinstance(units, int) or units < 1:
        raise ValueError(f"layers.dense(units) must be an int >= 1; got {units!r}")
    w_dist, b_dist = _dense_layouts(model_distribute)
    name = _name(name, "Dense")
    lead, fan_in = inputs.shape[:-1], inputs.shape[-1]
    x = jnp.reshape(inputs, (-1, fan_in)) if inputs.ndim > 2 else inputs
    w = _vars.get_variable(
        f"{name}-weight",
        (units, fan_in),
        initializer=kernel_initializer or _vars.constant_initializer(0),
        regularizer=kernel_regularizer,
        trainable=trainable,
        distribute=w_dist,
    )
    out = _ops.matmul(x, w, transpose_b=True)
    if use_bias:
        b = _vars.get_variable(
            f"{name}-bias",
            (units,),
            initializer=bias_initializer or _vars.constant_initializer(0),
            regularizer=bias_regularizer,
            trainable=trainable,
            distribute=b_dist,
        )
        out = _nn.bias_add(out, b)
    if activation is not None:
        out = activation(out)
    return jnp.reshape(out, (*lead, units)) if inputs.ndim > 2 else out


def _conv_layer(inputs, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, n, op):
    """The weight of an ``n``-d conv layer (``(filters, in/groups, *k)`` channels-first,
    ``(filters, *k, in/groups)`` channels-last) and the conv op to apply it with."""
    if not isinstance(filters, int) or filters < 1:
        raise ValueError(f"layers.{op}(filters) must be an int >= 1; got {filters!r}")
    cf = data_format in _nn._CHANNELS_FIRST
    k = _nn._pair(kernel_size, n, f"layers.{op}(kernel_size)")
    cin = inputs.shape[1] if cf else inputs.shape[-1]
    if cin % groups or filters % groups:
        raise ValueError(
            f"layers.{op}: input channels {cin} and filters {filters} must divide by groups={groups}"
        )
    shape = (filters, cin // groups, *k) if cf else (filters, *k, cin // groups)

    def apply(x, w, bias):
        if n == 2:
            return _nn._conv2d(x, w, strides, padding, data_format, dilation_rate, groups, bias)
        return _spatial._conv_nd(
            x, w, strides, padding, data_format, dilation_rate, groups, n, f"nn.conv{n}d", bias
        )

    return shape, apply


def _conv(inputs, filters, kernel_size, n, base, **kw):
    """An ``n``-d convolution layer: variables ``-weight`` and ``-bias``."""
    name = _name(kw["name"], base)
    fmt = kw["data_format"]
    shape, apply = _conv_layer(
        inputs,
        filters,
        kernel_size,
        kw["strides"],
        kw["padding"],
        fmt,
        kw["dilation_rate"],
        kw["groups"],
        n,
        base.lower(),
    )
    w = _vars.get_variable(
        kw["weight_name"] or f"{name}-weight",
        shape,
        initializer=kw["kernel_initializer"] or _vars.xavier_uniform_initializer(fmt),
        regularizer=kw["kernel_regularizer"],
        trainable=kw["trainable"],
    )
    b = None
    if kw["use_bias"]:
        b = _vars.get_variable(
            kw["bias_name"] or f"{name}-bias",
            (filters,),
            initializer=kw["bias_initializer"] or _vars.constant_initializer(0),
            regularizer=kw["bias_regularizer"],
            trainable=kw["trainable"],
        )
    out = apply(inputs, w, b)  # the bias is added inside the convolution op, in its layout
    return kw["activation"](out) if kw["activation"] is not None else out


def conv1d(
    inputs: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int] = 1,
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Any] = "VALID",
    data_format: str = "NCW",
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
    """1-D convolution layer: weight ``(filters, in/groups, k)`` for NCW (Xavier uniform)."""
    kw = {k: v for k, v in locals().items() if k not in ("inputs", "filters", "kernel_size")}
    return _conv(inputs, filters, kernel_size, 1, "Conv1d", **kw)


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
    kw = {k: v for k, v in locals().items() if k not in ("inputs", "filters", "kernel_size")}
    return _conv(inputs, filters, kernel_size, 2, "Conv2d", **kw)


def conv3d(
    inputs: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int] = 1,
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Any] = "VALID",
    data_format: str = "NCDHW",
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
    """3-D convolution layer: weight ``(filters, in/groups, kd, kh, kw)`` for NCDHW."""
    kw = {k: v for k, v in locals().items() if k not in ("inputs", "filters", "kernel_size")}
    return _conv(inputs, filters, kernel_size, 3, "Conv3d", **kw)


def _bn_variables(name, c, center, scale, trainable, inits, regs, names):
    """gamma, beta (None when off) and the moving statistics with their full names."""
    f32 = jnp.float32
    zero, one = _vars.constant_initializer(0), _vars.constant_initializer(1)
    gamma_name, beta_name, mm_name, mv_name = (
        given or f"{name}-{default}"
        for given, default in zip(names, ("gamma", "beta", "moving_mean", "moving_variance"))
    )
    beta_init, gamma_init, mm_init, mv_init = inits
    mov_mean = _vars.get_variable(mm_name, (c,), f32, mm_init or zero, trainable=False)
    mov_var = _vars.get_variable(mv_name, (c,), f32, mv_init or one, trainable=False)
    gamma = (
        _vars.get_variable(gamma_name, (c,), f32, gamma_init or one, regs[1], trainable) if scale else None
    )
    beta = _vars.get_variable(beta_name, (c,), f32, beta_init or zero, regs[0], trainable) if center else None
    return gamma, beta, (mov_mean, _vars.full_name(mm_name)), (mov_var, _vars.full_name(mv_name))


def _bn_statistics(ctx, x, axis, momentum, moving, training):
    """Batch statistics (and the moving-statistics updates) in training, else the moving ones."""
    (mov_mean, mm_full), (mov_var, mv_full) = moving
    if not training:
        return mov_mean, mov_var
    reduce = tuple(i for i in range(x.ndim) if i != axis)
    mean, var = jnp.mean(x, axis=reduce), jnp.var(x, axis=reduce)
    n = x.size // x.shape[axis]
    unbiased = var * (n / max(n - 1, 1))
    ctx.updates[mm_full] = jax.lax.stop_gradient(momentum * mov_mean + (1 - momentum) * mean)
    ctx.updates[mv_full] = jax.lax.stop_gradient(momentum * mov_var + (1 - momentum) * unbiased)
    return mean, var


def batch_normalization(
    inputs: jax.Array,
    axis: int = -1,
    momentum: float = 0.99,
    epsilon: float = 0.001,
    center: bool = True,
    scale: bool = True,
    beta_initializer: Any = None,
    gamma_initializer: Any = None,
    beta_regularizer: Any = None,
    gamma_regularizer: Any = None,
    moving_mean_initializer: Any = None,
    moving_variance_initializer: Any = None,
    trainable: bool = True,
    training: bool = True,
    name: str | None = None,
    gamma_name: Any = None,
    beta_name: Any = None,
    moving_mean_name: Any = None,
    moving_variance_name: Any = None,
) -> jax.Array:
    """Batch normalization over every axis except ``axis`` (use ``axis=1`` for NCHW).

    Variables: ``-gamma``, ``-beta`` (trainable), ``-moving_mean``, ``-moving_variance``
    (or the names given by ``gamma_name``, ...). In a train job with ``training=True``
    and ``trainable=True`` the batch statistics normalize and the moving ones update:
    ``mov = momentum * mov + (1 - momentum) * batch`` (the unbiased batch variance, as
    cuDNN). Predict jobs, ``training=False`` and ``trainable=False`` use the moving
    statistics (OneFlow's rule). Statistics are computed in float32.
    """
    if not 0 <= momentum <= 1:
        raise ValueError(f"batch_normalization(momentum) must be in [0, 1]; got {momentum!r}")
    ctx = _trace.require("layers.batch_normalization")
    name = _name(name, "BatchNorm")
    axis = axis % inputs.ndim
    inits = (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer)
    names = (gamma_name, beta_name, moving_mean_name, moving_variance_name)
    gamma, beta, *moving = _bn_variables(
        name,
        inputs.shape[axis],
        center,
        scale,
        trainable,
        inits,
        (beta_regularizer, gamma_regularizer),
        names,
    )
    x = inputs.astype(jnp.float32)
    mean, var = _bn_statistics(ctx, x, axis, momentum, moving, training and trainable and ctx.is_train)
    shape = [1] * inputs.ndim
    shape[axis] = inputs.shape[axis]
    y = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape) + epsilon)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y.astype(inputs.dtype)


def batch_normalization_add_relu(
    inputs: jax.Array,
    addend: Any = None,
    axis: int = -1,
    momentum: float = 0.99,
    epsilon: float = 0.001,
    **kwargs: Any,
) -> jax.Array:
    """``relu(batch_normalization(inputs) + addend)`` (``addend`` optional), with every
    argument and the train / predict behaviour of :func:`batch_normalization`."""
    out = batch_normalization(inputs, axis, momentum, epsilon, **kwargs)
    if addend is not None:
        out = out + addend.astype(out.dtype)
    return jax.nn.relu(out)


def batch_normalization_relu(
    inputs: jax.Array, axis: int = -1, momentum: float = 0.99, epsilon: float = 0.001, **kwargs: Any
) -> jax.Array:
    """``relu(batch_normalization(inputs))``, with :func:`batch_normalization`'s arguments."""
    return batch_normalization_add_relu(inputs, None, axis, momentum, epsilon, **kwargs)


def prelu(
    inputs: jax.Array,
    alpha_initializer: Any = None,
    alpha_regularizer: Any = None,
    shared_axes: Any = None,
    trainable: bool = True,
    name: str | None = None,
    model_distribute: Any = None,
) -> jax.Array:
    """``max(0, x) + alpha * min(0, x)`` with a learned ``-alpha`` of shape
    ``inputs.shape[1:]`` (1 along ``shared_axes``); ``alpha`` starts at 0 by default.
    ``model_distribute`` is ``alpha``'s ``get_variable(distribute=...)``, as in OneFlow."""
    name = _name(name, "PRelu")
    shape = list(inputs.shape[1:])
    for a in shared_axes or ():
        if not 1 <= a < inputs.ndim:
            raise ValueError(f"layers.prelu(shared_axes) must be in [1, {inputs.ndim}); got {shared_axes!r}")
        shape[a - 1] = 1
    alpha = _vars.get_variable(
        f"{name}-alpha",
        tuple(shape),
        initializer=alpha_initializer or _vars.constant_initializer(0),
        regularizer=alpha_regularizer,
        trainable=trainable,
        distribute=model_distribute,
    )
    a = jnp.reshape(alpha, (1, *shape)).astype(inputs.dtype)
    return jnp.where(inputs > 0, inputs, a * inputs)


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

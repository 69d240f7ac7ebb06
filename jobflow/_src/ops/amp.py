"""Automatic mixed precision: the dtype each op computes in.

With ``function_config.enable_auto_mixed_precision(True)`` a job's ops follow OneFlow's
lists (``auto_mixed_precision_lists.cpp``; reference §4), with ``low`` the job's
``amp_dtype`` (bfloat16 on CPU/TPU, float16 on GPU by default):

* **white** (always ``low``): ``matmul`` (also batched), ``conv2d``, ``layers.dense`` and
  ``layers.conv2d``: float inputs are cast to ``low`` and the result is ``low``;
* **gray** (``low`` when fed by ``low``): ``add``, ``add_n``, ``subtract``, ``multiply``,
  ``divide``, ``bias_add``, ``sigmoid``, ``tanh``, ``sqrt``, ``gelu``, ``dropout``,
  ``softmax``, ``avg_pool2d``, ``layer_norm``, ``batch_normalization``: when any float
  input is ``low``, the others are cast to ``low`` too. Softmax, pooling sums and the
  normalization statistics accumulate in float32 and round the result to ``low``;
* **clear** (follow the input, no cast): ``relu``, ``max_pool2d``, ``reshape``,
  ``transpose``, ``concat``, ``gather``, ``pad``, ``slice``, ``squeeze``, ``expand_dims``,
  ``flatten``, ``identity``, ``leaky_relu``, ``negative``, ``abs``, ``maximum``, ``minimum``,
  ``clip_by_value``;
* **everything else is float32**: ``low`` inputs are cast up. This covers the losses
  (``*_cross_entropy_*``), every ``reduce_*``, ``exp``, ``log``, ``pow``, ``square``,
  ``rsqrt``, ``log_softmax`` and ``moments``.

Variables stay float32 (master weights): a white op casts its *copy* of a weight, so the
gradient flows back through the cast and arrives in float32, and optimizer slots and the
update are float32. Plain ``jax.numpy`` code in a job body follows JAX's promotion rules
(``low`` with float32 gives float32). With AMP off every function here returns its
inputs unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp

from jobflow._src.core import trace as _trace

__all__ = ["low_dtype", "white", "gray", "float32"]


def low_dtype():
    """The low dtype of the job being traced, or None when AMP is off."""
    ctx = _trace.current()
    return None if ctx is None else ctx.amp_dtype


def _is_float(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _cast(xs, dtype, when):
    return tuple(x.astype(dtype) if _is_float(x) and when(x) else x for x in xs)


def white(*xs):
    """Inputs of a white-list op (matmul, conv), cast to the low dtype under AMP."""
    low = low_dtype()
    if low is None:
        return xs
    return _cast(xs, low, lambda x: True)


def gray(*xs):
    """Inputs of a gray-list op: all float inputs in the low dtype if any of them is."""
    low = low_dtype()
    if low is None or not any(_is_float(x) and x.dtype == low for x in xs):
        return xs
    return _cast(xs, low, lambda x: True)


def float32(*xs):
    """Inputs of an op on no list (losses, reductions): low-dtype inputs cast to float32."""
    low = low_dtype()
    if low is None:
        return xs
    return _cast(xs, jnp.float32, lambda x: x.dtype == low)

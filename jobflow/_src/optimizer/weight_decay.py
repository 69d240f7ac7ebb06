"""Which variables a weight decay applies to, and the coupled (L2) form of it.

``weight_decay_includes`` / ``weight_decay_excludes`` are OneFlow's rules: regexes
*searched* in each full variable name (``dense1-bias``). With includes, only matching
variables decay; with excludes, all but the matching ones; setting both is an error;
with neither, every variable the optimizer updates decays.

``BIAS_AND_NORM`` is the one-line way to keep biases and normalization parameters out of
weight decay::

    flow.optimizer.AdamW(1e-3, weight_decay=0.01, weight_decay_excludes=flow.optimizer.BIAS_AND_NORM)

Decoupled decay (SGDW, AdamW, LARS, LAMB, Adafactor) is part of each update rule.
Coupled decay (Momentum, Adagrad, Ftrl, ProximalAdagrad: MindSpore's and PyTorch's
``weight_decay``) adds ``weight_decay * w`` to the gradient before the rule, after
clipping, and before gradient centralization (MindSpore's order).
"""

from __future__ import annotations

from collections.abc import Callable

import optax

__all__ = ["BIAS_AND_NORM", "coupled_decay"]

BIAS_AND_NORM = (
    r"(^|-)bias$",  # layers.dense/conv2d "<name>-bias", flax "Dense_0-bias"
    r"(^|-)(gamma|beta)$",  # batch_normalization / layer_norm scale and shift
    r"(?i)(layer|batch|group|instance|rms)_?norm",  # flax "LayerNorm_0-scale", BERT "LayerNorm"
)
"""Regexes matching biases and normalization parameters, for ``weight_decay_excludes``."""


def coupled_decay(rate_for: Callable[[str], float]) -> optax.GradientTransformation:
    """``g <- g + rate_for(name) * w`` for each variable (L2 weight decay, no state)."""

    def update(grads, state, params=None):
        out = {}
        for n, g in grads.items():
            rate = rate_for(n)
            out[n] = (g + rate * params[n]).astype(g.dtype) if rate else g
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)

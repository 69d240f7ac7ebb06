"""Losses beyond the softmax / sigmoid cross entropies of ``ops/nn.py``: OneFlow's
PyTorch-named functional losses (``flow.nn.L1Loss(input, target, reduction="mean")``,
``BCELoss``, ``BCEWithLogitsLoss``, ``MSELoss``, ``MarginRankingLoss``,
``TripletMarginLoss``, ``KLDivLoss``), ``smooth_l1_loss``, ``ctc_loss``,
``nn.sparse_cross_entropy`` and ``combined_margin_loss``.

Each computes what OneFlow's Python code computes (the formulas are in the docstrings),
in float32. In OneFlow these are functions, not modules: ``flow.nn.MSELoss(x, y)``
returns the loss.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jobflow._src.core import checks

__all__ = [
    "l1_loss",
    "bce_loss",
    "bce_with_logits_loss",
    "mse_loss",
    "margin_ranking_loss",
    "triplet_margin_loss",
    "kl_div_loss",
    "smooth_l1_loss",
    "ctc_loss",
    "sparse_cross_entropy",
    "distributed_sparse_softmax_cross_entropy_with_logits",
    "combined_margin_loss",
]


def _f32(*xs):
    return tuple(jnp.asarray(x).astype(jnp.float32) for x in xs)


def _reduce(loss, reduction, owner):
    reduction = checks.choice(owner, "reduction", reduction, ("none", "mean", "sum"))
    if reduction == "mean":
        return jnp.mean(loss)
    return jnp.sum(loss) if reduction == "sum" else loss


def _same_shape(a, b, owner, names=("input", "target")):
    if a.shape != b.shape:
        raise ValueError(f"{owner}: {names[0]} shape {a.shape} must equal {names[1]} shape {b.shape}")


def l1_loss(
    input: ArrayLike, target: ArrayLike, reduction: str = "mean", name: str | None = None
) -> jax.Array:
    """``|target - input|``, reduced by ``reduction`` (``"none"``, ``"mean"``, ``"sum"``)."""
    _same_shape(input, target, "nn.L1Loss")
    x, t = _f32(input, target)
    return _reduce(jnp.abs(t - x), reduction, "nn.L1Loss")


def mse_loss(
    input: ArrayLike, target: ArrayLike, reduction: str = "mean", name: str | None = None
) -> jax.Array:
    """``(target - input) ** 2``, reduced."""
    _same_shape(input, target, "nn.MSELoss")
    x, t = _f32(input, target)
    return _reduce(jnp.square(t - x), reduction, "nn.MSELoss")


def _weighted(loss, weight, shape, owner):
    if weight is None:
        return loss
    if weight.shape != shape:
        raise ValueError(f"{owner}: weight shape {weight.shape} must equal input shape {shape}")
    return loss * weight.astype(jnp.float32)


def bce_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    reduction: str = "mean",
    name: str | None = None,
) -> jax.Array:
    """``-(t * log(x) + (1 - t) * log(1 - x))`` times ``weight``, reduced. As OneFlow,
    the logs are not clamped (PyTorch clamps them at -100)."""
    _same_shape(input, target, "nn.BCELoss")
    x, t = _f32(input, target)
    loss = -(t * jnp.log(x) + (1 - t) * jnp.log(1 - x))
    return _reduce(_weighted(loss, weight, x.shape, "nn.BCELoss"), reduction, "nn.BCELoss")


def bce_with_logits_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    pos_weight: Any = None,
    reduction: str = "mean",
    name: str | None = None,
) -> jax.Array:
    """``(1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x))`` (computed stably),
    times ``weight``, reduced; ``pos_weight`` has one entry per class (the last axis)."""
    _same_shape(input, target, "nn.BCEWithLogitsLoss")
    x, t = _f32(input, target)
    softplus_neg = jax.nn.softplus(-x)
    if pos_weight is not None:
        if pos_weight.shape[0] != x.shape[-1]:
            raise ValueError(
                f"nn.BCEWithLogitsLoss: pos_weight length {pos_weight.shape[0]} must equal the classes {x.shape[-1]}"
            )
        log_weight = (jnp.broadcast_to(pos_weight.astype(jnp.float32), x.shape) - 1) * t + 1
        loss = (1 - t) * x + log_weight * softplus_neg
    else:
        loss = (1 - t) * x + softplus_neg
    return _reduce(
        _weighted(loss, weight, x.shape, "nn.BCEWithLogitsLoss"), reduction, "nn.BCEWithLogitsLoss"
    )


def margin_ranking_loss(
    input1: Any,
    input2: Any,
    target: ArrayLike,
    margin: float = 0.0,
    reduction: str = "mean",
    name: str | None = None,
) -> jax.Array:
    """``max(0, margin - target * (input1 - input2))``, reduced."""
    _same_shape(input1, input2, "nn.MarginRankingLoss", ("input1", "input2"))
    x1, x2, t = _f32(input1, input2, target)
    t = jnp.broadcast_to(t, x1.shape)
    return _reduce(jnp.maximum(margin - t * (x1 - x2), 0.0), reduction, "nn.MarginRankingLoss")


def _p_norm(x, p):
    """``(sum |x| ** p) ** (1/p)`` over axis 1."""
    if p == 2.0:
        return jnp.sqrt(jnp.sum(jnp.square(x), axis=1))
    return jnp.sum(jnp.abs(x) ** p, axis=1) ** (1.0 / p)


def triplet_margin_loss(
    anchor: Any,
    positive: Any,
    negative: Any,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
    name: str | None = None,
) -> jax.Array:
    """``max(0, margin + ||a - pos + eps||_p - ||a - neg + eps||_p)`` with norms over
    axis 1, reduced. ``swap=True`` raises, as in OneFlow."""
    if swap:
        raise NotImplementedError("nn.TripletMarginLoss(swap=True) is not supported (nor in OneFlow)")
    a, pos, neg = _f32(anchor, positive, negative)
    d1, d2 = _p_norm(a - pos + eps, p), _p_norm(a - neg + eps, p)
    return _reduce(jnp.maximum(margin + d1 - d2, 0.0), reduction, "nn.TripletMarginLoss")


def kl_div_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_target: bool = False,
    reduction: str = "mean",
    name: str | None = None,
) -> jax.Array:
    """``target * (log(target) - input)``, zero where ``rint(target + 0.5) == 0`` (target
    ``<= 0`` for probabilities); ``exp(target) * (target - input)`` when ``log_target``.
    ``"mean"`` averages over every element (as OneFlow; PyTorch's ``batchmean`` differs)."""
    x, t = _f32(input, target)
    if log_target:
        loss = jnp.exp(t) * (t - x)
    else:
        keep = jnp.rint(t + 0.5).astype(jnp.int8) != 0
        loss = jnp.where(keep, t * (jnp.log(jnp.where(keep, t, 1.0)) - x), 0.0)
    return _reduce(loss, reduction, "nn.KLDivLoss")


def smooth_l1_loss(
    prediction: ArrayLike, label: ArrayLike, beta: float = 1.0, name: str | None = None
) -> jax.Array:
    """Element-wise ``0.5 * d**2 / beta`` where ``d = |prediction - label| < beta``, else
    ``d - 0.5 * beta`` (no reduction)."""
    _same_shape(prediction, label, "smooth_l1_loss", ("prediction", "label"))
    x, t = _f32(prediction, label)
    d = jnp.abs(x - t)
    safe_beta = beta if beta > 0 else 1.0
    return jnp.where(d < beta, 0.5 * d * d / safe_beta, d - 0.5 * beta)


def _ctc_feasible(targets, input_lengths, target_lengths):
    """Whether an alignment exists: ``T >= L + (repeated neighbours in the labels)``."""
    pos = jnp.arange(targets.shape[1] - 1)[None, :]
    repeats = jnp.sum((targets[:, 1:] == targets[:, :-1]) & (pos + 1 < target_lengths[:, None]), axis=1)
    return input_lengths >= target_lengths + repeats


def ctc_loss(
    log_probs: Any,
    targets: jax.Array,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
    name: str | None = None,
) -> jax.Array:
    """Connectionist temporal classification loss (PyTorch's ``ctc_loss`` layout).

    ``log_probs`` ``(T, N, C)`` log-softmax outputs, ``targets`` ``(N, S)`` padded labels,
    ``input_lengths`` / ``target_lengths`` ``(N,)``. A sequence with no possible alignment
    has loss inf (0 with ``zero_infinity``). ``"mean"`` divides each sequence's loss by
    its target length (at least 1) and averages; ``"sum"`` adds. Computed by
    ``optax.ctc_loss``.
    """
    if log_probs.ndim != 3 or targets.ndim != 2:
        raise ValueError(
            f"ctc_loss needs log_probs (T, N, C) and targets (N, S); got {log_probs.shape}, {targets.shape}"
        )
    reduction = checks.choice("ctc_loss", "reduction", reduction, ("none", "mean", "sum"))
    steps = log_probs.shape[0]
    logits = jnp.transpose(log_probs.astype(jnp.float32), (1, 0, 2))
    logit_pad = (jnp.arange(steps)[None, :] >= input_lengths[:, None]).astype(jnp.float32)
    label_pad = (jnp.arange(targets.shape[1])[None, :] >= target_lengths[:, None]).astype(jnp.float32)
    loss = optax.ctc_loss(logits, logit_pad, targets.astype(jnp.int32), label_pad, blank_id=int(blank))
    feasible = _ctc_feasible(targets, input_lengths, target_lengths)
    loss = jnp.where(feasible, loss, 0.0 if zero_infinity else jnp.inf)
    if reduction == "mean":
        return jnp.mean(loss / jnp.maximum(target_lengths, 1).astype(jnp.float32))
    return jnp.sum(loss) if reduction == "sum" else loss


def _labels(labels, prediction, owner):
    if labels.ndim == prediction.ndim and labels.shape[-1] == 1:
        labels = jnp.squeeze(labels, -1)
    if labels.shape != prediction.shape[:-1]:
        raise ValueError(
            f"{owner}: labels shape {labels.shape} must be {prediction.shape[:-1]} (or end in 1)"
        )
    return labels.astype(jnp.int32)


def sparse_cross_entropy(labels: jax.Array, prediction: jax.Array, name: str | None = None) -> jax.Array:
    """Per-example ``-log(prediction[label])`` of probabilities ``prediction`` (no softmax)."""
    labels = _labels(labels, prediction, "nn.sparse_cross_entropy")
    p = jnp.take_along_axis(prediction.astype(jnp.float32), labels[..., None], axis=-1)
    return -jnp.log(p[..., 0])


def distributed_sparse_softmax_cross_entropy_with_logits(
    labels: ArrayLike, logits: jax.Array, name: str | None = None
) -> jax.Array:
    """``nn.sparse_softmax_cross_entropy_with_logits`` (OneFlow's variant for logits split
    across devices by class; the value is the same)."""
    labels = _labels(labels, logits, "nn.distributed_sparse_softmax_cross_entropy_with_logits")
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def combined_margin_loss(
    x: jax.Array, label: jax.Array, m1: float = 1, m2: float = 0, m3: float = 0, name: str | None = None
) -> jax.Array:
    """ArcFace / CosFace margins on cosine logits ``x`` ``(N, C)``: the label column
    becomes ``cos(m1 * acos(x) + m2) - m3``, the others stay ``x``."""
    if x.ndim != 2 or label.shape != x.shape[:1]:
        raise ValueError(f"combined_margin_loss needs x (N, C) and label (N,); got {x.shape}, {label.shape}")
    hit = label[:, None] == jnp.arange(x.shape[1])[None, :]
    safe = jnp.where(hit, x, 0.0)
    margin = jnp.cos(jnp.arccos(safe) * m1 + m2) - m3
    return jnp.where(hit, margin.astype(x.dtype), x)

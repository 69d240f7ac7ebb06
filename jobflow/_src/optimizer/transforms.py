"""The optax transformations a train step chains around the update rules.

Every transformation here takes and returns dicts keyed by full variable name (as the
rules do), so a selection by name is a plain dict filter:

* :func:`add_regularization`: ``get_variable``'s regularizers, ``g += r.grad(w)``;
* :func:`clip`: a clipping rule (``flow.optimizer.grad_clipping``) whose state reports
  the norm it saw (``ClipState.grad_norm``, for ``job.last_info``);
* :func:`partition`: one transformation per label on the variables carrying that label
  (parameter groups, the optimizers of a ``CombinedOptimizer``, clipping units).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["ClipState", "add_regularization", "clip", "partition"]


def add_regularization(regularizers: Mapping[str, object]) -> optax.GradientTransformation:
    """``g_n <- g_n + regularizers[n].grad(w_n)`` for each variable ``n`` that has one
    (OneFlow's l1/l2: ``l1 * sign(w) + l2 * w``); no state."""

    def update(grads, state, params=None):
        out = {n: g + regularizers[n].grad(params[n]) if n in regularizers else g for n, g in grads.items()}
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class ClipState(NamedTuple):
    """The norm the last update of :func:`clip` measured before clipping (float32)."""

    grad_norm: jax.Array


def clip(rule: Callable[[dict], tuple[dict, jax.Array]]) -> optax.GradientTransformation:
    """Clips with ``rule(grads) -> (clipped grads, norm before clipping)``; the new state
    holds that norm (its initial value is 0 and is never read)."""

    def init(params):
        return ClipState(jnp.zeros((), jnp.float32))

    def update(grads, state, params=None):
        clipped, norm = rule(grads)
        return clipped, ClipState(jnp.asarray(norm, jnp.float32))

    return optax.GradientTransformation(init, update)


def partition(
    transforms: Mapping[Any, optax.GradientTransformation], labels: Mapping[str, Hashable]
) -> optax.GradientTransformation:
    """Runs ``transforms[label]`` on the variables ``n`` with ``labels[n] == label``.

    Like ``optax.partition`` keyed by variable name, except that each transformation
    sees only its own variables (a dict of them, in the order of the updates) instead of
    a masked tree. The state is ``{label: state of transforms[label]}``. Every updated
    variable needs a label.
    """

    def select(tree: Mapping | None, label, keys):
        return None if tree is None else {n: tree[n] for n in keys if labels[n] == label}

    def init(params):
        return {label: tx.init(select(params, label, params)) for label, tx in transforms.items()}

    def update(updates, state, params=None):
        missing = [n for n in updates if n not in labels]
        if missing:
            raise ValueError(f"partition: variables {missing} have no label")
        out, new_state = {}, {}
        for label, tx in transforms.items():
            part, new_state[label] = tx.update(
                select(updates, label, updates), state[label], select(params, label, updates)
            )
            out.update(part)
        return {n: out[n] for n in updates}, new_state

    return optax.GradientTransformation(init, update)

"""The optax transformations a train step chains around the update rules.

Every transformation here takes and returns dicts keyed by full variable name (as the
rules do), so a selection by name is a plain dict filter:

* :func:`add_regularization`: ``get_variable``'s regularizers, ``g += r.grad(w)``;
* :func:`clip`: a clipping rule (``flow.optimizer.grad_clipping``) whose state reports
  the norm it saw (``ClipState.grad_norm``, for ``job.last_info``);
* :func:`partition`: one transformation per label on the variables carrying that label
  (parameter groups, the optimizers of a ``CombinedOptimizer``, clipping units);
* :func:`row_sparse`: a rule that leaves untouched the rows of chosen variables whose
  gradient is all zero (``function_config.indexed_slices_optimizer_conf``). On a dense
  gradient it costs O(variable); an embedding table read only through ``flow.gather``
  gets its gradient as rows instead and runs this same rule on them
  (``sparse_rows.gathered_rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["ClipState", "add_regularization", "clip", "partition", "row_mask", "row_sparse"]


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


def row_mask(g: jax.Array) -> jax.Array:
    """True for the rows (slices along axis 0) of ``g`` with a non-zero element, shaped
    to broadcast against ``g`` (a scalar is one row)."""
    if g.ndim == 0:
        return g != 0
    active = jnp.any(g != 0, axis=tuple(range(1, g.ndim)))
    return active.reshape((g.shape[0],) + (1,) * (g.ndim - 1))


def _keep_rows(new_state, old_state, masks: Mapping[str, jax.Array], shapes: Mapping[str, tuple]):
    """``new_state`` with the old value kept in the inactive rows of each state leaf that
    sits under a masked variable's key and has that variable's shape (its slots)."""

    def pick(path, new, old):
        for k in path:
            name = getattr(k, "key", None)
            if name in masks and jnp.shape(new) == shapes[name]:
                return jnp.where(masks[name], new, old)
        return new

    return jax.tree_util.tree_map_with_path(pick, new_state, old_state)


def row_sparse(tx: optax.GradientTransformation, names) -> optax.GradientTransformation:
    """``tx`` that leaves the inactive rows of the variables ``names`` untouched.

    A row (slice along axis 0) is inactive when its gradient, as it reaches ``tx``, is
    all zero: for an embedding read through ``flow.gather``, the rows this step did not
    look up. Those rows get a zero update (so no weight decay either) and keep the old
    value of every slot of the variable's shape (momentum, ``m``, ``v``). Example, SGDW
    with lr 0.1, wd 0.5 on rows ``[1, 2]`` with gradients ``[0, 1]``: dense, row 0 decays
    to 0.95; row-sparse it stays 1 and row 1 becomes ``2 - 0.1 * (1 + 0.5 * 2) = 1.8``.
    The state's structure is ``tx``'s own.
    """
    names = frozenset(names)

    def update(grads, state, params=None):
        updates, new_state = tx.update(grads, state, params)
        masks = {n: row_mask(g) for n, g in grads.items() if n in names}
        if not masks:
            return updates, new_state
        shapes = {n: jnp.shape(grads[n]) for n in masks}
        updates = {
            n: jnp.where(masks[n], u, jnp.zeros_like(u)) if n in masks else u for n, u in updates.items()
        }
        return updates, _keep_rows(new_state, state, masks, shapes)

    return optax.GradientTransformation(tx.init, update)

"""Row-sparse gradients and updates: an embedding table's step costs O(rows touched).

When every use of a variable in a job body is ``flow.gather(table, ids)`` along axis 0 and
its optimizer updates only the rows that the step touched (``LazyAdam``, or a variable of
``function_config.indexed_slices_optimizer_conf`` under a rule marked ``_row_local``:
SGD, SGDW, Adam, AdamW, Momentum, RMSProp, Adagrad, ProximalAdagrad, FTRL), the
train step differentiates with respect to the gathered rows instead of the table
(``runtime/step.py``). The gradient then reaches the optimizer chain as
:class:`IndexedRows`, ``(ids, rows)``:

* ``ids``: int32 of static length ``K`` (the number of ids the step gathered), sorted,
  each valid row id at most once; the ``K - u`` places after the ``u`` distinct valid ids
  hold the distinct out-of-range values ``num_rows, num_rows + 1, ...`` (padding);
* ``rows``: ``K`` rows, row ``j`` the sum of the row gradients of every gathered position
  whose id is ``ids[j]`` (duplicates summed, :func:`coalesce`); zero at the padding.

The dense gradient is ``zeros(table).at[ids].add(rows)``: the same numbers (the
duplicates are summed in the order of the gathered positions, as the dense scatter-add
sums them), so every norm of it is the norm of ``rows`` up to the float32 summation
order. Negative ids count from the end, as ``flow.gather`` reads them; ids outside
``[-num_rows, num_rows)`` (``flow.gather`` reads zeros there) get no gradient.

:func:`gathered_rows` runs an elementwise rule on those rows only: it reads the
variable and each slot of the variable's shape at ``ids``, runs the rule on the ``K``
rows, and returns :class:`RowWrite` values (new rows at ``ids``) that :func:`write`
scatters back (padding dropped). Slots stay full-size arrays in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "IndexedRows",
    "RowWrite",
    "apply_update",
    "coalesce",
    "gathered_rows",
    "map_values",
    "select",
    "take_rows",
    "values",
    "write",
]


class IndexedRows:
    """A row-sparse gradient (or update) of a variable with ``num_rows`` rows (see the
    module docstring for the form of ``ids`` and ``rows``). A plain object inside one
    trace (not a pytree)."""

    def __init__(self, ids: jax.Array, rows: jax.Array, num_rows: int) -> None:
        self.ids, self.rows, self.num_rows = ids, rows, int(num_rows)

    @property
    def dtype(self):
        return self.rows.dtype

    def replace(self, rows: jax.Array) -> IndexedRows:
        return IndexedRows(self.ids, rows, self.num_rows)


class RowWrite:
    """New values ``rows`` of the rows ``ids`` of a stored array (ids as in
    :class:`IndexedRows`; the padding ids are out of range and dropped by :func:`write`)."""

    def __init__(self, ids: jax.Array, rows: jax.Array) -> None:
        self.ids, self.rows = ids, rows


def values(g):
    """The array of ``g``'s values: ``g.rows`` for :class:`IndexedRows`, else ``g``."""
    return g.rows if isinstance(g, IndexedRows) else g


def map_values(fn: Callable[[jax.Array], jax.Array], g):
    """``fn`` applied to ``g`` or to the rows of an :class:`IndexedRows` (an elementwise
    ``fn`` keeps the padding rows zero only if ``fn(0) == 0``, true of scaling and clipping)."""
    return g.replace(fn(g.rows)) if isinstance(g, IndexedRows) else fn(g)


def take_rows(x: jax.Array, ids: jax.Array) -> jax.Array:
    """``x[ids]`` along axis 0; the out-of-range (padding) ids read zeros."""
    return x.at[ids].get(mode="fill", fill_value=0, indices_are_sorted=True, unique_indices=True)


def write(base: jax.Array, value) -> jax.Array:
    """``value`` itself, or for a :class:`RowWrite` ``base`` with its rows set at ``ids``."""
    if not isinstance(value, RowWrite):
        return value
    rows = value.rows.astype(base.dtype)
    return base.at[value.ids].set(rows, mode="drop", indices_are_sorted=True, unique_indices=True)


def select(pred, new, old: jax.Array):
    """``where(pred, new, old)`` for a scalar ``pred``; for a :class:`RowWrite` only at
    its rows (O(rows), the other rows are not written anyway)."""
    if isinstance(new, RowWrite):
        return RowWrite(new.ids, jnp.where(pred, new.rows, take_rows(old, new.ids).astype(new.rows.dtype)))
    return jnp.where(pred, new, old.astype(new.dtype))


def coalesce(ids: jax.Array, rows: jax.Array, num_rows: int) -> IndexedRows:
    """The :class:`IndexedRows` of the gradient of ``table[ids]`` whose cotangent is
    ``rows`` (shape ``ids.shape + row shape``): the distinct ids, sorted, with the rows of
    equal ids summed (``segment_sum``, in the order of the positions). As ``flow.gather``
    (``jnp.take``) reads them, an id in ``[-num_rows, 0)`` is row ``id + num_rows``; ids
    outside ``[-num_rows, num_rows)`` read zeros and are dropped. Cost: a sort of the ``K = ids.size`` ids and one
    ``K``-row scatter-add, whatever ``num_rows`` is."""
    flat = ids.reshape(-1).astype(jnp.int32)
    k = flat.shape[0]
    rows = rows.reshape((k,) + rows.shape[ids.ndim :])
    flat = jnp.where(flat < 0, flat + num_rows, flat)  # -1 is the last row, as jnp.take's
    flat = jnp.where((flat >= 0) & (flat < num_rows), flat, num_rows)
    uids, inverse = jnp.unique(flat, size=k, fill_value=num_rows, return_inverse=True)
    summed = jax.ops.segment_sum(rows, inverse.reshape(-1), num_segments=k)
    pad = uids >= num_rows  # a suffix: uids is sorted and num_rows is the largest value
    uids = jnp.where(pad, num_rows + jnp.arange(k, dtype=jnp.int32), uids)
    summed = jnp.where(pad.reshape((k,) + (1,) * (rows.ndim - 1)), jnp.zeros_like(summed), summed)
    return IndexedRows(uids, summed.astype(rows.dtype), num_rows)


def _row_leaf_flags(state, sparse: dict, shapes: dict) -> list[str | None]:
    """Per leaf of ``state``: the sparse variable it is a slot of (a leaf under that
    variable's key with the variable's full shape), else None."""
    flags: list[str | None] = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        owner = None
        for k in path:
            name = getattr(k, "key", None)
            if name in sparse and jnp.shape(leaf) == shapes[name]:
                owner = name
                break
        flags.append(owner)
    return flags


def gathered_rows(tx: optax.GradientTransformation, names: Iterable[str]) -> optax.GradientTransformation:
    """``tx`` run on the gathered rows of the variables ``names`` whose gradient arrives
    as :class:`IndexedRows` (any other gradient goes to ``tx`` as it is).

    ``tx`` must be elementwise along axis 0 for those variables (each row's update reads
    only that row of the gradient, the variable and the slots): then the result equals
    ``tx`` on the dense gradient at the rows ``ids``, and the dense result elsewhere is
    what a lazy rule leaves there (the old values). Each slot of the variable's shape is
    read at ``ids`` and returned as a :class:`RowWrite`; the update of the variable is an
    :class:`IndexedRows` of deltas (``w[ids] += delta``). O(rows touched).
    """
    names = frozenset(names)

    def update(grads, state, params=None):
        sparse = {n: g for n, g in grads.items() if n in names and isinstance(g, IndexedRows)}
        if not sparse:
            return tx.update(grads, state, params)
        shapes = {n: (g.num_rows, *g.rows.shape[1:]) for n, g in sparse.items()}
        sub_grads = {n: values(g) for n, g in grads.items()}
        sub_params = None
        if params is not None:
            sub_params = {n: take_rows(p, sparse[n].ids) if n in sparse else p for n, p in params.items()}
        leaves, treedef = jax.tree_util.tree_flatten(state)
        flags = _row_leaf_flags(state, sparse, shapes)
        sub_leaves = [x if f is None else take_rows(x, sparse[f].ids) for x, f in zip(leaves, flags)]
        updates, new_state = tx.update(
            sub_grads, jax.tree_util.tree_unflatten(treedef, sub_leaves), sub_params
        )
        new_leaves = treedef.flatten_up_to(new_state)
        out_leaves = [x if f is None else RowWrite(sparse[f].ids, x) for x, f in zip(new_leaves, flags)]
        updates = {n: sparse[n].replace(u) if n in sparse else u for n, u in updates.items()}
        return updates, jax.tree_util.tree_unflatten(treedef, out_leaves)

    return optax.GradientTransformation(tx.init, update)


def apply_update(param: jax.Array, update: Any):
    """The new value of a variable: ``param + update``, or for an :class:`IndexedRows`
    update a :class:`RowWrite` of ``param[ids] + rows`` (the same sum at those rows)."""
    if isinstance(update, IndexedRows):
        return RowWrite(update.ids, take_rows(param, update.ids) + update.rows.astype(param.dtype))
    return param + update.astype(param.dtype)

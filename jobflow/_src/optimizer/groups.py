"""MindSpore-style parameter groups and gradient centralization.

An optimizer's ``variables`` may be a list of group dicts instead of one selection::

    flow.optimizer.Momentum(0.1, 0.9, weight_decay=1e-4, variables=[
        {"params": r"^conv", "lr": 0.01, "grad_centralization": True},
        {"params": r"^dense", "weight_decay": 0.0},
    ])

Keys (MindSpore's): ``params`` (required: what ``variables`` accepts — a list of full
names, a regex or a predicate), ``lr`` (a number, schedule, callable or list, as
``lr_scheduler``), ``weight_decay`` (only for optimizers that have one),
``grad_centralization`` (bool), and ``order_params`` (alone in its dict; MindSpore uses it
only to order parameters, so jobflow accepts and ignores it). Missing keys take the
optimizer's own values. Each group becomes one update (``job.last_info`` reports its
learning rate as ``lr``, ``lr_1``, ...); groups must select disjoint, non-empty sets of
variables. Gradient clipping still covers all groups of the optimizer together.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import optax

from jobflow._src.core import checks
from jobflow._src.schedule.base import as_schedule

__all__ = ["GROUP_KEYS", "is_group_list", "parse_groups", "centralize_gradients"]

GROUP_KEYS = ("params", "lr", "weight_decay", "grad_centralization", "order_params")


def is_group_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and any(isinstance(g, Mapping) for g in value)


def parse_groups(owner: str, groups, has_weight_decay: bool, check_selection) -> list[dict]:
    """Validated groups: ``{"params": sel, "lr"?: Schedule, "weight_decay"?: float,
    "grad_centralization"?: bool}`` (``order_params`` dicts dropped)."""
    out = []
    for i, group in enumerate(groups):
        where = f"{owner}(variables[{i}])"
        if not isinstance(group, Mapping):
            raise TypeError(f"{where}: parameter groups must all be dicts; got {group!r}")
        unknown = [k for k in group if k not in GROUP_KEYS]
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; a parameter group takes {list(GROUP_KEYS)}")
        if "order_params" in group:
            if len(group) > 1:
                raise ValueError(
                    f"{where}: 'order_params' must be alone in its dict (MindSpore's rule); "
                    f"got keys {list(group)}"
                )
            continue
        if "params" not in group or group["params"] is None:
            raise ValueError(
                f"{where}: a parameter group needs 'params' (variable names, a regex or a predicate)"
            )
        parsed = {"params": check_selection(where, group["params"])}
        if "lr" in group:
            parsed["lr"] = as_schedule(group["lr"], argname=f"{owner}(variables[{i}]['lr'])")
        if "weight_decay" in group:
            if not has_weight_decay:
                raise ValueError(
                    f"{where}: {owner} has no weight decay, so a group cannot set 'weight_decay'; "
                    f"use regularizers on get_variable or an optimizer with weight decay"
                )
            parsed["weight_decay"] = checks.number(where, "weight_decay", group["weight_decay"], low=0)
        if "grad_centralization" in group:
            parsed["grad_centralization"] = checks.flag(
                where, "grad_centralization", group["grad_centralization"]
            )
        out.append(parsed)
    if not out:
        raise ValueError(f"{owner}(variables=...): the parameter groups select nothing (only 'order_params')")
    return out


def _centralize(g):
    """``g - mean(g, axes 1..n-1)`` when ``g.ndim >= 2`` and ``g.shape[1] % 16 == 0`` (MindSpore's rule)."""
    if g.ndim < 2 or g.shape[1] % 16:
        return g
    return g - jnp.mean(g, axis=tuple(range(1, g.ndim)), keepdims=True)


def centralize_gradients() -> optax.GradientTransformation:
    """Gradient centralization (Yong et al. 2020) with MindSpore's shape condition."""

    def update(grads, state, params=None):
        return {n: _centralize(g) for n, g in grads.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)

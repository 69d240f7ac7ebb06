"""An optimizer's initial state made on the host, without running XLA.

``OptimizerPlan`` traces the rule's ``init`` once (``plans.build_plan``). Most rules'
``init`` only fills arrays with a constant (Adam's ``m`` and ``v``, SGD's momentum,
optax's ``count``) or passes a variable through; :func:`evaluate` computes such a jaxpr's
outputs with numpy, which the store puts on the devices as it does any new variable. Run
op by op instead, each fill is an XLA dispatch (and a compilation per new shape): 512
slots of a 128-layer MLP cost about 0.3 s of its first call on 2 cores.

Only the equations the outputs need are evaluated (a rule may compute its step sizes
at construction; those are traced but unused). A jaxpr that needs anything else returns
None, and the caller runs ``init`` as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from jax.extend import core as jex_core

__all__ = ["evaluate"]


class _NotOnHost(Exception):
    """An equation without a host rule: the jaxpr is run by XLA instead."""


def _fill(aval, x, **_params) -> np.ndarray:
    """``broadcast_in_dim`` of a scalar: a new array of ``aval``'s shape filled with it."""
    if np.ndim(x) != 0:
        raise _NotOnHost
    return np.full(aval.shape, np.asarray(x), dtype=aval.dtype)


def _convert(aval, x, **_params) -> np.ndarray:
    return np.asarray(x).astype(aval.dtype)


# primitive name -> rule(output aval, *inputs, **params) -> numpy array
_RULES: dict[str, Callable[..., np.ndarray]] = {
    "broadcast_in_dim": _fill,
    "convert_element_type": _convert,
    "copy": lambda aval, x: np.array(x, dtype=aval.dtype),
}


def evaluate(closed_jaxpr, args) -> list | None:
    """The outputs of ``closed_jaxpr`` on ``args`` (arrays), computed with numpy, or None
    when an output needs an equation other than a constant fill, a cast or a copy.

    An output that is an input is returned as that input (as ``jax.jit`` of the same
    function would return a copy of it with the same value)."""
    jaxpr = closed_jaxpr.jaxpr
    env = dict(zip(jaxpr.invars, args))
    env.update(zip(jaxpr.constvars, closed_jaxpr.consts))
    producer = {v: eqn for eqn in jaxpr.eqns for v in eqn.outvars}

    def value(v):
        if isinstance(v, jex_core.Literal):
            return np.asarray(v.val, dtype=v.aval.dtype)
        if v not in env:
            eqn = producer[v]
            rule = _RULES.get(eqn.primitive.name)
            if rule is None or len(eqn.outvars) != 1:
                raise _NotOnHost
            env[v] = rule(v.aval, *[value(x) for x in eqn.invars], **eqn.params)
        return env[v]

    try:
        return [value(v) for v in jaxpr.outvars]
    except _NotOnHost:
        return None

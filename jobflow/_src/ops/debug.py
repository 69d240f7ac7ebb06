"""Looking into a running job: ``flow.watch`` / ``flow.watch_diff`` and the profiler marks.

``watch(x, handler)`` calls ``handler`` with ``x``'s value (a numpy array) each time the
job runs; ``h = watch_diff(h, handler)`` with the gradient of the loss with respect to ``h``
(train jobs; the backward pass; see :func:`watch_diff` for how it differs from OneFlow). A ``None`` or string handler prints the value, prefixed
by the string. The calls happen on the host while the compiled step runs
(``jax.debug.callback``), so the order of several watchers is not fixed. They cost a
device-to-host copy per step: remove them from fast loops.

The NVTX marks of ``flow.profiler`` have no XLA counterpart: ``nvtx_start`` / ``nvtx_end``
return their input, ``range_push`` / ``range_pop`` do nothing (use ``jax.profiler``).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["watch", "watch_diff", "nvtx_start", "nvtx_end", "range_push", "range_pop"]


def _handler(handler_or_prompt, op):
    if handler_or_prompt is None or isinstance(handler_or_prompt, str):
        prompt = handler_or_prompt or ""
        return lambda value: print(prompt, value)
    if not callable(handler_or_prompt):
        raise TypeError(
            f"{op}(handler_or_prompt) must be a callable, a string or None; got {handler_or_prompt!r}"
        )
    return handler_or_prompt


def _host(handler):
    return lambda value: handler(np.asarray(value))


def watch(blob_watched: Any, handler_or_prompt: Any = None) -> None:
    """Calls ``handler_or_prompt(value)`` with ``blob_watched``'s value (numpy) every step."""
    jax.debug.callback(_host(_handler(handler_or_prompt, "watch")), blob_watched)


def watch_diff(blob_watched: Any, handler_or_prompt: Any = None) -> jax.Array:
    """Calls ``handler_or_prompt(grad)`` with the loss gradient at ``blob_watched`` (numpy)
    every train step, **when the body goes on with the returned array**:
    ``h = flow.watch_diff(h, fn)``.

    Differs from OneFlow, whose ``watch_diff`` returns nothing and taps ``h`` in place: a
    JAX trace cannot reach the gradient of an intermediate the body keeps using, so the
    watched value must flow through the returned identity (OneFlow code that ignores the
    result compiles and runs, but the handler is never called).
    """
    handler = _host(_handler(handler_or_prompt, "watch_diff"))

    @jax.custom_vjp
    def tap(x):
        return x

    def bwd(_, g):
        jax.debug.callback(handler, g)
        return (g,)

    tap.defvjp(lambda x: (x, None), bwd)
    return tap(blob_watched)


def nvtx_start(x, mark_prefix, name=None):
    """``x`` (OneFlow opens an NVTX range here; XLA has none)."""
    return x


def nvtx_end(x, mark_prefix, name=None):
    """``x`` (OneFlow closes an NVTX range here)."""
    return x


def range_push(range_name):
    """Does nothing (OneFlow pushes an NVTX range)."""


def range_pop():
    """Does nothing (OneFlow pops an NVTX range)."""

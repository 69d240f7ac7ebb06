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

import inspect
from typing import Any

import jax
import numpy as np

from jobflow._src.core.blob import as_blob

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


_MIRRORED_AXIS = "data"  # runtime.sharding.AXIS: the device axis of a mirrored-view body


def _kind(handler) -> str:
    """What the handler takes, by its parameter's annotation as in OneFlow: ``"list"``
    (``tp.ListNumpy``: per-device arrays), ``"numpy"`` (``tp.Numpy``) or ``"blob"`` (none:
    a ``Blob``, a numpy array with ``.numpy()``). Read by name: ops do not import the runtime."""
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return "blob"
    ann = params[0].annotation if params else inspect.Parameter.empty
    name = getattr(ann, "__name__", ann if isinstance(ann, str) else None)
    if name in ("ListNumpy", "tp.ListNumpy", "oft.ListNumpy"):
        return "list"
    return "blob" if ann is inspect.Parameter.empty else "numpy"


def _host(handler, parts: bool = False):
    """The host callback for a value (``parts``: stacked per-device values, mirrored view)."""
    kind = _kind(handler)

    def call(value):
        value = np.asarray(value)
        pieces = list(value) if parts else [value]
        if kind == "list":
            return handler(pieces)
        whole = np.concatenate([np.atleast_1d(p) for p in pieces]) if parts else value
        return handler(as_blob(whole, pieces if parts else None) if kind == "blob" else whole)

    return call


def _mirrored() -> bool:
    """True inside a mirrored-view body (the per-device axis is bound)."""
    try:
        jax.lax.axis_index(_MIRRORED_AXIS)
    except NameError:
        return False
    return True


def _tap(handler, value) -> None:
    """Calls ``handler`` on the host with ``value``; in a mirrored-view body once, with the
    devices' values gathered (OneFlow's watch sees the whole mirrored blob)."""
    if not _mirrored():
        jax.debug.callback(_host(handler), value)
        return
    stacked = jax.lax.all_gather(value, _MIRRORED_AXIS)
    first = jax.lax.axis_index(_MIRRORED_AXIS) == 0
    host = _host(handler, parts=True)
    jax.lax.cond(first, lambda v: jax.debug.callback(host, v), lambda v: None, stacked)


def watch(blob_watched: Any, handler_or_prompt: Any = None) -> None:
    """Calls ``handler_or_prompt(value)`` with ``blob_watched``'s value every step.

    The value is what the handler's annotation asks for, as in OneFlow: ``tp.Numpy`` a
    numpy array, ``tp.ListNumpy`` a list of per-device arrays, none a ``Blob`` (a numpy
    array with ``.numpy()`` / ``.numpy_list()``). In the mirrored view the devices' values
    are gathered and the handler is called once (concatenated along axis 0).
    """
    _tap(_handler(handler_or_prompt, "watch"), blob_watched)


def watch_diff(blob_watched: Any, handler_or_prompt: Any = None) -> jax.Array:
    """Calls ``handler_or_prompt(grad)`` with the loss gradient at ``blob_watched`` (numpy)
    every train step, **when the body goes on with the returned array**:
    ``h = flow.watch_diff(h, fn)``.

    Differs from OneFlow, whose ``watch_diff`` returns nothing and taps ``h`` in place: a
    JAX trace cannot reach the gradient of an intermediate the body keeps using, so the
    watched value must flow through the returned identity (OneFlow code that ignores the
    result compiles and runs, but the handler is never called).
    """
    handler = _handler(handler_or_prompt, "watch_diff")

    @jax.custom_vjp
    def tap(x):
        return x

    def bwd(_, g):
        _tap(handler, g)
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

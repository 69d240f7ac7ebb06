"""Automatic mixed precision: where ops choose their compute dtype.

OneFlow's lists (reference §4): white-list ops (matmul, conv) compute in the low dtype;
gray and clear ops follow their inputs; everything else (losses, reductions) in float32.
With AMP off every function here returns its inputs unchanged.
"""

from __future__ import annotations

from jobflow import _trace


def low_dtype():
    """The low dtype of the job being traced, or None when AMP is off."""
    ctx = _trace.current()
    return None if ctx is None else ctx.amp_dtype


def white(*xs):
    """Inputs of a white-list op (matmul, conv), cast to the low dtype under AMP."""
    dt = low_dtype()
    if dt is None:
        return xs
    return tuple(x.astype(dt) for x in xs)

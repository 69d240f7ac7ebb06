"""Data types, with OneFlow's names (``flow.float``, ``flow.int32``, ...).

A jobflow dtype is a :class:`numpy.dtype`. JAX runs with 32-bit defaults unless
``jax_enable_x64`` is on; then ``int64``/``float64`` are stored as ``int32``/``float32``
(:func:`canonical` tells which dtype an array of a given dtype really gets).
"""

from __future__ import annotations

import jax
import ml_dtypes
import numpy as np
from jax.typing import DTypeLike

float16 = half = np.dtype("float16")
bfloat16 = np.dtype(ml_dtypes.bfloat16)
float32 = np.dtype("float32")
float64 = double = np.dtype("float64")
int8 = char = np.dtype("int8")
uint8 = np.dtype("uint8")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

_NAMES = {
    "float": float32,
    "float32": float32,
    "float16": float16,
    "half": float16,
    "bfloat16": bfloat16,
    "float64": float64,
    "double": float64,
    "int8": int8,
    "char": int8,
    "uint8": uint8,
    "int32": int32,
    "int64": int64,
    "bool": bool_,
}


def as_dtype(dtype: DTypeLike, argname: str = "dtype") -> np.dtype:
    """Returns ``dtype`` (a numpy/jax dtype, a jobflow dtype or a name) as a numpy dtype."""
    if isinstance(dtype, str) and dtype in _NAMES:
        return _NAMES[dtype]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{argname} must be a dtype such as flow.float32 or flow.int32; got {dtype!r}"
        ) from None


def canonical(dtype: DTypeLike) -> np.dtype:
    """The dtype JAX really stores for ``dtype`` (int64 -> int32 unless x64 is enabled)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(as_dtype(dtype)))


def is_floating(dtype: DTypeLike) -> bool:
    return jax.numpy.issubdtype(as_dtype(dtype), jax.numpy.floating)


class Float32Value(float):
    """A ``float`` holding a float32 value exactly, printed with the fewest digits that
    identify that float32: ``0.001`` rather than ``0.0010000000474974513``.

    What a train step reports (``job.last_lr``, ``job.last_info``) is float32; converting
    it to a Python float keeps the value exactly (it still compares equal to the
    ``np.float32`` the step used) but shows float32's rounding noise. This subclass
    changes only ``repr`` / ``str``; arithmetic gives plain floats.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        value = float(self)
        if not np.isfinite(value) or value.is_integer():
            return float.__repr__(value)
        return float.__repr__(float(str(np.float32(value))))

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self) if not spec else float.__format__(float(self), spec)

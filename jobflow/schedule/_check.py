"""Construction-time validation shared by every schedule.

Each check raises ``ValueError``/``TypeError`` naming the owner and the argument and echoing
the value: ``StepLR(step_size) must be an int > 0; got step_size=0``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

__all__ = ["number", "integer", "choice", "function", "int_list", "flag"]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def number(owner: str, name: str, value, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite real number within ``[lo, hi]`` (``(lo``/``hi)`` when open)."""
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{owner}({name}) must be a finite number; got {name}={value!r}")
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    high_bad = hi is not None and (value >= hi if hi_open else value > hi)
    if low_bad or high_bad:
        left = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        right = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
        bounds = " and ".join(b for b in (left, right) if b)
        raise ValueError(f"{owner}({name}) must be {bounds}; got {name}={value!r}")
    return float(value)


def integer(owner: str, name: str, value, *, lo: int | None = 0, hi: int | None = None) -> int:
    """An ``int`` (not a bool, not a float) within ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{owner}({name}) must be an int; got {name}={value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = " and ".join(b for b in (f">= {lo}" if lo is not None else "",
                                          f"<= {hi}" if hi is not None else "") if b)
        raise ValueError(f"{owner}({name}) must be an int {bounds}; got {name}={value!r}")
    return int(value)


def choice(owner: str, name: str, value, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{owner}({name}) must be one of {list(options)}; got {name}={value!r}")
    return value


def function(owner: str, name: str, value) -> Callable:
    if not callable(value):
        raise TypeError(f"{owner}({name}) must be a callable step -> value; got {name}={value!r}")
    return value


def flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}({name}) must be True or False; got {name}={value!r}")
    return bool(value)


def int_list(owner: str, name: str, values, *, lo: int = 0, increasing: str | None = None) -> tuple:
    """A list of ints ``>= lo``; ``increasing`` is None, "strict" or "non-strict"."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{owner}({name}) must be a list of ints; got {name}={values!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{owner}({name}) must hold ints >= {lo}; got {name}[{i}]={v!r} in {list(values)!r}")
        out.append(int(v))
    pairs = list(zip(out, out[1:]))
    if increasing == "strict" and any(b <= a for a, b in pairs):
        raise ValueError(f"{owner}({name}) must be strictly increasing; got {name}={list(values)!r}")
    if increasing == "non-strict" and any(b < a for a, b in pairs):
        raise ValueError(f"{owner}({name}) must be non-decreasing; got {name}={list(values)!r}")
    return tuple(out)

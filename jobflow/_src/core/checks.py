"""The argument checks every jobflow constructor uses: one vocabulary, one wording.

Each check returns the value (converted: ``float``, ``int``, ``tuple``) or raises
:class:`~jobflow.errors.ArgumentError` naming the owner and the argument, saying what was
expected and echoing the value::

    StepLR(step_size) must be an int >= 1; got step_size=0
    Adam(beta1) must be >= 0 and < 1; got beta1=1.0
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

from jobflow._src.core.errors import ArgumentError

__all__ = [
    "number",
    "fraction",
    "integer",
    "choice",
    "function",
    "flag",
    "int_list",
    "patterns",
    "matches_any",
]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "" if low is None else f"{'>' if low_open else '>='} {low}"
    right = "" if high is None else f"{'<' if high_open else '<='} {high}"
    return " and ".join(b for b in (left, right) if b)


def number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number within ``[low, high]`` (``(low`` / ``high)`` when open)."""
    if not _is_real(value) or not math.isfinite(value):
        raise ArgumentError(f"{owner}({name}) must be a finite number; got {name}={value!r}")
    low_bad = low is not None and (value <= low if low_open else value < low)
    high_bad = high is not None and (value >= high if high_open else value > high)
    if low_bad or high_bad:
        raise ArgumentError(
            f"{owner}({name}) must be {_bounds(low, high, low_open, high_open)}; got {name}={value!r}"
        )
    return float(value)


def fraction(owner: str, name: str, value: Any) -> float:
    """A decay factor such as a momentum or a beta: a number in ``[0, 1)``."""
    return number(owner, name, value, low=0, high=1, high_open=True)


def integer(owner: str, name: str, value: Any, *, low: int | None = 0, high: int | None = None) -> int:
    """An ``int`` (not a bool, not a float) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{owner}({name}) must be an int; got {name}={value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ArgumentError(
            f"{owner}({name}) must be an int {_bounds(low, high, False, False)}; got {name}={value!r}"
        )
    return int(value)


def choice(owner: str, name: str, value: Any, options: Sequence[str]) -> str:
    """One of ``options``."""
    if value not in options:
        raise ArgumentError(f"{owner}({name}) must be one of {list(options)}; got {name}={value!r}")
    return value


def function(owner: str, name: str, value: Any) -> Callable:
    """A callable (a schedule's ``step -> value`` function)."""
    if not callable(value):
        raise ArgumentError(f"{owner}({name}) must be a callable step -> value; got {name}={value!r}")
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ArgumentError(f"{owner}({name}) must be True or False; got {name}={value!r}")
    return value


def int_list(owner: str, name: str, values: Any, *, low: int = 0, increasing: str | None = None) -> tuple:
    """A list of ints ``>= low``; ``increasing`` is None, ``"strict"`` or ``"non-strict"``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentError(f"{owner}({name}) must be a list of ints; got {name}={values!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ArgumentError(
                f"{owner}({name}) must hold ints >= {low}; got {name}[{i}]={v!r} in {list(values)!r}"
            )
        out.append(int(v))
    pairs = list(zip(out, out[1:]))
    if increasing == "strict" and any(b <= a for a, b in pairs):
        raise ArgumentError(f"{owner}({name}) must be strictly increasing; got {name}={list(values)!r}")
    if increasing == "non-strict" and any(b < a for a, b in pairs):
        raise ArgumentError(f"{owner}({name}) must be non-decreasing; got {name}={list(values)!r}")
    return tuple(out)


def patterns(owner: str, name: str, value: Any) -> tuple[str, ...] | None:
    """None, a regex or a list of regexes (searched in full variable names), checked to compile."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(p, str) for p in items):
        raise ArgumentError(f"{owner}({name}) must be a regex string or a list of them; got {name}={value!r}")
    for p in items:
        try:
            re.compile(p)
        except re.error as e:
            raise ArgumentError(f"{owner}({name}) has an invalid regex {p!r}: {e}") from None
    return tuple(items)


def matches_any(pats: tuple[str, ...], name: str) -> bool:
    """True when any of ``pats`` is found in ``name``."""
    return any(re.search(p, name) for p in pats)

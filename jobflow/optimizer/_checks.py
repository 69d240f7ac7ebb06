"""Argument checks shared by the optimizer constructors.

Each raises at construction with a message naming the optimizer, the argument, what was
expected and what came.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence


def number(owner: str, name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """``value`` as a float, checked to be finite and inside the given interval."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        where = f"in {lo or '(-inf'}, {hi or 'inf)'}" if (lo or hi) else "finite"
        raise ValueError(f"{owner}({name}) must be a number {where}; got {name}={value!r}")
    return float(value)


def fraction(owner: str, name: str, value) -> float:
    """A decay factor such as a momentum or a beta: a number in [0, 1)."""
    return number(owner, name, value, low=0, high=1, high_open=True)


def boolean(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}({name}) must be True or False; got {name}={value!r}")
    return value


def patterns(owner: str, name: str, value) -> tuple[str, ...] | None:
    """A regex or a list of regexes (searched in full variable names), compiled to check them."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(p, str) for p in items):
        raise TypeError(f"{owner}({name}) must be a regex string or a list of them; got {name}={value!r}")
    for p in items:
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f"{owner}({name}) has an invalid regex {p!r}: {e}") from None
    return tuple(items)


def matches_any(pats: tuple[str, ...], name: str) -> bool:
    return any(re.search(p, name) for p in pats)

"""Checks of a call's argument *values* (its shapes and dtypes are checked in ``definition.py``).

Two kinds, both on the host before anything runs, so a failing call changes nothing:

* always: an integer argument cast to a narrower integer placeholder (``int64`` ->
  ``int32``) must fit; otherwise ``2**32 + 1`` would silently become ``1``
  (:func:`check_int_range`, called by ``definition.check_array``);
* with ``function_config().check_input_values(True)``: floating-point arguments must be
  finite and arguments used as sparse cross-entropy labels must lie in
  ``[0, num_classes)`` (:class:`ValueChecks`, built per compiled program from what the
  discovery trace recorded, ``plan.Discovery.label_args``).

Every error is a :class:`~jobflow.errors.JobInputError` naming the argument, the first
bad index (row-major) and the value there.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jobflow._src.core.errors import JobInputError
from jobflow._src.runtime import sharding as _sharding

__all__ = ["check_int_range", "ValueChecks", "value_checks"]


def _host(x) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else _sharding.to_numpy(x)


def _first(bad: np.ndarray) -> tuple[int, ...]:
    """The row-major index of the first True element of ``bad``."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def check_int_range(where: str, x, want: np.dtype) -> None:
    """Raises unless every value of the integer array ``x`` fits in integer dtype ``want``."""
    info = np.iinfo(want)
    arr = _host(x)
    if arr.size == 0:
        return
    lo, hi = arr.min(), arr.max()
    if (arr.dtype.kind == "u" or lo >= info.min) and hi <= info.max:
        return
    bad = arr > info.max if arr.dtype.kind == "u" else (arr < info.min) | (arr > info.max)
    index = _first(bad)
    raise JobInputError(
        f"{where}: value {arr[index]} at index {index} does not fit in the placeholder's dtype "
        f"{want.name} (range [{info.min}, {info.max}]); the call changed nothing"
    )


def _check_finite(where: str, arr: np.ndarray) -> None:
    if arr.size == 0 or np.isfinite(arr).all():
        return
    index = _first(~np.isfinite(arr))
    raise JobInputError(
        f"{where}: value {arr[index]} at index {index} is not finite "
        f"(function_config.check_input_values); the call changed nothing"
    )


def _check_labels(where: str, arr: np.ndarray, num_classes: int, op: str) -> None:
    if arr.size == 0:
        return
    if arr.min() >= 0 and arr.max() < num_classes:
        return
    index = _first((arr < 0) | (arr >= num_classes))
    raise JobInputError(
        f"{where}: label {arr[index]} at index {index} is outside [0, {num_classes}) (the labels "
        f"of {op} with {num_classes} classes; function_config.check_input_values); the call "
        f"changed nothing"
    )


@dataclasses.dataclass(frozen=True)
class ValueChecks:
    """The value checks of one compiled program: ``checks(arrays)`` raises on a bad value.

    ``finite``: indices of the floating-point arguments; ``labels``: ``(argument index,
    num_classes, op name)`` for each argument used as sparse cross-entropy labels.
    """

    job_name: str
    names: tuple[str, ...]
    finite: tuple[int, ...]
    labels: tuple[tuple[int, int, str], ...]

    def _arrays(self, i: int, value) -> list[tuple[str, np.ndarray]]:
        """``[(where, host array)]`` of argument ``i`` (one per device when mirrored)."""
        where = f"job {self.job_name!r} argument {self.names[i]!r}"
        if isinstance(value, _sharding.MirroredInput):
            return [(f"{where}[{d}]", _host(a)) for d, a in enumerate(value.arrays)]
        return [(where, _host(value))]

    def __call__(self, arrays) -> None:
        for i in self.finite:
            for where, arr in self._arrays(i, arrays[i]):
                _check_finite(where, arr)
        for i, num_classes, op in self.labels:
            for where, arr in self._arrays(i, arrays[i]):
                _check_labels(where, arr, num_classes, op)


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind in "fc" or (dtype.kind == "V" and dtype.itemsize in (1, 2))  # ml_dtypes floats


def value_checks(definition, label_args) -> ValueChecks | None:
    """The checks of ``definition``'s arguments, or None when the job does not check values.

    ``label_args``: ``(argument index, num_classes, op name)`` found by the discovery trace.
    """
    if not definition.config.settings.get("check_input_values"):
        return None
    placeholders = definition.placeholders[
        : len(definition.placeholders) - definition.hidden
    ]  # the arguments
    return ValueChecks(
        definition.name,
        tuple(name for name, _ in placeholders),
        tuple(i for i, (_, ph) in enumerate(placeholders) if _is_float(np.dtype(ph.dtype))),
        tuple(dict.fromkeys(label_args)),  # one check per argument and class count
    )

"""Placeholders for job arguments and annotations for what a job call returns.

Arguments::

    def job(x: tp.Numpy.Placeholder((None, 1, 28, 28), dtype=flow.float)) -> tp.Numpy: ...

``None`` in a placeholder's shape marks a dimension that may vary between calls; each
distinct size is compiled once (so a last, smaller batch works).
An argument annotated ``Tuple[P1, P2, ...]`` of placeholders takes a tuple of arrays
(OneFlow's tuple arguments). In the mirrored view a ``Numpy.Placeholder`` argument is split
evenly over the devices along its ``batch_axis``; a ``ListNumpy.Placeholder`` takes one
array per device.

Return annotations (what ``job(...)`` returns):

=============================  ======================================================
``tp.Numpy``                   a :class:`numpy.ndarray` (the call waits for the result)
``Tuple/List/Dict[...]``       the same structure of numpy arrays
``tp.Bundle[T]``               any nesting of tuples, lists and dicts of arrays
                               (``T``: ``tp.Numpy``, or ``tp.ListNumpy`` for lists)
``tp.ListNumpy``               a list with one array per device (mirrored view)
``tp.Callback[T]``             a function ``f``; ``f(cb)`` calls ``cb(result)`` once the
                               result is ready, from a worker thread (OneFlow's idiom
                               ``job(x)(cb)``); the call itself does not wait
no annotation                  a :class:`Future` with ``.get()`` and ``.async_get(cb)``
                               giving :class:`~jobflow._src.core.blob.Blob` arrays
                               (numpy arrays with OneFlow's ``.numpy()`` /
                               ``.numpy_list()``), in the body's nesting
``None``                       nothing
=============================  ======================================================
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import numpy as np
from jax.typing import DTypeLike

from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core.blob import Blob, as_blob
from jobflow._src.core.errors import JobDefinitionError
from jobflow._src.runtime import sharding as _sharding

__all__ = ["Numpy", "ListNumpy", "Callback", "Bundle", "Future", "Placeholder"]


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """The shape and dtype of one job argument.

    Attributes:
      shape: a tuple of ints; ``None`` marks a dimension that may vary between calls.
      dtype: the dtype the job sees (inputs of the same kind are cast to it).
      batch_axis: the axis split across devices in the consistent view.
      mirrored: True for ``ListNumpy`` placeholders (one array per device).
    """

    shape: tuple
    dtype: np.dtype = _dtypes.float32
    batch_axis: int | None = 0
    mirrored: bool = False

    def __post_init__(self):
        shape = self.shape
        if not isinstance(shape, (tuple, list)):
            raise TypeError(
                f"Placeholder shape must be a tuple of ints (None for a varying dimension); got {shape!r}"
            )
        for d in shape:
            if d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0):
                raise ValueError(
                    f"Placeholder shape entries must be non-negative ints or None; got {tuple(shape)!r}"
                )
        object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in shape))
        object.__setattr__(self, "dtype", _dtypes.as_dtype(self.dtype))
        if self.batch_axis is not None and not (-len(shape) <= self.batch_axis < max(len(shape), 1)):
            raise ValueError(
                f"Placeholder batch_axis must index the shape {tuple(shape)!r}; got {self.batch_axis!r}"
            )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def describe(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"shape ({dims}{',' if len(self.shape) == 1 else ''}) dtype {self.dtype.name}"


class Numpy:
    """Annotation: the call returns numpy arrays (and waits for them)."""

    @staticmethod
    def Placeholder(
        shape: Sequence[int | None], dtype: DTypeLike = _dtypes.float32, batch_axis: int | None = 0
    ) -> Placeholder:
        """A consistent-view input: one global array, split along ``batch_axis``."""
        return Placeholder(cast(tuple, shape), cast(np.dtype, dtype), batch_axis)  # normalized there


class ListNumpy:
    """Annotation: the call returns a list with one numpy array per device."""

    @staticmethod
    def Placeholder(
        shape: Sequence[int | None], dtype: DTypeLike = _dtypes.float32, batch_axis: int | None = 0
    ) -> Placeholder:
        """A mirrored-view input: a list with one array of ``shape`` per device."""
        return Placeholder(cast(tuple, shape), cast(np.dtype, dtype), batch_axis, mirrored=True)


class _Generic:
    """Base of the subscriptable annotations ``Callback[T]`` and ``Bundle[T]``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __class_getitem__(cls, inner):
        return cls(inner)

    def __repr__(self):
        return f"tp.{type(self).__name__}[{self.inner!r}]"


class Callback(_Generic):
    """``tp.Callback[T]``: the call returns ``f``; ``f(cb)`` runs ``cb(result)`` later."""


class Bundle(_Generic):
    """``tp.Bundle[T]``: any nesting of tuples, lists and dicts of ``T``."""


class Future:
    """The result of a job without a return annotation (OneFlow's old style).

    ``get()`` waits and returns the result; ``async_get(cb)`` calls ``cb(result)`` from a
    worker thread once the result is ready (an exception it raises is re-raised at the next
    job call or ``sync_default_session()``). The result is what the body returned, each
    array a ``Blob`` (a numpy array with OneFlow's ``LocalBlob`` methods ``numpy()``,
    ``numpy_list()``, ``numpy(i)``). The result can be taken once, as in OneFlow.
    """

    def __init__(
        self, outputs: Any, convert: Callable[[Any], Any], submit: Callable[[Callable[[], None]], None]
    ) -> None:
        self._outputs = outputs
        self._convert = convert
        self._submit = submit  # queues a function on the session's callback thread
        self._taken = False

    def _take(self):
        if self._taken:
            raise RuntimeError("this job result was already taken with get() or async_get()")
        self._taken = True
        outputs, self._outputs = self._outputs, None
        return outputs

    def get(self) -> Any:
        return self._convert(self._take())

    def async_get(self, callback: Callable[[Any], None]) -> None:
        if not callable(callback):
            raise TypeError(f"async_get(callback) needs a callable; got {callback!r}")
        outputs = self._take()
        self._submit(lambda: callback(self._convert(outputs)))


# ---------------------------------------------------------------------------------------
# Return annotations -> a converter from the job's output pytree to what the call returns.

_NO_ANNOTATION = object()


@dataclasses.dataclass(frozen=True)
class ReturnSpec:
    """How a job call turns its device outputs into its result."""

    kind: str  # "sync", "callback", "future", "none"
    structure: Any  # "leaf", "list_leaf", tuple/list/dict of them, "bundle", "list_bundle", "blobs"

    def check(self, job_name: str, outputs) -> None:
        """Raises if the body's return value does not fit the annotation (at trace time)."""
        if self.kind == "none":
            if outputs is not None:
                raise JobDefinitionError(
                    f"job {job_name!r} is annotated '-> None' but its body returned {type(outputs).__name__}"
                )
            return
        _check_structure(job_name, self.structure, outputs, "result")


def _check_structure(job_name, structure, value, where):
    if structure in ("bundle", "list_bundle", "blobs"):
        return
    if structure in ("leaf", "list_leaf"):
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise JobDefinitionError(
                f"job {job_name!r}: {where} must be an array (annotation tp.Numpy); got "
                f"{type(value).__name__}"
            )
        return
    if isinstance(structure, dict):
        if not isinstance(value, dict):
            raise JobDefinitionError(f"job {job_name!r}: {where} must be a dict; got {type(value).__name__}")
        # Dict[str, T]: any keys, each value of the one annotated type
        inner = next(iter(structure.values()))
        for k, v in value.items():
            _check_structure(job_name, inner, v, f"{where}[{k!r}]")
        return
    kind = type(structure)
    if not isinstance(value, (tuple, list)):
        raise JobDefinitionError(
            f"job {job_name!r}: {where} must be a {kind.__name__} of arrays; got {type(value).__name__}"
        )
    if len(structure) == 1 and getattr(structure, "_variadic", False):
        for i, v in enumerate(value):
            _check_structure(job_name, structure[0], v, f"{where}[{i}]")
        return
    if len(structure) != len(value):
        raise JobDefinitionError(
            f"job {job_name!r}: {where} must have {len(structure)} elements as annotated; got {len(value)}"
        )
    for i, (s, v) in enumerate(zip(structure, value)):
        _check_structure(job_name, s, v, f"{where}[{i}]")


class _Variadic(list):
    _variadic = True


def _parse_structure(ann, job_name):
    if ann is Numpy:
        return "leaf"
    if ann is ListNumpy:
        return "list_leaf"
    if isinstance(ann, Bundle):
        if ann.inner is ListNumpy:
            return "list_bundle"
        if ann.inner is Numpy:
            return "bundle"
        raise JobDefinitionError(
            f"job {job_name!r}: T in tp.Bundle[T] must be tp.Numpy or tp.ListNumpy; got {ann.inner!r}"
        )
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Variadic([_parse_structure(args[0], job_name)])
        return tuple(_parse_structure(a, job_name) for a in args)
    if origin is list:
        return _Variadic([_parse_structure(args[0], job_name) if args else "leaf"])
    if origin is dict:
        return {"*": _parse_structure(args[1], job_name) if len(args) == 2 else "leaf"}
    raise JobDefinitionError(
        f"job {job_name!r}: unsupported return annotation {ann!r}; use tp.Numpy, "
        f"tp.ListNumpy, Tuple/List/Dict of them, tp.Bundle[...] or tp.Callback[...]"
    )


def parse_return(ann, job_name: str) -> ReturnSpec:
    if ann is _NO_ANNOTATION:
        return ReturnSpec("future", "blobs")
    if ann is None or ann is type(None):
        return ReturnSpec("none", None)
    if isinstance(ann, Callback):
        return ReturnSpec("callback", _parse_structure(ann.inner, job_name))
    return ReturnSpec("sync", _parse_structure(ann, job_name))


def _host_blob(value, mirrored: bool, stacked: bool) -> Blob:
    """One result of a job without a return annotation: a :class:`Blob` (OneFlow's
    ``LocalBlob``), whose ``numpy_list()`` has one array per device in the mirrored view."""
    parts = _sharding.host_list(value, mirrored, stacked) if mirrored else None
    return as_blob(_sharding.host_leaf(value, mirrored, stacked), parts)


def to_host(structure, value, mirrored: bool = False, stacked: bool = False):
    """Converts device outputs to numpy following the annotation (blocks until ready).

    ``tp.ListNumpy`` gives one array per device of this process; in the mirrored view
    (``mirrored=True``, outputs stacked per device) ``tp.Numpy`` gives the per-device
    results concatenated along axis 0. Arrays split across processes are gathered.
    ``stacked``: every output has a leading step axis (``Job.run_steps``), kept in front.
    """
    if structure == "list_leaf":
        return _sharding.host_list(value, mirrored, stacked)
    if isinstance(structure, dict):
        inner = next(iter(structure.values()))
        return {k: to_host(inner, v, mirrored, stacked) for k, v in value.items()}
    if isinstance(structure, (tuple, list)):
        if getattr(structure, "_variadic", False):
            return type(value)(to_host(structure[0], v, mirrored, stacked) for v in value)
        return type(value)(to_host(s, v, mirrored, stacked) for s, v in zip(structure, value))
    if structure == "bundle":
        return jax.tree.map(lambda v: _sharding.host_leaf(v, mirrored, stacked), value)
    if structure == "list_bundle":
        return jax.tree.map(lambda v: _sharding.host_list(v, mirrored, stacked), value)
    if structure == "blobs":
        return jax.tree.map(lambda v: _host_blob(v, mirrored, stacked), value)
    return _sharding.host_leaf(value, mirrored, stacked)

"""What a job is before it runs, and every check of a call's arguments.

A :class:`JobDefinition` is built once, by ``@global_function``, from the job function:
its placeholders (read from the signature's annotations), its return annotation, its type
and its ``function_config``. It holds nothing of a session and never changes.

Where it sits in a call: ``Job.__call__`` (``job.py``) takes its fast path for numpy
arguments whose signature passed these checks before; every other call goes through
:meth:`JobDefinition.check_inputs` (count, names, type, rank, shape, dtype kind and cast,
mirrored lists, the range of a narrowing integer cast), and ``run_steps`` through :meth:`JobDefinition.check_stacked_inputs`.
Definition problems raise :class:`~jobflow.errors.JobDefinitionError`, argument problems
:class:`~jobflow.errors.JobInputError`; neither changes anything.
"""

from __future__ import annotations

import functools
import inspect
import typing

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core.errors import JobDefinitionError, JobInputError
from jobflow._src.graph.function_config import FunctionConfig
from jobflow._src.runtime import dispatch as _dispatch
from jobflow._src.runtime import input_checks as _input_checks
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import steps as _steps
from jobflow._src.runtime import typing as tp

__all__ = ["JobDefinition", "read_annotations", "read_placeholders", "read_arguments"]


def read_annotations(fn) -> dict:
    """The function's annotations, evaluated (also under ``from __future__ import annotations``)."""
    try:
        return typing.get_type_hints(fn)
    except Exception as e:
        raw = dict(getattr(fn, "__annotations__", {}))
        if any(isinstance(v, str) for v in raw.values()):
            raise JobDefinitionError(
                f"job {fn.__name__!r}: its annotations are strings (from __future__ import annotations) "
                f"and cannot be evaluated ({e}); placeholders must be built from names visible at "
                f"module level, or drop the __future__ import in that module"
            ) from None
        return raw


def read_placeholders(fn, hints: dict) -> list[tuple[str, tp.Placeholder]]:
    """``[(argument name, Placeholder)]`` in signature order; every argument must be a
    positional-or-keyword parameter annotated with a placeholder (or a ``Tuple[...]`` of
    placeholders, see :func:`read_arguments`) and without a default."""
    return [leaf for _, _, leaves in read_arguments(fn, hints) for leaf in leaves]


def read_arguments(fn, hints: dict) -> list[tuple[str, typing.Any, list]]:
    """``[(argument name, tree, [(flat name, Placeholder)])]`` in signature order.

    An argument annotated ``Tuple[P1, P2, ...]`` (OneFlow's tuple arguments; nesting
    allowed) takes a tuple or list of arrays; its placeholders are named ``x[0]``,
    ``x[1]``, ... and ``tree`` is the nesting of their indices (an int for a single one).
    """
    out, count = [], 0
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise JobDefinitionError(
                f"job {fn.__name__!r}: *args/**kwargs are not supported; "
                f"annotate each argument with tp.Numpy.Placeholder(shape, dtype)"
            )
        if p.default is not p.empty:
            raise JobDefinitionError(f"job {fn.__name__!r}: argument {p.name!r} cannot have a default value")
        leaves: list = []
        tree = _read_tree(fn.__name__, p.name, hints.get(p.name, p.annotation), leaves, count)
        count += len(leaves)
        out.append((p.name, tree, leaves))
    return out


def _read_tree(job: str, where: str, ann, leaves: list, start: int):
    """The index tree of one annotation, appending its placeholders to ``leaves``."""
    if isinstance(ann, tp.Placeholder):
        leaves.append((where, ann))
        return start + len(leaves) - 1
    args = typing.get_args(ann)
    if typing.get_origin(ann) is tuple and args and Ellipsis not in args:
        return tuple(_read_tree(job, f"{where}[{i}]", a, leaves, start) for i, a in enumerate(args))
    raise JobDefinitionError(
        f"job {job!r}: argument {where!r} must be annotated with tp.Numpy.Placeholder(shape, "
        f"dtype=...), tp.ListNumpy.Placeholder(...) or a Tuple[...] of them; got {ann!r}"
    )


def _flatten_value(job: str, where: str, tree, value, out: list) -> None:
    """Appends the arrays of one argument value to ``out``, following its index tree."""
    if isinstance(tree, int):
        out.append(value)
        return
    if not isinstance(value, (tuple, list)) or len(value) != len(tree):
        got = (
            f"{type(value).__name__} of {len(value)}"
            if isinstance(value, (tuple, list))
            else type(value).__name__
        )
        raise JobInputError(
            f"job {job!r} argument {where!r}: expected a tuple of {len(tree)} arrays (its annotation "
            f"is a Tuple[...] of placeholders); got {got}"
        )
    for i, (t, v) in enumerate(zip(tree, value)):
        _flatten_value(job, f"{where}[{i}]", t, v, out)


def _regroup(tree, flat):
    """The argument value of an index tree, from the flat inputs (inverse of flattening)."""
    if isinstance(tree, int):
        return flat[tree]
    return tuple(_regroup(t, flat) for t in tree)


def _grouped(fn, trees: list):
    """``fn`` taking the flat inputs, which it regroups into its (tuple) arguments."""

    @functools.wraps(fn)
    def body(*flat):
        return fn(*(_regroup(t, flat) for t in trees))

    return body


def _same_kind(got: np.dtype, want: np.dtype) -> bool:
    """True when an argument of dtype ``got`` may be cast to the placeholder's ``want``:
    the same kind of number (ints that fit safely count as one kind; numpy's ``V`` kind,
    bfloat16 and friends, counts as float)."""
    if got.kind == want.kind:
        return True
    if got.kind in "iu" and want.kind in "iu" and np.can_cast(got, want, "safe"):
        return True
    return want.kind == "f" and got.kind == "V"


def check_array(where: str, x, ph: tp.Placeholder):
    """``x`` checked against ``ph`` (type, rank, shape, dtype kind) and cast to its dtype
    (a narrowing integer cast checks the range: ``input_checks.check_int_range``)."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if isinstance(x, jax.core.Tracer):
        raise JobDefinitionError(
            f"{where}: got a traced JAX value; a job cannot be called inside jax.jit, jax.grad "
            f"or another job's body (call it from Python with numpy arrays)"
        )
    if not isinstance(x, (np.ndarray, jax.Array)):
        raise JobInputError(f"{where}: expected a numpy array with {ph.describe()}; got {type(x).__name__}")
    if x.ndim != ph.ndim:
        raise JobInputError(
            f"{where}: expected rank {ph.ndim} ({ph.describe()}); got shape {tuple(x.shape)} (rank {x.ndim})"
        )
    if any(d is not None and d != s for d, s in zip(ph.shape, x.shape)):
        raise JobInputError(f"{where}: expected {ph.describe()}; got shape {tuple(x.shape)}")
    got = np.dtype(x.dtype)
    if got == ph.dtype:
        return x
    if not _same_kind(got, ph.dtype):
        raise JobInputError(
            f"{where}: expected dtype {ph.dtype.name}; got {got.name} (a different kind of number)"
        )
    if got.kind in "iu" and not np.can_cast(got, ph.dtype, "safe"):
        _input_checks.check_int_range(where, x, ph.dtype)  # int64 -> int32 must not wrap
    return x.astype(ph.dtype)


class JobDefinition:
    """A job function read once: placeholders, return annotation, type and config.

    Attributes:
      fn: the job function.
      name: its ``__name__`` (the job's name in the session).
      type: ``"train"`` or ``"predict"``.
      config: the job's :class:`~jobflow.config.FunctionConfig`.
      placeholders: ``[(argument name, tp.Placeholder)]`` in signature order.
      return_spec: the parsed return annotation (``runtime.typing.ReturnSpec``).
      waits: True when a call waits for its result (``tp.Numpy``-style annotations).
    """

    def __init__(self, fn, type: str, config: FunctionConfig):
        self.fn = fn
        self.name = fn.__name__
        self.type = type
        self.config = config
        hints = read_annotations(fn)
        arguments = read_arguments(fn, hints)
        self.arguments = [(name, tree) for name, tree, _ in arguments]
        self.placeholders = [leaf for _, _, leaves in arguments for leaf in leaves]
        if any(not isinstance(tree, int) for _, tree in self.arguments):
            self.fn = _grouped(fn, [tree for _, tree in self.arguments])
        self.return_spec = tp.parse_return(hints.get("return", tp._NO_ANNOTATION), self.name)
        self.waits = self.return_spec.kind == "sync"

    # -- settings the job reads from its config ----------------------------------------
    @property
    def is_train(self) -> bool:
        return self.type == "train"

    @property
    def mirrored(self) -> bool:
        """True when the job runs in the mirrored view (``tp.ListNumpy`` inputs)."""
        return _sharding.is_mirrored(self.config)

    @property
    def seed(self) -> int:
        """The job's seed: its config's, else the global one (``flow.config.seed``)."""
        from jobflow._src.graph import settings as _settings

        s = self.config.settings["seed"]
        return _settings.get_seed() if s is None else s

    @property
    def accumulation_steps(self) -> int:
        """Micro-batches per call (``function_config.train.gradient_accumulation_steps``)."""
        return self.config.settings["gradient_accumulation_steps"] if self.is_train else 1

    def amp_dtype(self, devices=None):
        """The low dtype white-list ops use (float16 on GPUs, else bfloat16, unless the config
        names one), or None when AMP is off."""
        settings = self.config.settings
        if not settings["enable_auto_mixed_precision"]:
            return None
        if settings["amp_dtype"] is not None:
            return settings["amp_dtype"]
        platform = (devices or jax.devices())[0].platform
        return jnp.float16 if platform == "gpu" else jnp.bfloat16

    def static_shapes(self) -> tuple | None:
        """The placeholders' shapes, or None when one has a ``None`` dimension."""
        if any(d is None for _, ph in self.placeholders for d in ph.shape):
            return None
        return tuple(ph.shape for _, ph in self.placeholders)

    # -- a call's arguments --------------------------------------------------------------
    def _bind(self, args, kwargs) -> list:
        """One value per placeholder, from positional and keyword arguments (tuple
        arguments flattened)."""
        names = [name for name, _ in self.arguments]
        n = len(names)
        if len(args) > n:
            raise JobInputError(
                f"job {self.name!r} takes {n} argument{'s' if n != 1 else ''} ({', '.join(names)}); "
                f"got {len(args)}"
            )
        values = list(args) + [None] * (n - len(args))
        for k, v in kwargs.items():
            if k not in names:
                raise JobInputError(f"job {self.name!r} has no argument {k!r}; its arguments are {names}")
            i = names.index(k)
            if i < len(args):
                raise JobInputError(f"job {self.name!r} got argument {k!r} twice")
            values[i] = v
        missing = [names[i] for i in range(len(args), n) if names[i] not in kwargs]
        if missing:
            raise JobInputError(
                f"job {self.name!r} is missing argument(s) {missing}; it takes ({', '.join(names)})"
            )
        flat: list = []
        for (name, tree), v in zip(self.arguments, values):
            _flatten_value(self.name, name, tree, v, flat)
        return flat

    def _check_one(self, name: str, ph: tp.Placeholder, x, what: str = "argument"):
        where = f"job {self.name!r} {what} {name!r}"
        if ph.mirrored:
            return _sharding.mirrored_input(where, x, functools.partial(check_array, ph=ph))
        return check_array(where, x, ph)

    def check_inputs(self, args, kwargs) -> list:
        """The checked (and cast) arguments of one call, in placeholder order."""
        values = self._bind(args, kwargs)
        return [self._check_one(name, ph, v) for (name, ph), v in zip(self.placeholders, values)]

    def check_stacked_inputs(self, args, kwargs) -> tuple[list, int]:
        """``(checked arguments, K)`` of ``run_steps``: each argument a stack of ``K >= 1``
        batches along a new leading axis (per device in the mirrored view)."""
        values = self._bind(args, kwargs)
        arrays = [
            self._check_one(name, _steps.stacked_placeholder(ph), v, "run_steps argument")
            for (name, ph), v in zip(self.placeholders, values)
        ]
        shapes = [tuple(x.shape) for x in arrays]
        return arrays, _steps.steps_of(self.name, [name for name, _ in self.placeholders], shapes)

    def check_divisible(self, shapes, n: int) -> None:
        """Raises unless every batch axis divides into ``n`` pieces (consistent view): the
        job's device count, or the size of the ``"data"`` axis of a 2-D mesh."""
        if n < 2:
            return
        for (pname, ph), shape in zip(self.placeholders, shapes):
            if ph.mirrored or ph.batch_axis is None or len(shape) == 0:
                continue  # a mirrored argument already is one array per device
            if shape[ph.batch_axis] % n:
                raise JobInputError(
                    f"job {self.name!r} argument {pname!r}: the batch axis ({ph.batch_axis}) has size "
                    f"{shape[ph.batch_axis]}, which does not divide across the job's {n} devices"
                )

    def own(self, arrays: list) -> list:
        """Checked arguments the program may read after the call returns: copies of the
        caller's numpy arrays when the call does not wait (see ``dispatch.owned``)."""
        return arrays if self.waits else _dispatch.owned(arrays)

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

__all__ = ["JobDefinition", "read_annotations", "read_placeholders"]


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
    positional-or-keyword parameter annotated with a placeholder and without a default."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise JobDefinitionError(
                f"job {fn.__name__!r}: *args/**kwargs are not supported; "
                f"annotate each argument with tp.Numpy.Placeholder(shape, dtype)"
            )
        ann = hints.get(p.name, p.annotation)
        if not isinstance(ann, tp.Placeholder):
            raise JobDefinitionError(
                f"job {fn.__name__!r}: argument {p.name!r} must be annotated with "
                f"tp.Numpy.Placeholder(shape, dtype=...); got {ann!r}"
            )
        if p.default is not p.empty:
            raise JobDefinitionError(f"job {fn.__name__!r}: argument {p.name!r} cannot have a default value")
        out.append((p.name, ann))
    return out


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
        self.placeholders = read_placeholders(fn, hints)
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
        """One value per placeholder, from positional and keyword arguments."""
        names = [name for name, _ in self.placeholders]
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
        return values

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

    def check_divisible(self, shapes, devices: list) -> None:
        """Raises unless every batch axis divides across ``devices`` (consistent view)."""
        if len(devices) < 2:
            return
        for (pname, ph), shape in zip(self.placeholders, shapes):
            if ph.mirrored or ph.batch_axis is None or len(shape) == 0:
                continue  # a mirrored argument already is one array per device
            if shape[ph.batch_axis] % len(devices):
                raise JobInputError(
                    f"job {self.name!r} argument {pname!r}: the batch axis ({ph.batch_axis}) has size "
                    f"{shape[ph.batch_axis]}, which does not divide across the job's {len(devices)} devices"
                )

    def own(self, arrays: list) -> list:
        """Checked arguments the program may read after the call returns: copies of the
        caller's numpy arrays when the call does not wait (see ``dispatch.owned``)."""
        return arrays if self.waits else _dispatch.owned(arrays)

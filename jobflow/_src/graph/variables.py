"""Variables: ``get_variable``, initializers and regularizers.

A variable is a named array in the session's store. Its full name is the namespace stack
joined with ``-`` followed by its name (``with flow.scope.namespace("enc"):`` ``w`` ->
``enc-w``). Jobs that use the same full name share the same array; that is how a train
job and a predict job share weights.

Initial values are computed on the host with numpy, deterministically from the seed
and the full name: ``np.random.default_rng([seed, crc32(name)])``. The seed is the
initializer's own ``seed``, else ``get_variable(random_seed=...)``, else the job's
``function_config.seed``, else the session seed (``flow.config.seed``, default 0).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import sys
import types
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core import trace as _trace
from jobflow._src.graph import distribute as _distribute
from jobflow._src.graph import scope as _scope

__all__ = [
    "get_variable",
    "VariableSpec",
    "Initializer",
    "constant_initializer",
    "zeros_initializer",
    "ones_initializer",
    "random_normal_initializer",
    "random_uniform_initializer",
    "truncated_normal_initializer",
    "truncated_normal",
    "xavier_uniform_initializer",
    "xavier_normal_initializer",
    "glorot_uniform_initializer",
    "glorot_normal_initializer",
    "variance_scaling_initializer",
    "kaiming_initializer",
    "Regularizer",
    "l1",
    "l2",
    "l1_l2",
    "name_rng",
    "full_name",
]


def name_rng(seed: int, name: str) -> np.random.Generator:
    """The numpy generator that initializes variable ``name`` under ``seed``."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


# ---------------------------------------------------------------------------- initializers


class Initializer:
    """Computes a variable's initial value on the host.

    Subclasses implement ``sample(shape, rng) -> np.ndarray`` (float64 is fine; the
    result is cast to the variable's dtype). ``seed``, when set, replaces the job's seed
    for the variables this initializer creates.
    """

    seed: int | None = None

    def sample(self, shape: tuple, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, shape, dtype, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.sample(tuple(shape), rng)).astype(dtype)

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class _Constant(Initializer):
    def __init__(self, value):
        if not isinstance(value, numbers.Number):
            raise TypeError(f"constant_initializer(value) needs a number; got {value!r}")
        self.value = value

    def sample(self, shape, rng):
        return np.full(shape, self.value)


def constant_initializer(value: float = 0, dtype: DTypeLike | None = None) -> Initializer:
    """All elements equal ``value``."""
    return _Constant(value)


def zeros_initializer(dtype: DTypeLike | None = None) -> Initializer:
    return _Constant(0)


def ones_initializer(dtype: DTypeLike | None = None) -> Initializer:
    return _Constant(1)


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None; got {seed!r}")
    return seed


def _check_positive(fn, name, value):
    if not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{fn}({name}) must be > 0; got {name}={value!r}")


class _Normal(Initializer):
    def __init__(self, mean, stddev, seed=None, truncated=False):
        _check_positive("random_normal_initializer", "stddev", stddev)
        self.mean, self.stddev, self.seed, self.truncated = mean, stddev, _check_seed(seed), truncated

    def sample(self, shape, rng):
        if not self.truncated:
            return rng.normal(self.mean, self.stddev, shape)
        return _truncated(rng, shape) * self.stddev + self.mean


def _truncated(rng, shape):
    """Standard normal samples redrawn until |x| < 2 (OneFlow/TF truncation)."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) >= 2.0
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) >= 2.0
    return x


def random_normal_initializer(
    mean: float = 0.0, stddev: float = 1.0, seed: int | None = None, dtype: DTypeLike | None = None
) -> Initializer:
    """Samples ``N(mean, stddev**2)``."""
    return _Normal(mean, stddev, seed)


def truncated_normal_initializer(
    mean: float = 0.0, stddev: float = 1.0, seed: int | None = None, dtype: DTypeLike | None = None
) -> Initializer:
    """Samples ``N(mean, stddev**2)``, redrawing values with ``|x - mean| >= 2 stddev``."""
    return _Normal(mean, stddev, seed, truncated=True)


def truncated_normal(stddev: float = 1.0, dtype: DTypeLike | None = None) -> Initializer:
    """OneFlow's legacy ``flow.truncated_normal(stddev)`` (mean 0)."""
    return _Normal(0.0, stddev, truncated=True)


class _Uniform(Initializer):
    def __init__(self, minval, maxval, seed=None):
        if not maxval > minval:
            raise ValueError(
                f"random_uniform_initializer needs minval < maxval; got minval={minval!r}, maxval={maxval!r}"
            )
        self.minval, self.maxval, self.seed = minval, maxval, _check_seed(seed)

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)


def random_uniform_initializer(
    minval: float = 0, maxval: float = 1, seed: int | None = None, dtype: DTypeLike | None = None
) -> Initializer:
    """Samples ``U(minval, maxval)``."""
    return _Uniform(minval, maxval, seed)


def _fans(shape, data_format):
    """OneFlow's fan computation (``CalcFan``)."""
    shape = tuple(shape)
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:  # dense weight (units, in)
        return float(shape[1]), float(shape[0])
    if data_format in ("channels_last", "NHWC", "NWC", "NDHWC"):
        # (out, k..., in)
        return float(np.prod(shape[1:])), float(shape[0] * np.prod(shape[1:-1]))
    return float(np.prod(shape[1:])), float(shape[0] * np.prod(shape[2:]))


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTS = ("truncated_normal", "random_normal", "random_uniform")


class _VarianceScaling(Initializer):
    def __init__(self, scale, mode, distribution, data_format):
        _check_positive("variance_scaling_initializer", "scale", scale)
        if mode not in _MODES:
            raise ValueError(f"variance_scaling_initializer mode must be one of {_MODES}; got {mode!r}")
        if distribution not in _DISTS:
            raise ValueError(
                f"variance_scaling_initializer distribution must be one of {_DISTS}; got {distribution!r}"
            )
        self.scale, self.mode, self.distribution, self.data_format = scale, mode, distribution, data_format

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape, self.data_format)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        if self.distribution == "random_uniform":
            limit = math.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "random_normal":
            return rng.normal(0.0, math.sqrt(var), shape)
        # stddev of N(0,1) truncated to (-2, 2) is 0.8796...; undo it (OneFlow, TF)
        return _truncated(rng, shape) * (math.sqrt(var) / 0.87962566103423978)


def variance_scaling_initializer(
    scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal", data_format: str = ""
) -> Initializer:
    """Samples with variance ``scale / fan`` (fan per ``mode``; OneFlow's fan rules:
    ``fan_in = prod(shape[1:])``, ``fan_out = shape[0] * prod(shape[2:])`` for channels
    first)."""
    return _VarianceScaling(scale, mode, distribution, data_format)


def xavier_uniform_initializer(data_format: str = "") -> Initializer:
    """Glorot uniform: ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``."""
    return _VarianceScaling(1.0, "fan_avg", "random_uniform", data_format)


def xavier_normal_initializer(data_format: str = "") -> Initializer:
    """Glorot normal: ``N(0, 2 / (fan_in + fan_out))``."""
    return _VarianceScaling(1.0, "fan_avg", "random_normal", data_format)


glorot_uniform_initializer = xavier_uniform_initializer
glorot_normal_initializer = xavier_normal_initializer

_GAINS = {"linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


class _Kaiming(Initializer):
    def __init__(self, shape, distribution, mode, nonlinearity, negative_slope, data_format):
        if distribution not in ("random_normal", "random_uniform"):
            raise ValueError(
                f"kaiming_initializer distribution must be 'random_normal' or 'random_uniform'; got {distribution!r}"
            )
        if mode not in _MODES:
            raise ValueError(f"kaiming_initializer mode must be one of {_MODES}; got {mode!r}")
        if nonlinearity not in (*_GAINS, "leaky_relu"):
            raise ValueError(
                f"kaiming_initializer nonlinearity must be one of {[*_GAINS, 'leaky_relu']}; got {nonlinearity!r}"
            )
        self.shape, self.distribution, self.mode = shape, distribution, mode
        self.nonlinearity, self.negative_slope, self.data_format = nonlinearity, negative_slope, data_format

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(self.shape or shape, self.data_format)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        if self.nonlinearity == "leaky_relu":
            gain = math.sqrt(2.0 / (1 + self.negative_slope**2))
        else:
            gain = _GAINS[self.nonlinearity]
        std = gain / math.sqrt(fan)
        if self.distribution == "random_uniform":
            return rng.uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, shape)
        return rng.normal(0.0, std, shape)


def kaiming_initializer(
    shape: int | Sequence[int] | None = None,
    distribution: str = "random_normal",
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    negative_slope: float = 0.0,
    data_format: str = "NCHW",
) -> Initializer:
    """He initialization: std ``gain / sqrt(fan)`` (gain ``sqrt(2/(1+a**2))`` for
    leaky_relu). ``shape`` (OneFlow's first argument) defaults to the variable's shape."""
    return _Kaiming(shape, distribution, mode, nonlinearity, negative_slope, data_format)


# ---------------------------------------------------------------------------- regularizers


@dataclasses.dataclass(frozen=True)
class Regularizer:
    """Adds ``l1 * sign(w) + l2 * w`` to the gradient of ``w`` in train steps.

    This is OneFlow's rule: ``sign(0) = +1``, the l2 term is ``l2 * w`` (not
    ``2 * l2 * w``), it is not divided by the batch size, and it is applied after loss
    unscaling and before gradient clipping.
    """

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self):
        for k in ("l1", "l2"):
            v = getattr(self, k)
            if not isinstance(v, numbers.Real) or v < 0:
                raise ValueError(f"regularizer {k} must be a number >= 0; got {k}={v!r}")

    def grad(self, w: jax.Array) -> jax.Array:
        g = jnp.zeros_like(w)
        if self.l1:
            g = g + self.l1 * jnp.where(w >= 0, 1.0, -1.0).astype(w.dtype)
        if self.l2:
            g = g + self.l2 * w
        return g


def l1(l: float = 0.01) -> Regularizer:
    return Regularizer(l1=l)


def l2(l: float = 0.01) -> Regularizer:
    return Regularizer(l2=l)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> Regularizer:
    return Regularizer(l1=l1, l2=l2)


# ---------------------------------------------------------------------------- get_variable


@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """What a variable is: recorded at its first use, checked at every later use.

    Attributes:
      name: full name (``namespace-...-name``).
      shape, dtype: as stored.
      init: ``init(seed) -> array``: the initial value for the given job/session seed.
      trainable: whether train jobs compute its gradient.
      regularizer: a :class:`Regularizer` or None.
      kind: ``"model"`` (user variables), ``"slot"`` (optimizer state) or ``"system"``
        (step counters, RNG keys, loss-scale state).
      seed: a fixed seed from the initializer or ``random_seed``, else None.
      origin: where it was defined, for error messages.
      distribute: its layout over the job's mesh, a tuple of
        ``graph.distribute.Distribute`` (one per mesh axis named; ``()``: jobflow
        decides), from ``get_variable(distribute=...)`` / ``parallel_distribution``; an
        optimizer slot of a split variable's shape carries the variable's layout.
    """

    name: str
    shape: tuple
    dtype: np.dtype
    init: Callable[[int], Any]
    trainable: bool = True
    regularizer: Regularizer | None = None
    kind: str = "model"
    seed: int | None = None
    origin: str = ""
    distribute: tuple = ()

    def describe(self) -> str:
        return f"shape {self.shape} dtype {self.dtype.name} ({self.origin})"

    def conflicts_with(self, other: VariableSpec) -> bool:
        return self.shape != other.shape or self.dtype != other.dtype


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def user_location() -> str:
    """``file:line`` of the innermost stack frame outside jobflow and JAX."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if _is_user_file(frame.f_code.co_filename):
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


@functools.lru_cache(maxsize=1024)
def _is_user_file(filename: str) -> bool:
    """True for a file outside jobflow, JAX and Flax (walked per variable definition:
    reading the frames directly, not ``traceback.extract_stack``, which also reads every
    frame's source line)."""
    f = os.path.abspath(filename)
    return not f.startswith(_PKG_DIR) and f"{os.sep}jax{os.sep}" not in f and f"{os.sep}flax{os.sep}" not in f


def _check_shape(name: str, shape: Any) -> tuple[int, ...]:
    if shape is None:
        raise ValueError(f"get_variable({name!r}) needs a shape")
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"get_variable({name!r}) shape must be a tuple of ints; got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"get_variable({name!r}) shape must be non-negative; got {shape!r}")
    return shape


def define_variable(ctx, spec: VariableSpec, reuse: bool = True):
    """Registers ``spec`` in the trace and returns the variable's value.

    The first use in a trace records the spec; later uses (``reuse=True``) return the
    same value and must agree on shape and dtype.
    """
    name = spec.name
    if name in ctx.used:
        if not reuse:
            raise ValueError(
                f"variable {name!r} already exists in job {ctx.job_name!r} and reuse=False; "
                f"use another name or reuse=True"
            )
        if ctx.discover and ctx.specs[name].conflicts_with(spec):
            raise ValueError(
                f"variable {name!r} is defined twice in job {ctx.job_name!r} with different "
                f"shapes/dtypes: {ctx.specs[name].describe()} and {spec.describe()}"
            )
        return ctx.variables[name]
    ctx.used.add(name)
    if ctx.discover:
        ctx.specs[name] = spec
        ctx.variables[name] = jnp.zeros(spec.shape, spec.dtype)
    elif name not in ctx.variables:
        raise RuntimeError(
            f"job {ctx.job_name!r} created variable {name!r} while running but not while "
            f"it was first traced; a job body must create the same variables on every trace"
        )
    return ctx.variables[name]


def full_name(name: str) -> str:
    """``name`` prefixed with the current namespace (``a-b-name``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a variable name must be a non-empty string; got {name!r}")
    prefix = _scope.current_namespace()
    return f"{prefix}-{name}" if prefix else name


def get_variable(
    name: str,
    shape: int | Sequence[int] | None = None,
    dtype: DTypeLike | None = None,
    initializer: Callable | None = None,
    regularizer: Regularizer | None = None,
    trainable: bool | None = None,
    model_name: str | None = None,
    random_seed: int | None = None,
    parallel_distribution: Any = None,
    distribute: Any = None,
    reuse: bool = True,
) -> jax.Array:
    """Creates or returns the variable ``<namespace>-name`` of the current job.

    Args:
      name: the variable's name within the current namespace.
      shape: its shape (a tuple of ints).
      dtype: its dtype; default: the job's ``function_config.default_data_type``.
      initializer: an initializer such as ``flow.random_normal_initializer()``; default:
        the job's ``default_initializer_conf``. One of the two must be set.
      regularizer: ``flow.regularizers.l2(0.01)`` etc.; applied to its gradient.
      trainable: False excludes it from gradients (default True).
      random_seed: a fixed seed for its initial value.
      parallel_distribution: OneFlow's per-mesh-axis layout: a list of one or two
        distributes or strings (``[flow.distribute.broadcast(), flow.distribute.split(0)]``,
        ``["B", "S(0)"]``) for a placement with a 2-D ``hierarchy`` (``docs/placement.md``).
      distribute: ``flow.distribute.split(axis)`` stores the variable (and its optimizer
        slots) split along ``axis`` over the job's devices (over the ``"model"`` axis of a
        2-D mesh); a split axis its devices do not divide is stored whole (replicated)
        instead, with a ``flow.errors.LayoutWarning`` at the job's first call (OneFlow
        splits it unevenly; XLA cannot); ``broadcast()`` replicates it; ``auto()`` or None lets jobflow decide
        (replicated unless the ZeRO switches split it). A layout changes where the pieces
        live, never the numbers: XLA inserts the communication.
      reuse: False raises if this job already used the name.
      model_name: accepted for OneFlow compatibility (no effect).

    Returns:
      The variable's current value (a JAX array inside the job's trace).

    Raises:
      ValueError: if the name is already defined, in this or another job, with another
        shape or dtype (the message names both definitions).
      ArgumentError (a ``TypeError`` and a ``ValueError``): ``distribute`` /
        ``parallel_distribution`` is not a distribute, or splits an axis the shape lacks.
    """
    from jobflow._src.graph import initializer_conf as _initializer_conf

    ctx = _trace.require("get_variable")
    full = full_name(name)
    shape = _check_shape(full, shape)
    dt = ctx.config.settings["default_data_type"] if dtype is None else _dtypes.as_dtype(dtype)
    dt = _dtypes.canonical(dt)
    if initializer is None:
        initializer = ctx.config.settings["default_initializer_conf"]
    if initializer is None:
        raise ValueError(
            f"get_variable({full!r}) needs an initializer (or set function_config.default_initializer_conf)"
        )
    if _initializer_conf.is_conf(initializer):  # OneFlow's InitializerConf message
        initializer = _initializer_conf.from_conf(initializer)
    if not callable(initializer):
        raise TypeError(f"get_variable({full!r}) initializer must be callable; got {initializer!r}")
    if regularizer is not None and not isinstance(regularizer, Regularizer):
        raise TypeError(
            f"get_variable({full!r}) regularizer must be flow.regularizers.l1/l2/l1_l2(...); "
            f"got {regularizer!r}"
        )
    seed = _check_seed(getattr(initializer, "seed", None) if random_seed is None else random_seed)
    layout = _distribute.as_layout(f"get_variable({full!r})", distribute, parallel_distribution)
    _distribute.check_layout_rank(f"get_variable({full!r})", layout, shape)

    def init(job_seed, _shape=shape, _dt=dt, _init=initializer, _name=full, _seed=seed):
        return _init(_shape, _dt, name_rng(job_seed if _seed is None else _seed, _name))

    spec = VariableSpec(
        name=full,
        shape=shape,
        dtype=dt,
        init=init,
        trainable=True if trainable is None else bool(trainable),
        regularizer=regularizer,
        kind="model",
        seed=seed,
        origin=f"job {ctx.job_name!r} at {user_location()}",
        distribute=layout,
    )
    return define_variable(ctx, spec, reuse)

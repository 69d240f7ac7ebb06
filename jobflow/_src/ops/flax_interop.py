"""Calling any ``flax.linen.Module`` inside a job body.

``flow.layers.flax_module(module, *args, name="enc", **kwargs)`` returns
``module.apply(variables, *args, **kwargs)`` where every leaf of the module's variables
lives in the session's store as a named jobflow variable:

* ``params`` leaves are trainable variables ``<namespace>-<name>-<path>`` (the path
  joined with ``-``, e.g. ``enc-Dense_0-kernel``), trained by the job's optimizer and
  shared with every job that calls a module with the same name;
* leaves of other collections (``batch_stats``, ...) are non-trainable variables
  ``<namespace>-<name>-<collection>-<path>``. In a train job those collections are
  mutable and their new values are written back after the step.

The module's random streams (``dropout`` and ``params``) come from the job's key. Pass the
module's own mode flags yourself (``train=True`` / ``deterministic=False``). Initial
values come from ``module.init`` with a key derived from (seed, full name), so they are
deterministic like every other variable.

Mixed precision (``function_config.enable_auto_mixed_precision``): a module with Flax's
``dtype`` field (the computation dtype) left at None or float32 is applied as
``module.clone(dtype=<amp dtype>)``. Its ``param_dtype`` is untouched, so the params in
the store stay float32 (master weights) and Flax casts a copy of them for each dot or
convolution; Flax's layers keep normalization statistics and attention softmax in
float32 where they are built to. Flax's own layers and compound modules pass ``dtype``
on to their sub-modules; your modules should do the same (Flax's convention). A module
whose ``dtype`` is another type (bfloat16, float16, float64) keeps it; ``amp=False``
keeps any module's own ``dtype``; a module without a ``dtype`` field computes as written.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core import trace as _trace
from jobflow._src.graph import variables as _vars
from jobflow._src.ops import amp as _amp

__all__ = ["flax_module"]


def _path_name(path) -> str:
    parts = []
    for k in path:
        key = getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))
        parts.append(str(key))
    return "-".join(parts)


class _ModuleInit:
    """Runs ``module.init`` once per seed and hands out its leaves (host numpy)."""

    def __init__(self, module, arg_avals, kwargs, full_name):
        self.module, self.arg_avals, self.kwargs, self.full_name = module, arg_avals, kwargs, full_name
        self._cache = {}

    def leaf(self, seed, collection, path):
        if seed not in self._cache:
            key = jax.random.fold_in(jax.random.key(seed), zlib.crc32(self.full_name.encode()) & 0x7FFFFFFF)
            args = [jnp.zeros(a.shape, a.dtype) for a in self.arg_avals]
            pkey, dkey = jax.random.split(key)
            values = jax.jit(
                lambda *a: self.module.init({"params": pkey, "dropout": dkey}, *a, **self.kwargs)
            )(*args)
            flat = {}
            for coll, tree in values.items():
                for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]:
                    flat[(coll, _path_name(p))] = np.asarray(v)
            self._cache[seed] = flat
        return self._cache[seed][(collection, path)]


def _compute_in(module, low):
    """``module`` computing in ``low`` when its Flax ``dtype`` field is None or float32."""
    if low is None or "dtype" not in {f.name for f in dataclasses.fields(module)}:
        return module
    if module.dtype is not None and jnp.dtype(module.dtype) != jnp.float32:
        return module
    return module.clone(dtype=low)


def flax_module(
    module: Any, *args, name: str | None = None, trainable: bool = True, amp: bool = True, **kwargs
) -> Any:
    """Applies a ``flax.linen.Module`` with its variables in the session's store.

    Args:
      module: the module (its hyper-parameters; it holds no values).
      *args, **kwargs: passed to ``module.apply`` / ``module.__call__``.
      name: the prefix of its variable names (default: the class name, made unique per
        job like other layers). Calls with the same name share variables.
      trainable: False keeps its params out of the optimizer.
      amp: under mixed precision, compute in the job's low dtype (see above); False keeps
        the module's own ``dtype``.

    Returns:
      The module's output.
    """
    import flax.linen as fnn

    if not isinstance(module, fnn.Module):
        raise TypeError(f"flax_module(module) needs a flax.linen.Module; got {type(module).__name__}")
    ctx = _trace.require("layers.flax_module")
    name = name if name is not None else ctx.unique_name(type(module).__name__)
    full = _vars.full_name(name)
    key = ctx.next_key()
    pkey, dkey = jax.random.split(key)
    rngs = {"params": pkey, "dropout": dkey}
    arg_avals = [jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)) for a in args]
    shapes = jax.eval_shape(lambda *a: module.init(rngs, *a, **kwargs), *args)
    init = _ModuleInit(module, arg_avals, kwargs, full)
    variables: dict[str, Any] = {}
    names: dict[str, list[str]] = {}
    for coll, tree in shapes.items():
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        values = []
        for p, aval in leaves:
            path = _path_name(p)
            var_name = f"{name}-{path}" if coll == "params" else f"{name}-{coll}-{path}"
            spec = _vars.VariableSpec(
                name=_vars.full_name(var_name),
                shape=tuple(aval.shape),
                dtype=np.dtype(aval.dtype),
                init=functools.partial(init.leaf, collection=coll, path=path),
                trainable=trainable and coll == "params",
                kind="model",
                origin=f"job {ctx.job_name!r} flax module {type(module).__name__} at {_vars.user_location()}",
            )
            values.append(_vars.define_variable(ctx, spec, reuse=True))
            names.setdefault(coll, []).append(spec.name)
        variables[coll] = jax.tree_util.tree_unflatten(treedef, values)
    module = _compute_in(module, _amp.low_dtype() if amp else None)  # params stay as stored
    mutable: list[str] | Literal[False] = [c for c in variables if c != "params"] if ctx.is_train else False
    if mutable:
        out, new_state = module.apply(variables, *args, rngs=rngs, mutable=mutable, **kwargs)
        for coll in mutable:
            for n, v in zip(names[coll], jax.tree_util.tree_leaves(new_state[coll])):
                ctx.updates[n] = jax.lax.stop_gradient(v)
        return out
    return module.apply(variables, *args, rngs=rngs, **kwargs)

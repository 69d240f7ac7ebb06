"""The context a job body runs in while jobflow traces it.

A job body runs twice per input signature: once abstractly to *discover* what it uses
(variables, optimizers, placements), then once inside the compiled step to *run*. Ops
that need job state (``get_variable``, ``dropout``, ``minimize``, batch-norm statistics)
find it through :func:`current`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

from jobflow._src.core.errors import JobDefinitionError

_local = threading.local()


@dataclasses.dataclass
class TraceContext:
    """State shared by the ops of one trace of one job body.

    Attributes:
      job_name: the job being traced.
      is_train: True for ``type="train"`` jobs (dropout active, batch norm in training).
      discover: True during the discovery trace; ops record what they need.
      config: the job's :class:`~jobflow.config.FunctionConfig`.
      variables: name -> value for the run trace (tracers).
      specs: name -> VariableSpec, in creation order, recorded during discovery.
      used: variable names requested so far in this trace (for ``reuse=False``).
      updates: name -> new value of non-trainable variables written by ops.
      minimize_calls: (optimizer, [losses]) per ``minimize`` call.
      placements: placements entered in the body (discovery).
      rng: the job's key for this call, or None in discovery.
      amp_dtype: the low dtype white-list ops compute in, or None when AMP is off.
      mesh: the job's ``jax.sharding.Mesh`` in a consistent-view run trace (layout hints
        such as ``parallel_cast`` constrain to it), else None.
      label_ranges: ``(labels, num_classes, op name)`` per sparse cross-entropy op of the
        discovery trace (``note_label_range``): the runtime checks job arguments used as
        labels when the job checks its input values.
      feeds: key -> value the body hands to this step's optimizer update (an lr from
        ``CustomScheduler``, a metric for ``ReduceLROnPlateau.step``), keyed by the
        schedule's ``feed_key``. The job returns them from the traced body and passes
        them to ``apply_plans`` as an argument.
      gather_sites: variable name -> the ids (``ShapeDtypeStruct``) of each
        ``flow.gather(variable, ids)`` along axis 0, in order (discovery; ``note_gather``).
      row_grads: variable name -> one array per gather site of that variable, shaped like
        the gathered rows: in a run trace with row-sparse tables, the gather returns
        ``table[ids] + row_grads[name][k]`` and the step differentiates with respect to
        these (zero) arrays instead of the table (``optimizer/sparse_rows.py``).
      row_probe: with ``row_grads``, the gather returns ``row_grads[name][k]`` itself (not
        computed from the table): the probe that checks the table has no other use.
      gathered_ids: variable name -> the ids of each gather site of a run trace with
        ``row_grads``.
      data: the in-job data record of this trace (``data.nodes.JobData``: the data ops'
        nodes whose batches reach the step as hidden inputs), made by the first data op.
    """

    job_name: str
    is_train: bool
    discover: bool
    config: Any
    variables: dict = dataclasses.field(default_factory=dict)
    specs: dict = dataclasses.field(default_factory=dict)
    used: set = dataclasses.field(default_factory=set)
    updates: dict = dataclasses.field(default_factory=dict)
    minimize_calls: list = dataclasses.field(default_factory=list)
    placements: list = dataclasses.field(default_factory=list)
    rng: Any = None
    amp_dtype: Any = None
    mesh: Any = None
    feeds: dict = dataclasses.field(default_factory=dict)
    label_ranges: list = dataclasses.field(default_factory=list)
    gather_sites: dict = dataclasses.field(default_factory=dict)
    row_grads: dict = dataclasses.field(default_factory=dict)
    row_probe: bool = False
    gathered_ids: dict = dataclasses.field(default_factory=dict)
    data: Any = None
    _rng_count: int = 0
    _names: dict = dataclasses.field(default_factory=dict)

    def unique_name(self, base: str) -> str:
        """``base``, then ``base_1``, ``base_2``, ... for layers created without a name.

        Deterministic for a given body, so discovery and run traces agree.
        """
        n = self._names.get(base, 0)
        self._names[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def variable_name(self, value: Any) -> str | None:
        """The name of the variable whose value (this trace's object) ``value`` is, or None."""
        for name, v in self.variables.items():
            if v is value:
                return name
        return None

    def note_gather(self, params: Any, indices: Any) -> Any:
        """Called by ``flow.gather(params, indices)`` along axis 0: in discovery records a
        gather site of a variable (returns None); in a run trace with ``row_grads`` for
        that variable returns the differentiated rows to add to (or, probing, to use as)
        the gathered rows, else None."""
        if not (self.discover or self.row_grads):
            return None
        name = self.variable_name(params)
        if name is None:
            return None
        if self.discover:
            site = jax.ShapeDtypeStruct(jnp.shape(indices), jnp.asarray(indices).dtype)
            self.gather_sites.setdefault(name, []).append(site)
            return None
        if name not in self.row_grads:
            return None
        seen = self.gathered_ids.setdefault(name, [])
        rows = self.row_grads[name]
        want = tuple(jnp.shape(indices)) + tuple(params.shape[1:])
        if len(seen) >= len(rows) or tuple(rows[len(seen)].shape) != want:
            raise JobDefinitionError(
                f"job {self.job_name!r} gathers from {name!r} differently from its first trace "
                f"(gather {len(seen)} with ids shaped {jnp.shape(indices)}); a job body must "
                f"trace the same way each time"
            )
        seen.append(indices)
        return rows[len(seen) - 1]

    def next_key(self) -> jax.Array:
        """A fresh PRNG key for a random op, distinct for each op of the trace."""
        self._rng_count += 1
        if self.rng is None:  # discovery: shapes only
            return jax.random.key(0)
        return jax.random.fold_in(self.rng, self._rng_count)


def current() -> TraceContext | None:
    """The context of the job body being traced on this thread, or None."""
    return getattr(_local, "ctx", None)


def note_label_range(labels: Any, num_classes: int, op: str) -> None:
    """Records, in a discovery trace, that ``labels`` must lie in ``[0, num_classes)``."""
    ctx = current()
    if ctx is not None and ctx.discover:
        ctx.label_ranges.append((labels, int(num_classes), op))


def require(what: str) -> TraceContext:
    ctx = current()
    if ctx is None:
        raise RuntimeError(f"{what} can only be used inside the body of a @jobflow.global_function job")
    return ctx


@contextlib.contextmanager
def active(ctx: TraceContext) -> Iterator[TraceContext]:
    prev = current()
    _local.ctx = ctx
    try:
        yield ctx
    finally:
        _local.ctx = prev

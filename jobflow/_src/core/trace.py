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

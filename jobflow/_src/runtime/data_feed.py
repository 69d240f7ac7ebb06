"""In-job data: the hidden inputs a job's data ops add to its compiled step.

Where it sits in a call: discovery (``plan.discover``) records the dense outputs of the
body's data ops (``data.nodes.emit``, in ``TraceContext.data``). :func:`attach` then
gives the job's definition one hidden placeholder per output (batch axis 0, so the batch
is split over the devices like any ``tp.Numpy`` argument, and into micro-batches with
gradient accumulation), makes the job's :class:`~jobflow._src.data.pipeline.Pipeline` (one
per job and session, kept in ``Session.data``) and names its position's store entry
``System-Data-<job>``. Each call then goes through :meth:`DataFeed.run`: it takes the
next batches (``micro`` of them per step, concatenated), puts them after the call's own
arguments and runs the step; the pipeline moves past them only when the step ran, under
the store's lock, so a checkpoint taken at any moment pairs the variables with the
position of the next batch they have not seen.

The position reaches checkpoints through the store: ``Session.get_all`` writes every
pipeline's position into its entry first (``flush``) and ``Session.assign`` restores the
pipelines from the entries it loads (``restore``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping

import jax
import numpy as np

from jobflow._src.core import names as store_names
from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import JobDefinitionError
from jobflow._src.data import nodes as _nodes
from jobflow._src.data import pipeline as _pipeline
from jobflow._src.graph import env as _env
from jobflow._src.graph.variables import VariableSpec
from jobflow._src.runtime import dispatch as _dispatch
from jobflow._src.runtime import typing as tp

__all__ = ["DataFeed", "attach", "flush", "check", "restore"]


@dataclasses.dataclass
class DataFeed:
    """The hidden inputs of one job's programs.

    Attributes:
      pipeline: the job's pipeline (its outputs are the hidden inputs, in order).
      entry: the store name of its position (``System-Data-<job>``).
      first: the index of the first hidden input among the step's inputs.
      micro: batches per step (gradient accumulation's micro-batches).
    """

    pipeline: _pipeline.Pipeline
    entry: str
    first: int
    micro: int

    def _arrays(self, batches: list, steps: int | None) -> list[np.ndarray]:
        """One array per hidden input: ``micro`` batches concatenated per step, stacked
        along a new leading axis for ``run_steps``."""
        out = []
        for j in range(len(self.pipeline.outputs)):
            parts = [b[j] for b in batches]
            per_step = [
                parts[s] if self.micro == 1 else np.concatenate(parts[s : s + self.micro])
                for s in range(0, len(parts), self.micro)
            ]
            out.append(per_step[0] if steps is None else np.stack(per_step))
        return out

    def _place(self, program, arrays: list) -> list:
        layouts = program.inputs[self.first :]
        if program.direct:
            return arrays  # the compiled program copies numpy arrays to its devices
        if jax.process_count() == 1:
            return [lay.place("a flow.data batch", x) for lay, x in zip(layouts, arrays)]
        return [  # each process holds its own rows
            jax.make_array_from_process_local_data(lay.sharding, x, lay.shape)
            for lay, x in zip(layouts, arrays)
        ]

    def run(self, program, store, inputs: list, guard=None, steps: int | None = None):
        """``dispatch.run`` of ``program`` with the next batches after ``inputs``."""
        n = self.micro * (steps or 1)
        pipe = self.pipeline
        with pipe.call_lock:  # one call takes a batch at a time
            hidden = self._place(program, self._arrays(pipe.peek(n), steps))
            with store.lock:  # the step and the move past its batches, seen together
                out, info = _dispatch.run(program, store, [*inputs, *hidden], guard)
                pipe.advance(n)
        return out, info


def _signature(pipe: _pipeline.Pipeline) -> tuple:
    return tuple((n.op, n.kind, n.batch_size, n.sample_shape, str(n.dtype), n.key) for n in pipe.order)


def _with_hidden(definition, hidden: list):
    """A copy of ``definition`` whose body takes the hidden inputs after its arguments
    and hands them to its data ops (through the trace context)."""
    ext = copy.copy(definition)
    n = len(definition.placeholders)
    inner = definition.fn

    @functools.wraps(inner)
    def fn(*xs):
        _trace.require("a job body with flow.data ops").data = _nodes.JobData(xs[n:])
        return inner(*xs[:n])

    ext.fn = fn
    ext.placeholders = [*definition.placeholders, *hidden]
    return ext


def attach(definition, session, dense: tuple, shapes: tuple):
    """``(definition, shapes, feed, specs)`` of a job whose discovery found the data
    outputs ``dense``: the definition with their hidden placeholders, the full input
    shapes, the :class:`DataFeed` and the spec of the position's store entry (to create
    with the job's state). Nothing is registered yet (see :func:`register`)."""
    if definition.mirrored:
        raise JobDefinitionError(
            f"job {definition.name!r} uses flow.data ops in the mirrored view; in-job data feeds "
            f"the consistent view (each batch is split over the devices)"
        )
    micro = definition.accumulation_steps
    hidden = [
        (
            f"{node.name or node.op}#{k}",
            tp.Placeholder((micro * node.batch_size, *node.sample_shape), node.dtype),
        )
        for k, node in enumerate(dense)
    ]
    entry = store_names.data_position(definition.name)
    pipe = _pipeline.Pipeline(dense, definition.seed, _env.get_rank(), _env.get_world_size())
    old = session.data.get(entry)
    if old is not None and _signature(old) == _signature(pipe):
        pipe = old  # another input signature of the job: the same data, one position
    feed = DataFeed(pipe, entry, len(definition.placeholders), micro)
    spec = VariableSpec(
        name=entry,
        shape=(pipe.state_bytes,),
        dtype=np.dtype(np.uint8),
        init=lambda _s: _pipeline.encode_state(pipe.state(), pipe.state_bytes),
        trainable=False,
        kind="system",
        origin=f"job {definition.name!r}",
    )
    full = (*shapes, *(ph.shape for _, ph in hidden))
    return _with_hidden(definition, hidden), full, feed, spec


def register(session, feed: DataFeed) -> None:
    """Makes ``feed``'s pipeline the one of its entry in ``session`` (closing another)."""
    old = session.data.get(feed.entry)
    if old is not None and old is not feed.pipeline:
        old.close()
    session.data[feed.entry] = feed.pipeline


# ------------------------------------------------------------------ the session's hooks


def flush(session) -> None:
    """Writes every pipeline's position into its store entry (before the store is read)."""
    for entry, pipe in session.data.items():
        if entry in session.store:
            old = session.store[entry]
            value = _pipeline.encode_state(pipe.state(), pipe.state_bytes)
            session.store[entry] = jax.device_put(value, old.sharding)


def check(session, host: Mapping) -> list[str]:
    """The problems of the positions among ``host`` (name -> array to load)."""
    problems = []
    for entry, pipe in session.data.items():
        if entry in host:
            try:
                problems += [f"{entry}: {p}" for p in pipe.check_state(_pipeline.decode_state(host[entry]))]
            except ValueError as e:
                problems.append(f"{entry}: {e}")
    return problems


def restore(session, host: Mapping) -> None:
    """Continues every pipeline whose entry is among ``host`` from the loaded position."""
    for entry, pipe in session.data.items():
        if entry in host:
            pipe.restore(_pipeline.decode_state(host[entry]))

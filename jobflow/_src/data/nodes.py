"""The host-side graph the data ops build, and how a job body sees it.

A data op (``flow.data.ofrecord_reader``, a decoder, ``flow.image.Resize``, ...) computes
nothing when it is called: it returns a :class:`DataNode`, one node of a small graph
(reader -> decoders -> image ops) that the pipeline (``pipeline.py``) evaluates once per
batch on the host. Outside a job the node is what the op returns (``flow.data.iterate``
runs it). Inside a job body (a trace context is active) an op whose output is a dense
tensor with a fixed shape (``OFRecordRawDecoder``, ``CropMirrorNormalize``,
``decode_random``) returns instead the array the compiled step receives for it, a
*hidden input* of the step (:func:`emit`): during discovery an abstract stand-in of the
node's shape, in the step's trace the step's input. The nodes a trace emitted are
recorded in order in its :class:`JobData` (``TraceContext.data``); the runtime builds one
pipeline per job from them. Outputs that are not dense tensors (records, images of
varying size) stay nodes in a job body too: only data ops take them.

Determinism: the nodes of a pipeline are numbered in a fixed order (:func:`topological`),
and a random op of node ``k`` draws batch ``i`` from ``numpy.random.default_rng((seed,
k, i, rank))``: batch ``i`` depends only on the records of batch ``i`` and that stream,
never on threads or timing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import ArgumentError, DataError, JobDefinitionError

__all__ = ["DataNode", "Batch", "JobData", "emit", "node_of", "register_lazy", "topological", "evaluate"]

KINDS = ("records", "list", "tensor", "tuple")


@dataclasses.dataclass(frozen=True)
class Batch:
    """What a node's ``compute`` gets besides its inputs' values for one batch.

    Attributes:
      index: the batch's number (0, 1, ... from the pipeline's start).
      rows: the rows this process computes (the batch size over the process count).
      rng: the node's random stream for this batch.
    """

    index: int
    rows: int
    rng: np.random.Generator


@dataclasses.dataclass(eq=False)
class DataNode:
    """One data op of the host graph (see the module docstring).

    Attributes:
      op: the OneFlow name of the op that made it (for messages).
      inputs: the nodes it reads.
      kind: ``"records"`` (a list of serialized records), ``"list"`` (a list of arrays of
        varying shapes, e.g. decoded images), ``"tensor"`` (one array of ``shape``) or
        ``"tuple"`` (the outputs of an op with several, each read by its own node).
      batch_size: rows per batch (all processes together).
      compute: ``compute(input values, Batch) -> value``; None for a reader.
      sample_shape / dtype: a tensor's shape without the batch axis, and its dtype.
      source: a reader's ``source(seed, rank, world)``: an object with
        ``next_records(n)``, ``state()`` and ``restore(state)``.
      seed: the op's own seed, or None (the job's seed).
      name: the op's ``name`` argument.
      key: the op's other arguments, for comparing two graphs.
      state_bytes: the most bytes of JSON its source's ``state()`` takes (readers).
    """

    op: str
    inputs: tuple
    kind: str
    batch_size: int
    compute: Callable[[list, Batch], Any] | None = None
    sample_shape: tuple | None = None
    dtype: np.dtype | None = None
    source: Callable[[int, int, int], Any] | None = None
    seed: int | None = None
    name: str | None = None
    key: tuple = ()
    state_bytes: int = 0

    @property
    def shape(self) -> tuple | None:
        """A tensor's batch shape ``(batch_size, *sample_shape)``; None for other kinds."""
        if self.kind != "tensor" or self.sample_shape is None:
            return None
        return (self.batch_size, *self.sample_shape)

    def __repr__(self) -> str:
        what = f"shape={self.shape}, dtype={self.dtype}" if self.kind == "tensor" else self.kind
        return f"<flow.data node {self.op} {what} batch_size={self.batch_size}>"


# --------------------------------------------------------------------- inside a job body


class JobData:
    """What the data ops of one trace of a job body emitted.

    Attributes:
      dense: the tensor nodes in the order the body made them (the hidden inputs' order).
      inputs: in the step's trace, the hidden inputs (traced arrays) in that order; None
        in discovery.
      values: ``id(value) -> (value, node)`` of the arrays :func:`emit` returned, so that a
        data op handed one finds its node.
      lazy: ``id(value) -> (value, make_node)`` of device values with a host twin
        (``flow.random.coin_flip`` feeding a data op).
    """

    def __init__(self, inputs: Sequence | None = None) -> None:
        self.dense: list[DataNode] = []
        self.inputs = None if inputs is None else list(inputs)
        self.values: dict[int, tuple[Any, DataNode]] = {}
        self.lazy: dict[int, list] = {}


def job_data(ctx: Any) -> JobData:
    """The :class:`JobData` of trace context ``ctx`` (made in discovery)."""
    if ctx.data is None:
        if not ctx.discover:
            raise JobDefinitionError(
                f"job {ctx.job_name!r} calls a flow.data op that its discovery run did not call; "
                f"the data ops of a job body must not depend on values"
            )
        ctx.data = JobData()
    return ctx.data


def emit(node: DataNode) -> Any:
    """What a data op returns: ``node`` itself outside a job body and for a node that is
    not a dense tensor; inside a job body, the step's array for a tensor node."""
    ctx = _trace.current()
    if ctx is None or node.kind != "tensor":
        return node
    data = job_data(ctx)
    k = len(data.dense)
    data.dense.append(node)
    if data.inputs is None:  # discovery: only the shape matters
        import jax.numpy as jnp

        value = jnp.zeros(node.shape, node.dtype)
    elif k < len(data.inputs):
        value = data.inputs[k]
    else:
        raise JobDefinitionError(
            f"job {ctx.job_name!r} makes more flow.data outputs than its discovery run did "
            f"({len(data.inputs)}); the data ops of a job body must not depend on values"
        )
    data.values[id(value)] = (value, node)
    return value


def register_lazy(value: Any, make_node: Callable[[], DataNode]) -> Any:
    """Records that device ``value`` (made in a job body) has a host twin ``make_node()``,
    which a data op handed ``value`` uses; returns ``value``."""
    ctx = _trace.current()
    if ctx is not None:
        if ctx.data is None:  # a body without data outputs: nothing hidden
            ctx.data = JobData(None if ctx.discover else ())
        ctx.data.lazy[id(value)] = [value, make_node, None]
    return value


def node_of(value: Any, op: str, arg: str, kinds: Sequence[str] = KINDS) -> DataNode:
    """The node behind ``value`` (a node, or what :func:`emit` returned in this trace),
    checked to be one of ``kinds``; raises :class:`ArgumentError` naming ``op(arg)``."""
    node = value if isinstance(value, DataNode) else _traced_node(value)
    if node is None:
        raise ArgumentError(
            f"{op}({arg}) must be the output of a flow.data op (e.g. flow.data.ofrecord_reader, "
            f"a decoder, flow.image.Resize); got {arg}={_short(value)}"
        )
    if node.kind not in kinds:
        raise ArgumentError(
            f"{op}({arg}) takes {' or '.join(kinds)}; got the {node.kind} output of {node.op} ({arg}={node!r})"
        )
    return node


def _traced_node(value: Any) -> DataNode | None:
    ctx = _trace.current()
    if ctx is None or ctx.data is None:
        return None
    found = ctx.data.values.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    lazy = ctx.data.lazy.get(id(value))
    if lazy is not None and lazy[0] is value:
        if lazy[2] is None:
            lazy[2] = lazy[1]()
        return lazy[2]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- evaluation


def topological(outputs: Sequence[DataNode]) -> list[DataNode]:
    """Every node ``outputs`` read, inputs before the nodes that read them, in a fixed
    order (depth first, inputs in argument order): the numbering of the random streams."""
    order: list[DataNode] = []
    seen: set[int] = set()

    def visit(node: DataNode) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.inputs:
            visit(parent)
        order.append(node)

    for node in outputs:
        visit(node)
    return order


def rows_of(node: DataNode, world: int) -> int:
    """Rows of ``node``'s batch in one of ``world`` processes; raises unless it divides."""
    if node.batch_size % world:
        raise ArgumentError(
            f"{node.op}(batch_size) must divide across the {world} processes (each reads its share); "
            f"got batch_size={node.batch_size}"
        )
    return node.batch_size // world


def evaluate(order: Sequence[DataNode], records: dict, seed: int, index: int, rank: int, world: int) -> dict:
    """``{node: value}`` of batch ``index``: ``records`` holds each reader's records."""
    values: dict = {}
    for k, node in enumerate(order):
        if node.compute is None:
            values[node] = records[node]
            continue
        own = seed if node.seed is None else node.seed
        batch = Batch(index, rows_of(node, world), np.random.default_rng((own, k, index, rank)))
        value = node.compute([values[p] for p in node.inputs], batch)
        if node.kind == "tensor":
            value = _checked_tensor(node, value, batch.rows)
        values[node] = value
    return values


def _checked_tensor(node: DataNode, value: Any, rows: int) -> np.ndarray:
    value = np.asarray(value)
    want = (rows, *(node.sample_shape or ()))
    if value.shape != want or value.dtype != node.dtype:
        raise DataError(
            f"{node.op}: a batch came out with shape {value.shape} dtype {value.dtype}; "
            f"its declared shape is {want} dtype {node.dtype}"
        )
    return value

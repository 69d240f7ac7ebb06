"""``flow.data.decode_random``, ``flow.random.coin_flip`` as a data op, and ``flow.data.iterate``.

Every data op returns a node (``nodes.DataNode``) outside a job body and, inside one, the
step's array for a dense output (``nodes.emit``). :func:`iterate` runs nodes outside a
job: an iterator of numpy batches, with the same batches a job would get for the same
seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import ArgumentError
from jobflow._src.data import nodes as _nodes
from jobflow._src.data import pipeline as _pipeline
from jobflow._src.graph.variables import Initializer, random_uniform_initializer
from jobflow._src.ops import random_ops as _random_ops

__all__ = ["decode_random", "coin_flip", "iterate", "DataIterator", "sample_shape"]


def sample_shape(owner: str, shape: Any) -> tuple[int, ...]:
    """``shape`` (a list or tuple of ints >= 0) as a tuple; raises naming ``owner(shape)``."""
    if not isinstance(shape, (list, tuple)):
        raise ArgumentError(f"{owner}(shape) must be a list or tuple of ints; got shape={shape!r}")
    return tuple(checks.integer(owner, "shape", d, low=0) for d in shape)


def _dtype(owner: str, dtype: Any) -> np.dtype:
    try:
        return _dtypes.canonical(dtype)
    except TypeError:
        raise ArgumentError(
            f"{owner}(dtype) must be a dtype such as flow.float32 or flow.int32; got dtype={dtype!r}"
        ) from None


def decode_random(
    shape: Sequence[int],
    dtype: Any,
    batch_size: int = 1,
    initializer: Initializer | None = None,
    tick: Any = None,
    name: str | None = None,
) -> Any:
    """Random batches of ``(batch_size, *shape)`` drawn on the host from ``initializer``.

    OneFlow's ``flow.data.decode_random`` (its synthetic-data mode): each call of a job
    takes the next batch. ``initializer`` (default ``flow.random_uniform_initializer()``,
    U(0, 1), as OneFlow's) samples batch ``i`` from the stream ``(seed, node, i)``; the
    seed is the initializer's ``seed`` if set, else the job's (or ``iterate``'s).
    ``tick`` (a control dependency in OneFlow) is accepted and ignored.
    """
    owner = "data.decode_random"
    dims = sample_shape(owner, shape)
    dt = _dtype(owner, dtype)
    batch_size = checks.integer(owner, "batch_size", batch_size, low=1)
    if initializer is None:
        initializer = random_uniform_initializer()
    if not isinstance(initializer, Initializer):
        raise ArgumentError(
            f"{owner}(initializer) must be a flow initializer (e.g. flow.random_normal_initializer()); "
            f"got initializer={initializer!r}"
        )
    init = initializer

    def compute(_inputs: list, batch: _nodes.Batch) -> np.ndarray:
        return init((batch.rows, *dims), dt, batch.rng)

    node = _nodes.DataNode(
        "data.decode_random",
        (),
        "tensor",
        batch_size,
        compute,
        dims,
        dt,
        seed=init.seed,
        name=name,
        key=(repr(init),),
    )
    return _nodes.emit(node)


def _coin_flip_node(
    batch_size: int, seed: int | None, probability: float, name: str | None
) -> _nodes.DataNode:
    def compute(_inputs: list, batch: _nodes.Batch) -> np.ndarray:
        return (batch.rng.random(batch.rows) < probability).astype(np.int8)

    return _nodes.DataNode(
        "random.coin_flip",
        (),
        "tensor",
        batch_size,
        compute,
        (),
        np.dtype(np.int8),
        seed=seed,
        name=name,
        key=(probability,),
    )


def coin_flip(
    batch_size: int = 1, seed: int | None = None, probability: float = 0.5, name: str = "CoinFlip"
) -> Any:
    """``batch_size`` int8 draws: 1 with ``probability``, else 0 (OneFlow's ``flow.random.coin_flip``).

    In a job body it draws on the device from the job's random stream; handed to a data
    op (``flow.image.CropMirrorNormalize(mirror=...)``, ``flow.image.flip``) it is drawn
    on the host with the batch it flips, from the pipeline's stream. Outside a job it is
    a data node (``flow.data.iterate``).
    """
    owner = "random.coin_flip"
    batch_size = checks.integer(owner, "batch_size", batch_size, low=1)
    probability = checks.number(owner, "probability", probability, low=0, high=1)
    if seed is not None:
        seed = checks.integer(owner, "seed", seed)
    if _trace.current() is None:
        return _coin_flip_node(batch_size, seed, probability, name)
    value = _random_ops.coin_flip(batch_size, seed, probability, name)
    return _nodes.register_lazy(value, lambda: _coin_flip_node(batch_size, seed, probability, name))


# --------------------------------------------------------------------------- standalone


class DataIterator:
    """Numpy batches of data nodes outside a job (see :func:`iterate`).

    ``state()`` is the position of the next batch (JSON-able), ``restore(state)``
    continues from one; ``close()`` stops the threads.
    """

    def __init__(self, structure: Any, leaves: list, pipeline: _pipeline.Pipeline) -> None:
        self._structure, self._leaves, self.pipeline = structure, leaves, pipeline

    def __iter__(self) -> DataIterator:
        return self

    def __next__(self) -> Any:
        (batch,) = self.pipeline.take(1)
        return _rebuild(self._structure, batch)

    def state(self) -> dict:
        return self.pipeline.state()

    def restore(self, state: dict) -> None:
        self.pipeline.restore(state)

    def close(self) -> None:
        self.pipeline.close()

    def __enter__(self) -> DataIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flatten(value: Any, leaves: list) -> Any:
    if isinstance(value, _nodes.DataNode):
        leaves.append(value)
        return len(leaves) - 1
    if isinstance(value, Mapping):
        return {k: _flatten(v, leaves) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value:
        return tuple(_flatten(v, leaves) for v in value)
    raise ArgumentError(
        f"data.iterate(nodes) takes a flow.data node or a tuple, list or dict of them (made outside "
        f"a job); got {type(value).__name__}: {value!r:.80}"
    )


def _rebuild(structure: Any, batch: tuple) -> Any:
    if isinstance(structure, int):
        return batch[structure]
    if isinstance(structure, dict):
        return {k: _rebuild(v, batch) for k, v in structure.items()}
    return tuple(_rebuild(v, batch) for v in structure)


def iterate(
    nodes: Any, seed: int = 0, *, prefetch: int = 2, num_workers: int = 2, rank: int = 0, world_size: int = 1
) -> DataIterator:
    """Numpy batches of data nodes, for feeding placeholders: ``for x, y in flow.data.iterate((x, y))``.

    Args:
      nodes: a node made by a data op outside a job, or a tuple, list or dict of them;
        each batch has the same structure (tensors as numpy arrays, images as lists).
      seed: the seed of the random ops and of the readers' shuffling (a job uses its own).
      prefetch: batches computed ahead in the background.
      num_workers: threads that decode and augment.
      rank / world_size: read this process's share of the parts.
    """
    leaves: list = []
    structure = _flatten(nodes, leaves)
    seed = checks.integer("data.iterate", "seed", seed)
    prefetch = checks.integer("data.iterate", "prefetch", prefetch, low=1)
    num_workers = checks.integer("data.iterate", "num_workers", num_workers, low=1)
    world_size = checks.integer("data.iterate", "world_size", world_size, low=1)
    rank = checks.integer("data.iterate", "rank", rank, low=0, high=world_size - 1)
    pipe = _pipeline.Pipeline(leaves, seed, rank, world_size, prefetch, num_workers)
    return DataIterator(structure, leaves, pipe)

"""The host pipeline: batches of data nodes computed ahead in background threads.

One producer thread reads the records of batch ``i`` from every reader, in batch order
(the readers are sequential), and hands the rest of the batch (decoding, augmenting,
batching: :func:`nodes.evaluate`) to a small thread pool; up to ``prefetch`` batches
wait, done or in progress, for the consumer. A batch depends only on its records and on
its random streams (``nodes.py``), so the threads change when a batch is ready, never
what it holds.

The position is the state of the sources *before* the next batch the consumer has not
taken yet, and that batch's number (:meth:`Pipeline.state`): batches read ahead do not
advance it. :meth:`Pipeline.restore` drops what was read ahead and continues from a
saved position, so a restored pipeline yields exactly the batches the saved one would
have.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from jobflow._src.core.errors import DataError
from jobflow._src.data import nodes as _nodes

__all__ = ["Pipeline", "encode_state", "decode_state"]


def _seed_for(seed: int, k: int) -> int:
    """The seed of reader ``k``'s source (its shuffling), from the pipeline's seed."""
    return int(np.random.SeedSequence((seed, k)).generate_state(1)[0] & 0x7FFFFFFF)


class Pipeline:
    """Batches of ``outputs`` (data nodes), computed ahead by background threads.

    Args:
      outputs: the nodes whose values a batch holds, in this order.
      seed: the seed of the random streams and of the readers' shuffling.
      rank / world: this process and the process count; each process reads its share of
        every reader's parts and computes ``batch_size / world`` rows.
      prefetch: batches computed ahead (at least 1).
      workers: threads that decode and augment.
    """

    def __init__(
        self,
        outputs: Sequence[_nodes.DataNode],
        seed: int,
        rank: int = 0,
        world: int = 1,
        prefetch: int = 2,
        workers: int = 2,
    ) -> None:
        self.outputs = list(outputs)
        self.order = _nodes.topological(self.outputs)
        self.seed, self.rank, self.world = int(seed), int(rank), int(world)
        self.prefetch, self.workers = max(1, int(prefetch)), max(1, int(workers))
        for node in self.order:
            _nodes.rows_of(node, self.world)  # every batch divides across the processes
        self.readers = [(k, n) for k, n in enumerate(self.order) if n.source is not None]
        self.sources = [self._open(k, n) for k, n in self.readers]
        self.call_lock = threading.Lock()  # one consumer at a time takes batches (a job call)
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()  # (index, position, future)
        self._next = 0  # the number of the next batch to read
        self._want = self.prefetch
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._stop = False
        self._ended = False

    def _open(self, k: int, node: _nodes.DataNode) -> Any:
        """The source of reader node ``k`` (its shuffling seeded from the pipeline's seed)."""
        assert node.source is not None
        seed = self.seed if node.seed is None else node.seed
        return node.source(_seed_for(seed, k), self.rank, self.world)

    @property
    def state_bytes(self) -> int:
        """The size of the position's store entry (JSON, zero padded): room for every
        reader's state (its shuffle buffer), a multiple of 4 KiB."""
        need = 4096 + sum(n.state_bytes for _, n in self.readers)
        return -(-need // 4096) * 4096

    # -- the position ---------------------------------------------------------------------
    def _position(self, index: int) -> dict:
        return {"batch": index, "sources": [s.state() for s in self.sources]}

    def state(self) -> dict:
        """The position of the next batch not taken (JSON-able)."""
        with self._cond:
            if self._queue:
                return self._queue[0][1]
            return self._position(self._next)

    def check_state(self, state: Any) -> list[str]:
        """The problems of ``state`` as a position of this pipeline (empty when it fits)."""
        if not isinstance(state, dict) or not isinstance(state.get("batch"), int) or state["batch"] < 0:
            return [f"a data position needs a batch number >= 0; got {state!r:.200}"]
        sources = state.get("sources")
        if not isinstance(sources, list) or len(sources) != len(self.sources):
            return [
                f"the data position holds {len(sources) if isinstance(sources, list) else 'no'} reader "
                f"states; the job's pipeline has {len(self.sources)} readers"
            ]
        return []

    def restore(self, state: dict) -> None:
        """Continues from ``state`` (from :meth:`state`): what was read ahead is dropped."""
        problems = self.check_state(state)
        if problems:
            raise DataError("; ".join(problems))
        self._halt()
        with self._cond:
            for source, s in zip(self.sources, state["sources"]):
                source.restore(s)
            self._queue.clear()
            self._next = state["batch"]
            self._stop = self._ended = False

    # -- taking batches -------------------------------------------------------------------
    def peek(self, n: int = 1) -> list[tuple]:
        """The next ``n`` batches (each a tuple, one value per output), not taken yet.

        Raises what reading or computing one of them raised."""
        self._start()
        with self._cond:
            self._want = max(self._want, n)
            self._cond.notify_all()
            while len(self._queue) < n and not self._ended:
                self._cond.wait()
            items = list(self._queue)[:n]
        results = [future.result() for _, _, future in items]
        if len(results) < n:  # the producer stopped: its last batch failed
            raise DataError("the data pipeline stopped")  # pragma: no cover (the failed batch raised)
        return results

    def advance(self, n: int = 1) -> None:
        """Takes the next ``n`` batches (after :meth:`peek`): the position moves past them."""
        with self._cond:
            for _ in range(n):
                self._queue.popleft()
            self._cond.notify_all()

    def take(self, n: int = 1) -> list[tuple]:
        """:meth:`peek` then :meth:`advance`."""
        with self.call_lock:
            out = self.peek(n)
            self.advance(n)
            return out

    # -- the threads ----------------------------------------------------------------------
    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._ended:
                return
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, "jobflow-data")
            self._stop = False
            self._thread = threading.Thread(target=self._produce, name="jobflow-data-reader", daemon=True)
            self._thread.start()

    def _produce(self) -> None:
        while True:
            with self._cond:
                while not self._stop and len(self._queue) >= max(self.prefetch, self._want):
                    self._cond.wait()
                if self._stop:
                    return
                if not self._read_one():
                    self._ended = True
                    self._cond.notify_all()
                    return
                self._cond.notify_all()

    def _read_one(self) -> bool:
        """Reads batch ``_next`` (holding the lock) and queues its computation; False when
        reading failed (the failure is queued in its place)."""
        index, position = self._next, self._position(self._next)
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            records = {
                node: source.next_records(_nodes.rows_of(node, self.world))
                for (_, node), source in zip(self.readers, self.sources)
            }
        except BaseException as e:  # raised to the consumer when it takes this batch
            future.set_exception(e)
            self._queue.append((index, position, future))
            return False
        assert self._pool is not None
        try:
            future = self._pool.submit(self._compute, records, index)
        except RuntimeError:  # the interpreter is exiting: no more batches
            return False
        self._queue.append((index, position, future))
        self._next += 1
        return True

    def _compute(self, records: dict, index: int) -> tuple:
        values = _nodes.evaluate(self.order, records, self.seed, index, self.rank, self.world)
        return tuple(values[o] for o in self.outputs)

    def _halt(self) -> None:
        """Stops the producer thread (the pool stays)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:
            for _, _, future in self._queue:
                future.cancel()

    def close(self) -> None:
        """Stops the threads; the pipeline can restart (its position is kept)."""
        position = self.state()
        self._halt()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._cond:
            self._queue.clear()
            self._next, self._ended = position["batch"], False
        for source, s in zip(self.sources, position["sources"]):
            source.restore(s)
            getattr(source, "close", lambda: None)()  # reopened when read again


def encode_state(state: dict, size: int) -> np.ndarray:
    """``state`` as a uint8 store entry of ``size`` bytes: its JSON, zero padded."""
    raw = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    if len(raw) > size:
        raise DataError(f"the data position takes {len(raw)} bytes of JSON; its entry holds {size}")
    out = np.zeros((size,), np.uint8)
    out[: len(raw)] = np.frombuffer(raw, np.uint8)
    return out


def decode_state(arr: Any) -> Any:
    """The state of a store entry made by :func:`encode_state`; raises ``DataError``."""
    raw = np.asarray(arr, np.uint8).reshape(-1).tobytes().rstrip(b"\0")
    try:
        return json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError(f"a data position is not valid JSON ({e})") from None

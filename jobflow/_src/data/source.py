"""An endless, deterministic, resumable reader of an OFRecord dataset's records.

:class:`OFRecordSource` reads as OneFlow's ``OFRecordReader`` (``oneflow/user/data/
ofrecord_dataset.h``, ``random_shuffle_dataset.h`` at v0.4.0):

- **Parts.** Part ``i`` is ``part_name_prefix`` + ``i`` zero-padded to
  ``part_name_suffix_length`` digits (``-1``: not padded), ``i`` in ``0 .. data_part_num-1``.
  Every part must exist (:class:`~jobflow.errors.DataError` names the missing ones).
- **Ranks.** With ``world`` processes, process ``rank`` reads a contiguous share of the
  part list, as OneFlow's ``BalancedSplitter``: ``data_part_num // world`` parts each and
  one more for the first ``data_part_num % world`` ranks (``data_part_num >= world``).
- **Epochs.** A process reads its parts in order, each from its first record to its last,
  and starts over at the end (an endless stream; ``epoch`` counts the passes). With
  ``shuffle_after_epoch``, the whole part list is permuted before each epoch after the
  first (epoch 0 reads the parts in order) and each rank takes its share of the permuted
  list, so ranks change parts between epochs and never overlap. The permutation is
  numpy's ``PCG64`` seeded with ``(524287, seed, epoch)`` (OneFlow shuffles with
  ``std::mt19937(524287 + epoch)`` and ``std::shuffle``, whose result depends on the C++
  library's version; jobflow's order is its own but fixed).
- **Record shuffle.** With ``random_shuffle``, a buffer is first filled with the next
  ``shuffle_buffer_size`` records; then for each record read, a uniformly drawn buffer
  slot is output and the new record takes its place. The draws are OneFlow's exactly:
  ``std::default_random_engine(std::seed_seq({seed}))`` and
  ``std::uniform_int_distribution`` (:mod:`~jobflow._src.data.cpp_random`), so with
  ``shuffle_after_epoch=False`` the order equals OneFlow's for the same ``seed``. (OneFlow's
  default ``seed=-1`` picks a random seed; here ``seed`` is always explicit.)

Memory stays at the shuffle buffer (``shuffle_buffer_size`` records) plus one record.
:meth:`state` describes the position as plain JSON data (the buffer as part numbers and
byte offsets, not bytes); :meth:`restore` re-reads the buffered records from their files,
so a restored source yields exactly the records an uninterrupted one would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import numpy as np

from jobflow._src.core import checks
from jobflow._src.core.errors import ArgumentError, DataError
from jobflow._src.data.cpp_random import MinstdRand0
from jobflow._src.data.ofrecord import iter_records, parse_message, part_paths, read_record_at

__all__ = ["OFRecordSource", "balanced_range"]

ONEFLOW_DATASET_SEED = 524287  # OneFlow's kOneflowDatasetSeed
STATE_VERSION = 1
_LENGTH_BYTES = 8
# the settings a state belongs to: restore() refuses a state saved under others
_CONFIG = (
    "data_part_num",
    "rank",
    "world",
    "random_shuffle",
    "shuffle_buffer_size",
    "shuffle_after_epoch",
    "seed",
)


def balanced_range(total: int, world: int, rank: int) -> tuple[int, int]:
    """``[begin, end)`` of ``rank``'s share of ``total`` items (OneFlow's
    ``BalancedSplitter``): the first ``total % world`` ranks get one item more."""
    base, extra = divmod(total, world)
    if rank < extra:
        begin = (base + 1) * rank
        return begin, begin + base + 1
    begin = (base + 1) * extra + base * (rank - extra)
    return begin, begin + base


class OFRecordSource:
    """Serialized records of an OFRecord dataset, epoch after epoch (see the module doc).

    Args mirror ``flow.data.ofrecord_reader``; ``seed`` seeds the record shuffle and the
    part shuffle, ``rank``/``world`` pick this process's share of the parts, ``validate``
    parses each record as it is read (a malformed one raises :class:`DataError` naming its
    file and byte offset instead of failing later in a decoder).
    """

    def __init__(
        self,
        data_dir: str,
        data_part_num: int = 1,
        part_name_prefix: str = "part-",
        part_name_suffix_length: int = -1,
        random_shuffle: bool = False,
        shuffle_buffer_size: int = 1024,
        shuffle_after_epoch: bool = False,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        *,
        validate: bool = True,
    ) -> None:
        owner = "OFRecordSource"
        self.data_dir = os.fspath(data_dir)
        self.data_part_num = checks.integer(owner, "data_part_num", data_part_num, low=1)
        self.world = checks.integer(owner, "world", world, low=1)
        self.rank = checks.integer(owner, "rank", rank, low=0, high=self.world - 1)
        if self.data_part_num < self.world:
            raise ArgumentError(
                f"{owner}(data_part_num) must be >= world={self.world} (each process reads whole parts); "
                f"got data_part_num={self.data_part_num}"
            )
        self.random_shuffle = checks.flag(owner, "random_shuffle", random_shuffle)
        self.shuffle_buffer_size = checks.integer(owner, "shuffle_buffer_size", shuffle_buffer_size, low=1)
        self.shuffle_after_epoch = checks.flag(owner, "shuffle_after_epoch", shuffle_after_epoch)
        self.seed = checks.integer(owner, "seed", seed, low=None)
        self.validate = checks.flag(owner, "validate", validate)
        suffix = checks.integer(owner, "part_name_suffix_length", part_name_suffix_length, low=-1)
        if not isinstance(part_name_prefix, str):
            raise ArgumentError(f"{owner}(part_name_prefix) must be a str; got {part_name_prefix!r}")
        self.paths = part_paths(self.data_dir, self.data_part_num, part_name_prefix, suffix)
        self._iter: Iterator[tuple[int, bytes]] | None = None
        self._set_position(self._initial_position())

    # -- position --------------------------------------------------------------------------

    def parts_of_epoch(self, epoch: int) -> list[int]:
        """The part numbers this rank reads in ``epoch``, in order."""
        order = np.arange(self.data_part_num)
        if self.shuffle_after_epoch and epoch > 0:
            key = [ONEFLOW_DATASET_SEED, self.seed % (1 << 64), epoch]
            order = np.random.Generator(np.random.PCG64(key)).permutation(self.data_part_num)
        begin, end = balanced_range(self.data_part_num, self.world, self.rank)
        return [int(p) for p in order[begin:end]]

    def _initial_position(self) -> dict[str, Any]:
        return {
            "epoch": 0,
            "parts": self.parts_of_epoch(0),
            "file_index": 0,
            "offset": 0,
            "records_in_epoch": 0,
            "buffer": None,
            "rng": MinstdRand0.from_seed_seq(self.seed).x if self.random_shuffle else None,
        }

    def _set_position(self, pos: dict[str, Any]) -> None:
        self._close_file()
        self.epoch: int = pos["epoch"]
        self._parts: list[int] = list(pos["parts"])
        self._file_index: int = pos["file_index"]
        self._offset: int = pos["offset"]
        self._records_in_epoch: int = pos["records_in_epoch"]
        self._buffer: list[tuple[int, int, bytes]] | None = pos["buffer"]
        self._rng = MinstdRand0(pos["rng"]) if pos["rng"] is not None else None

    def _position(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "parts": list(self._parts),
            "file_index": self._file_index,
            "offset": self._offset,
            "records_in_epoch": self._records_in_epoch,
            "buffer": None if self._buffer is None else list(self._buffer),
            "rng": None if self._rng is None else self._rng.x,
        }

    # -- reading ---------------------------------------------------------------------------

    def _close_file(self) -> None:
        it, self._iter = getattr(self, "_iter", None), None
        if it is not None:
            it.close()

    def _next_in_stream(self) -> tuple[int, int, bytes]:
        """``(part, byte offset, record)``: the next record of this rank's endless stream.

        Ends: each pass of the loop moves to the next file, and a whole epoch without a
        record raises in :meth:`_end_epoch`, so at most two epochs' files are visited."""
        while True:
            part = self._parts[self._file_index]
            if self._iter is None:
                self._iter = iter_records(self.paths[part], start=self._offset, validate=self.validate)
            item = next(self._iter, None)
            if item is not None:
                offset, data = item
                self._offset = offset + _LENGTH_BYTES + len(data)
                self._records_in_epoch += 1
                return part, offset, data
            self._close_file()
            self._file_index += 1
            self._offset = 0
            if self._file_index == len(self._parts):
                self._end_epoch()

    def _end_epoch(self) -> None:
        if self._records_in_epoch == 0:
            names = ", ".join(os.path.basename(self.paths[p]) for p in self._parts)
            raise DataError(
                f"OFRecord dataset {self.data_dir!r}: the parts of rank {self.rank} of {self.world} "
                f"in epoch {self.epoch} ({names}) hold no records; an endless reader needs at least one",
                path=self.paths[self._parts[0]],
                offset=0,
            )
        self.epoch += 1
        self._records_in_epoch = 0
        self._file_index = 0
        self._parts = self.parts_of_epoch(self.epoch)

    def _next_record(self) -> bytes:
        if self._rng is None:
            return self._next_in_stream()[2]
        if self._buffer is None:
            self._buffer = [self._next_in_stream() for _ in range(self.shuffle_buffer_size)]
        item = self._next_in_stream()
        slot = self._rng.uniform_int(0, len(self._buffer) - 1)
        out, self._buffer[slot] = self._buffer[slot], item
        return out[2]

    def next_records(self, n: int) -> list[bytes]:
        """The next ``n`` serialized records. On an error (a malformed or vanished file)
        the source is left where it was before the call."""
        n = checks.integer("OFRecordSource.next_records", "n", n, low=0)
        before = self._position()
        try:
            return [self._next_record() for _ in range(n)]
        except BaseException:
            self._set_position(before)
            raise

    # -- state -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The reader's position as JSON data: the settings it belongs to, ``epoch``,
        ``parts`` (this epoch's part order), ``file_index`` and ``offset`` (the next record's
        file and byte), ``buffer`` (the shuffle buffer's records as ``[part, offset]``, or
        ``None`` before it is filled) and ``rng`` (the shuffle engine's state)."""
        pos = self._position()
        buffer = pos.pop("buffer")
        return {
            "version": STATE_VERSION,
            **{k: getattr(self, k) for k in _CONFIG},
            **pos,
            "buffer": None if buffer is None else [[part, offset] for part, offset, _ in buffer],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Moves to the position ``state`` (from :meth:`state` of a source with the same
        settings) describes, re-reading the buffered records. A bad state raises and
        leaves the source unchanged."""
        pos = self._checked_position(state)
        if pos["buffer"] is not None:
            pos["buffer"] = [(part, offset, self._read_at(part, offset)) for part, offset in pos["buffer"]]
        self._set_position(pos)

    def _read_at(self, part: int, offset: int) -> bytes:
        data = read_record_at(self.paths[part], offset)
        if self.validate:
            parse_message(data, path=self.paths[part], offset=offset)
        return data

    def _checked_position(self, state: Any) -> dict[str, Any]:
        owner = "OFRecordSource.restore"
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ArgumentError(
                f"{owner}(state) must be a dict from OFRecordSource.state(); got {state!r:.200}"
            )
        wrong = [
            f"{k}={state.get(k)!r} (this source: {getattr(self, k)!r})"
            for k in _CONFIG
            if state.get(k) != getattr(self, k)
        ]
        if wrong:
            raise ArgumentError(
                f"{owner}(state) was saved by a source with other settings: {', '.join(wrong)}"
            )
        try:
            pos = {
                k: state[k]
                for k in ("epoch", "parts", "file_index", "offset", "records_in_epoch", "buffer", "rng")
            }
            parts = [
                checks.integer(owner, "parts", p, low=0, high=self.data_part_num - 1) for p in pos["parts"]
            ]
            ok = (
                checks.integer(owner, "epoch", pos["epoch"]) >= 0
                and 0 <= checks.integer(owner, "file_index", pos["file_index"]) < len(parts)
                and checks.integer(owner, "offset", pos["offset"]) >= 0
                and checks.integer(owner, "records_in_epoch", pos["records_in_epoch"]) >= 0
                and (pos["rng"] is None) == (not self.random_shuffle)
                and parts == self.parts_of_epoch(pos["epoch"])
                and pos["offset"] <= os.path.getsize(self.paths[parts[pos["file_index"]]])
            )
            if pos["buffer"] is not None:
                pos["buffer"] = [(int(p), int(o)) for p, o in pos["buffer"]]
                ok = ok and len(pos["buffer"]) == self.shuffle_buffer_size and self.random_shuffle
                ok = ok and all(0 <= p < self.data_part_num and o >= 0 for p, o in pos["buffer"])
            if pos["rng"] is not None:
                MinstdRand0(checks.integer(owner, "rng", pos["rng"]))
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise ArgumentError(
                f"{owner}(state) is malformed ({type(e).__name__}: {e}); got {state!r:.200}"
            ) from None
        if not ok:
            raise ArgumentError(
                f"{owner}(state) is inconsistent with this source's settings; got {state!r:.200}"
            )
        pos["parts"] = parts
        return pos

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the open part file (reading again reopens it)."""
        self._close_file()

    def __enter__(self) -> OFRecordSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

"""jobflow's checkpoint file: one safetensors file with a CRC-32C per variable.

The layout is the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
little-endian header length, a JSON header (each tensor's dtype, shape and byte range,
plus a ``__metadata__`` map of strings), then the raw little-endian C-order bytes. Reading
it parses JSON and copies bytes; nothing in it can execute code. jobflow's metadata:

* ``format``: ``"jobflow.checkpoint"``; ``format_version``: ``"1"``; ``jobflow``: the version
  that wrote it;
* ``crc32c``: a JSON object ``{name: "8 hex digits"}``, the CRC-32C (Castagnoli, as in
  iSCSI and TFRecord; computed by the ``crc32c`` package, hardware-accelerated) of each
  tensor's bytes. Files written by earlier versions carry ``crc32`` instead, the CRC-32
  (zlib) of each tensor's bytes in the same form; they are verified with zlib;
* ``kinds``: a JSON object ``{name: "model" | "slot" | "system"}`` for the variables the
  session knew.

Any other safetensors file can be read too (without the checksum verification).

Writing is jobflow's own (:func:`write`): the same header and bytes as safetensors'
``save_file`` (tensors ordered by dtype, then name; the header padded with spaces to a
multiple of 8 bytes), but the data is written first, at its final offset, while the
checksums are computed beside it, and the disk's writeback starts while the file is
being written (:mod:`.writeback`), so that the caller's ``fsync`` finds little left to do.

Reading is jobflow's own too and refuses hostile files (links, FIFOs, devices, absurd or
inconsistent headers) with a ValueError naming the problem; :mod:`.safe_files` has the
rules. This module needs only numpy, ml_dtypes and crc32c (no JAX, and not the
safetensors package, which the tests use as the independent reference).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import queue
import struct
import sys
import threading
import zlib
from collections.abc import Callable

import crc32c as _crc32c
import ml_dtypes
import numpy as np

from jobflow._src.io import writeback as _writeback
from jobflow._src.io.safe_files import (
    empty,
    label,
    open_file,
    read_exact,
    shape_problem,
    value_problems,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "MAX_HEADER",
    "write",
    "read",
    "read_header",
    "read_some",
    "read_kinds",
    "check_dtypes",
    "crc32c",
    "crc32",
    "CHECKSUM_KEY",
    "RESERVED",
    "header_bytes",
]

FORMAT = "jobflow.checkpoint"
VERSION = "1"


def _bytes(arr: np.ndarray) -> memoryview:
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data


def crc32c(arr: np.ndarray) -> str:
    """The CRC-32C of the array's C-order bytes, as 8 hex digits (what jobflow writes)."""
    return f"{_crc32c.crc32c(_bytes(arr)):08x}"


def crc32(arr: np.ndarray) -> str:
    """The CRC-32 (zlib) of the array's C-order bytes, as 8 hex digits (what earlier
    versions wrote under the metadata key ``crc32``)."""
    return f"{zlib.crc32(_bytes(arr)):08x}"


CHECKSUM_KEY = "crc32c"  # the metadata key of the checksums jobflow writes
# metadata key -> (checksum of an array, its name in messages); the first present is verified
_CHECKSUMS = {"crc32c": (crc32c, "CRC-32C"), "crc32": (crc32, "CRC-32")}


def _checksum_key(meta: dict[str, str]) -> str:
    """The metadata key whose checksums a jobflow file's tensors are verified against."""
    return next((k for k in _CHECKSUMS if k in meta), CHECKSUM_KEY)


# ---------------------------------------------------------------------------- writing

# safetensors dtype codes -> numpy dtypes
_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "F32": np.dtype(np.float32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F64": np.dtype(np.float64),
    "C64": np.dtype(np.complex64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
# safetensors' save_file lays the tensors out by dtype in this order (largest first), then
# by name; jobflow's writer keeps that layout, so its files match save_file's byte for byte
# up to the order of the metadata keys (which save_file takes from a hash map)
_FILE_ORDER = {
    code: i
    for i, code in enumerate(
        ("U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16")
        + ("F8_E4M3", "F8_E5M2", "I8", "U8", "BOOL")
    )
}
RESERVED = "__metadata__"  # the header's key for the metadata: not a tensor name
_THREAD_MIN = 16 * 2**20  # file sizes from which the reader computes the checksums on a second thread
_CLOEXEC, _BINARY = getattr(os, "O_CLOEXEC", 0), getattr(os, "O_BINARY", 0)


def _code(dtype: np.dtype) -> str | None:
    """safetensors' code of ``dtype`` (any byte order); None for types it cannot store."""
    return _CODES.get(dtype.newbyteorder("="))


def check_dtypes(arrays: dict[str, np.ndarray]) -> list[str]:
    """Problems for arrays the format cannot store: names it reserves or cannot encode
    (``__metadata__``, text that is not valid UTF-8) and dtypes other than safetensors'
    (strings, objects, structured types, complex128, 4-bit and other exotic floats)."""
    problems = []
    for name, arr in arrays.items():
        if name == RESERVED:
            problems.append(f"{name}: the name is reserved by the safetensors format")
        elif not name.isascii():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{name!r}: the name is not valid Unicode text (it cannot be UTF-8 encoded)")
        if _code(arr.dtype) is not None:
            continue
        if arr.dtype.kind in "biufc" or arr.dtype.type.__module__.startswith("ml_dtypes"):
            known = ", ".join(sorted(d.name for d in _DTYPES.values()))
            problems.append(f"{name}: dtype {arr.dtype} cannot be stored (safetensors stores {known})")
        else:
            problems.append(f"{name}: dtype {arr.dtype} cannot be stored (numbers and booleans only)")
    return problems


def _little_endian(arr: np.ndarray) -> np.ndarray:
    """``arr`` C-contiguous with little-endian bytes, as the file stores it (no copy
    when it is so already)."""
    arr = np.asarray(arr, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    order = arr.dtype.byteorder
    if order == ">" or (order == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def _file_order(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` (checked by :func:`check_dtypes`) in the order of their bytes in the file."""
    return dict(sorted(arrays.items(), key=lambda kv: (_FILE_ORDER[_code(kv[1].dtype) or ""], kv[0])))


def _jobflow_metadata(arrays: dict[str, np.ndarray], kinds: dict[str, str], version: str, sums: dict) -> dict:
    return {
        "format": FORMAT,
        "format_version": VERSION,
        "jobflow": version,
        CHECKSUM_KEY: json.dumps(sums, sort_keys=True),
        "kinds": json.dumps({n: k for n, k in kinds.items() if n in arrays}, sort_keys=True),
    }


def header_bytes(arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The file's first bytes up to its data: the 8-byte little-endian header length and
    the header JSON (``__metadata__`` first, then each tensor's dtype, shape and byte
    range, in the order of ``arrays``), padded with spaces to a multiple of 8 bytes, as
    safetensors writes it."""
    entries: dict = {RESERVED: metadata}
    pos = 0
    for name, arr in arrays.items():
        entries[name] = {
            "dtype": _code(arr.dtype),
            "shape": list(arr.shape),
            "data_offsets": [pos, pos + arr.nbytes],
        }
        pos += arr.nbytes
    text = json.dumps(entries, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write(
    path: str, arrays: dict[str, np.ndarray], kinds: dict[str, str], version: str, durable: bool = True
) -> None:
    """Writes ``arrays`` (checked by :func:`check_dtypes`) as one safetensors file at
    ``path`` (created with the usual permissions, ``0o666`` less the umask, or truncated):
    the tensors' bytes first, in file order, the header last.

    The header has exactly the length it will have once the checksums are known (each is
    8 hex digits), so each tensor is written at its final place right after its checksum
    is computed, and the checksums (one pass over memory, 7 ms per 100 MiB) run while the
    disk writes the tensors before: the disk's writeback of the data starts while it is
    written (:mod:`.writeback`). (A second thread for the checksums was measured: no
    faster, on a loaded machine slower.) The caller ``fsync``-s the file
    (:func:`jobflow._src.io.atomic.write_atomically` does); ``durable=False`` (a caller
    that will not) starts no writeback.
    """
    stored = _file_order({n: _little_endian(a) for n, a in arrays.items()})
    draft = header_bytes(stored, _jobflow_metadata(stored, kinds, version, dict.fromkeys(stored, "0" * 8)))
    sums: dict[str, str] = {}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC | _BINARY, 0o666)
    try:
        _writeback.preallocate(fd, len(draft) + sum(a.nbytes for a in stored.values()))
        writer = _writeback.StreamingWriter(fd, len(draft), sfr=... if durable else None)
        for name, arr in stored.items():
            sums[name] = crc32c(arr)  # while the disk writes the tensors before it
            writer.write(_bytes(arr))
        writer.finish()
        header = header_bytes(stored, _jobflow_metadata(stored, kinds, version, sums))
        if len(header) != len(draft):  # cannot happen: every checksum has 8 hex digits
            raise AssertionError(f"the header grew from {len(draft)} to {len(header)} bytes")
        _writeback.write_at(fd, header, 0)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reading
#
# The reader is jobflow's own (numpy only), so that it can refuse what a hostile file may
# contain before allocating or reading anything: see docs/reliability.md. It accepts
# exactly what safetensors' own validation accepts (a JSON object of tensors whose byte
# ranges tile the data without gaps or overlaps), plus the float8 types numpy lacks.

MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header

_ENTRY_KEYS = ("dtype", "shape", "data_offsets")


@dataclasses.dataclass(frozen=True)
class _Tensor:
    dtype: np.dtype
    shape: tuple
    begin: int  # byte range in the data section
    end: int


@dataclasses.dataclass(frozen=True)
class _Layout:
    header: dict  # the header JSON, validated
    tensors: dict[str, _Tensor]  # in the order of their bytes
    metadata: dict[str, str]
    n: int  # header length
    size: int  # file size


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {label(twice)!r} appears twice")
    return dict(pairs)


def _decode(raw: bytes) -> dict:
    """The header JSON object (no duplicate keys)."""
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"its header is damaged or it is not a safetensors file ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(
            f"its header is damaged or it is not a safetensors file (a JSON {type(header).__name__}, "
            f"not an object)"
        )
    return header


def _metadata(value) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("its __metadata__ is not a JSON object of strings")
    return value


def _tensor(name: str, entry) -> _Tensor:
    """One header entry, checked: a known dtype, a sane shape, offsets that match it."""
    where = f"tensor {label(name)!r}"
    if not isinstance(entry, dict) or any(k not in entry for k in _ENTRY_KEYS):
        raise ValueError(f"{where}: its header entry is not an object with {', '.join(_ENTRY_KEYS)}")
    code = entry["dtype"]
    if not isinstance(code, str) or code not in _DTYPES:
        raise ValueError(f"{where}: unknown dtype {_short(code)} (known: {', '.join(_DTYPES)})")
    dtype = _DTYPES[code]
    problem = shape_problem(entry["shape"], dtype.itemsize)
    if problem:
        raise ValueError(f"{where}: {problem if len(problem) < 200 else problem[:197] + '...'}")
    offsets = entry["data_offsets"]
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise ValueError(
            f"{where}: data_offsets {_short(offsets)} is not [begin, end] with 0 <= begin <= end"
        )
    shape = tuple(entry["shape"])
    nbytes = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise ValueError(
            f"{where}: data_offsets {offsets} span {offsets[1] - offsets[0]} bytes, but shape "
            f"{list(shape)} {code} needs {nbytes}"
        )
    return _Tensor(dtype, shape, offsets[0], offsets[1])


def _tile(tensors: dict[str, _Tensor], n: int, size: int) -> dict[str, _Tensor]:
    """Checks that the byte ranges cover the data exactly; returns them in byte order."""
    expected = 8 + n + max((t.end for t in tensors.values()), default=0)
    if size != expected:
        why = "it is truncated" if size < expected else "it has trailing bytes"
        raise ValueError(f"the file has {size} bytes but its header describes {expected}: {why}")
    ordered = dict(sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)))
    pos = 0
    for name, t in ordered.items():
        if t.begin != pos:
            how = (
                "overlap another tensor's"
                if t.begin < pos
                else f"leave {t.begin - pos} bytes unused before them"
            )
            raise ValueError(f"tensor {label(name)!r}: its bytes [{t.begin}, {t.end}) {how}")
        pos = t.end
    return ordered


def _layout(fd: int) -> _Layout:
    """Reads and checks the header of the open file ``fd``; raises ValueError explaining the damage."""
    size = os.fstat(fd).st_size
    if size < 8:
        raise ValueError(f"the file has {size} bytes; it is truncated (no safetensors header)")
    head = np.empty(8, np.uint8)
    read_exact(fd, 0, head, "the file")
    (n,) = struct.unpack("<Q", head.tobytes())
    if n > MAX_HEADER:
        raise ValueError(
            f"its header length field says {n} bytes, more than the {MAX_HEADER} safetensors "
            f"accepts: it is damaged or not a safetensors file"
        )
    if 8 + n > size:
        raise ValueError(
            f"the file has {size} bytes but its header alone claims {8 + n}: it is truncated "
            f"or not a safetensors file"
        )
    raw = np.empty(n, np.uint8)
    read_exact(fd, 8, raw, "the header")
    header = _decode(raw.tobytes())
    metadata = _metadata(header.get("__metadata__"))
    tensors = {name: _tensor(name, v) for name, v in header.items() if name != "__metadata__"}
    return _Layout(header, _tile(tensors, n, size), metadata, n, size)


def _read_tensor(fd: int, layout: _Layout, name: str) -> np.ndarray:
    """The tensor's bytes as they are in the file (little-endian), in a fresh array."""
    t = layout.tensors[name]
    entry = f"tensor {label(name)!r}"
    arr = empty(t.shape, t.dtype, entry)
    read_exact(fd, 8 + layout.n + t.begin, arr, entry)
    return arr


def _native(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` (read from the little-endian file) in the machine's byte order, in place."""
    if sys.byteorder == "big":
        for arr in arrays.values():
            arr.byteswap(inplace=True)
    return arrays


def _with_layout(path: str, fn):
    """``fn(fd, layout)`` on the regular file ``path``, opened once."""
    fd = open_file(path)
    try:
        return fn(fd, _layout(fd))
    finally:
        os.close(fd)


def _parse_header(path: str) -> tuple[dict, int, int]:
    """``(header JSON, header length, file size)``; raises ValueError explaining the damage."""
    return _with_layout(path, lambda fd, lay: (lay.header, lay.n, lay.size))


def read_header(path: str) -> tuple[dict[str, tuple[tuple, str, int]], dict[str, str]]:
    """``({name: (shape, dtype name, nbytes)}, metadata)`` without reading the data.

    Raises ValueError with an explanation when the header is damaged or does not match
    the file's size.
    """
    layout = _with_layout(path, lambda fd, lay: lay)
    entries = {name: (t.shape, t.dtype.name, t.end - t.begin) for name, t in sorted(layout.tensors.items())}
    return entries, dict(layout.metadata)


def read_kinds(meta: dict[str, str]) -> dict[str, str]:
    """The ``kinds`` metadata entry (empty when absent or unreadable; strings only)."""
    try:
        value = json.loads(meta.get("kinds", "{}"))
    except (ValueError, RecursionError):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def read_some(path: str, names) -> dict[str, np.ndarray]:
    """Reads the named tensors only (names the file lacks are skipped)."""
    wanted = set(names)
    return _with_layout(
        path, lambda fd, lay: _native({n: _read_tensor(fd, lay, n) for n in lay.tensors if n in wanted})
    )


def _json_map(meta: dict, key: str, problems: list) -> dict:
    if key not in meta:
        problems.append(f"the metadata has no {key!r} entry")
        return {}
    try:
        value = json.loads(meta[key])
    except (ValueError, RecursionError) as e:
        problems.append(f"the metadata entry {key!r} is not valid JSON ({e})")
        return {}
    if not isinstance(value, dict):
        problems.append(f"the metadata entry {key!r} is not a JSON object")
        return {}
    return value


def _checksum_problems(
    arrays: dict[str, np.ndarray], meta: dict[str, str], sums_read: dict[str, str]
) -> list[str]:
    """Checks jobflow's metadata and every checksum (nothing for other files);
    ``sums_read``: the arrays' checksums (of the kind the metadata records) as computed
    while reading."""
    problems: list[str] = []
    if meta.get("format") != FORMAT:
        return problems  # a safetensors file from elsewhere: no checksums
    if meta.get("format_version") != VERSION:
        problems.append(
            f"format version {_short(meta.get('format_version'))} is not supported (this jobflow reads {VERSION!r})"
        )
        return problems
    key = _checksum_key(meta)
    what = _CHECKSUMS[key][1]
    sums = _json_map(meta, key, problems)
    for name in sorted(set(sums) - set(arrays)):
        problems.append(f"{label(name)}: listed in the checksums but missing from the file")
    for name in sorted(arrays):
        want = sums.get(name)
        if want is None:
            problems.append(f"{label(name)}: has no checksum")
        elif sums_read[name] != want:
            problems.append(
                f"{label(name)}: checksum mismatch (data corrupted): {what} {sums_read[name]}, "
                f"recorded {_short(want)}"
            )
    return problems


def read(path: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Reads every tensor and verifies its checksum (for files jobflow wrote).

    Returns ``(arrays, problems)``; ``problems`` lists every damaged or missing variable
    (empty when the file is intact). Raises ValueError explaining the damage when the file
    cannot be parsed at all (or is not a regular file).
    """

    arrays, meta, sums = _with_layout(path, _read_all)
    return arrays, value_problems(arrays) + _checksum_problems(arrays, meta, sums)


class _Checksums:
    """Computes ``checksum(array)`` of each array handed to :meth:`add`; on a second thread
    when ``background`` (the ``crc32c`` package and zlib release the GIL for large buffers),
    so that one tensor's checksum is computed while the next is read. Without ``checksum``
    it computes nothing (files of other tools)."""

    def __init__(self, checksum: Callable[[np.ndarray], str] | None, background: bool):
        self.sums: dict[str, str] = {}
        self._checksum = checksum
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = None
        if checksum is not None and background:
            self._thread = threading.Thread(
                target=self._work, name="jobflow-checkpoint-checksums", daemon=True
            )
            self._thread.start()

    def add(self, name: str, arr: np.ndarray) -> None:
        if self._thread is not None:
            self._queue.put((name, arr))
        elif self._checksum is not None:
            self.sums[name] = self._checksum(arr)

    def _work(self) -> None:
        assert self._checksum is not None
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.sums[item[0]] = self._checksum(item[1])
                except BaseException as e:  # re-raised by result()
                    self._error = e

    def result(self) -> dict[str, str]:
        """``{name: checksum}`` of every array added, once all are computed."""
        self.stop()
        if self._error is not None:
            raise self._error
        return self.sums

    def stop(self) -> None:
        """Waits for the thread to end (skipping what is left after an error); idempotent."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def _read_all(fd: int, layout: _Layout) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """``(arrays, metadata, {name: checksum})`` of every tensor. The checksums (jobflow's
    files only) are of the bytes as stored; for large files each is computed on a
    second thread while the next tensor is read."""
    checksum = (
        _CHECKSUMS[_checksum_key(layout.metadata)][0] if layout.metadata.get("format") == FORMAT else None
    )
    sums = _Checksums(checksum, background=layout.size >= _THREAD_MIN)
    arrays: dict[str, np.ndarray] = {}
    try:
        for name in layout.tensors:
            arrays[name] = arr = _read_tensor(fd, layout, name)
            sums.add(name, arr)
        checked = sums.result()  # before the arrays change byte order (big-endian machines)
        return _native(arrays), layout.metadata, checked
    finally:
        sums.stop()

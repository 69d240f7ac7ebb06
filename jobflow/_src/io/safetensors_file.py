"""jobflow's checkpoint file: one safetensors file with a CRC-32 per variable.

The layout is the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
little-endian header length, a JSON header (each tensor's dtype, shape and byte range,
plus a ``__metadata__`` map of strings), then the raw little-endian C-order bytes. Reading
it parses JSON and copies bytes; nothing in it can execute code. jobflow's metadata:

* ``format``: ``"jobflow.checkpoint"``; ``format_version``: ``"1"``; ``jobflow``: the version
  that wrote it;
* ``crc32``: a JSON object ``{name: "8 hex digits"}``, the CRC-32 (zlib) of each tensor's bytes;
* ``kinds``: a JSON object ``{name: "model" | "slot" | "system"}`` for the variables the
  session knew.

Any other safetensors file can be read too (without the checksum verification).

This module needs only numpy and safetensors (no JAX).
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zlib

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

__all__ = [
    "FORMAT",
    "VERSION",
    "write",
    "read",
    "read_header",
    "read_some",
    "read_kinds",
    "check_dtypes",
    "crc32",
]

FORMAT = "jobflow.checkpoint"
VERSION = "1"


def crc32(arr: np.ndarray) -> str:
    """The CRC-32 of the array's C-order bytes, as 8 hex digits."""
    return f"{zlib.crc32(np.ascontiguousarray(arr).reshape(-1).view(np.uint8)):08x}"


def check_dtypes(arrays: dict[str, np.ndarray]) -> list[str]:
    """Problems for arrays safetensors cannot store (strings, objects, structured types)."""
    problems = []
    for name, arr in arrays.items():
        ok = arr.dtype.kind in "biufc" or arr.dtype.type.__module__.startswith("ml_dtypes")
        if not ok:
            problems.append(f"{name}: dtype {arr.dtype} cannot be stored (numbers and booleans only)")
    return problems


def write(path: str, arrays: dict[str, np.ndarray], kinds: dict[str, str], version: str) -> None:
    """Writes ``arrays`` (C-contiguous numpy arrays) as one safetensors file at ``path``."""
    metadata = {
        "format": FORMAT,
        "format_version": VERSION,
        "jobflow": version,
        "crc32": json.dumps({n: crc32(a) for n, a in arrays.items()}, sort_keys=True),
        "kinds": json.dumps({n: k for n, k in kinds.items() if n in arrays}, sort_keys=True),
    }
    with open(path, "wb"):
        pass  # created with the usual permissions (umask); safetensors' own temporary file has 0600
    mode = stat.S_IMODE(os.stat(path).st_mode)
    save_file(arrays, path, metadata=metadata)
    os.chmod(path, mode)


# safetensors dtype codes -> numpy dtype names (for describing a file without reading it)
_DTYPE_NAMES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "F16": "float16",
    "BF16": "bfloat16",
    "U32": "uint32",
    "I32": "int32",
    "F32": "float32",
    "U64": "uint64",
    "I64": "int64",
    "F64": "float64",
    "C64": "complex64",
}


def _parse_header(path: str) -> tuple[dict, int, int]:
    """``(header JSON, header length, file size)``; raises ValueError explaining the damage."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"the file has {size} bytes; it is truncated (no safetensors header)")
        (n,) = struct.unpack("<Q", head)
        if 8 + n > size:
            raise ValueError(
                f"the file has {size} bytes but its header alone claims {8 + n}: it is truncated "
                f"or not a safetensors file"
            )
        try:
            header = json.loads(f.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        except Exception as e:
            raise ValueError(f"its header is damaged or it is not a safetensors file ({e})") from None
    expected = 8 + n + max(ends, default=0)
    if size != expected:
        why = "it is truncated" if size < expected else "it has trailing bytes"
        raise ValueError(f"the file has {size} bytes but its header describes {expected}: {why}")
    return header, n, size


def _damage(path: str, err: Exception) -> str:
    """Explains why safetensors could not open ``path``."""
    try:
        _parse_header(path)
    except ValueError as e:
        return str(e)
    return f"it is damaged ({err})"


def read_header(path: str) -> tuple[dict[str, tuple[tuple, str, int]], dict[str, str]]:
    """``({name: (shape, dtype name, nbytes)}, metadata)`` without reading the data.

    Raises ValueError with an explanation when the header is damaged or does not match
    the file's size.
    """
    header, _, _ = _parse_header(path)
    meta = header.pop("__metadata__", None) or {}
    entries = {}
    for name, v in header.items():
        start, end = v["data_offsets"]
        entries[name] = (tuple(v["shape"]), _DTYPE_NAMES.get(v["dtype"], v["dtype"]), end - start)
    return entries, meta


def read_kinds(meta: dict[str, str]) -> dict[str, str]:
    """The ``kinds`` metadata entry (empty when absent or unreadable)."""
    try:
        value = json.loads(meta.get("kinds", "{}"))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def read_some(path: str, names) -> dict[str, np.ndarray]:
    """Reads the named tensors only."""
    with safe_open(path, framework="numpy") as f:
        return {n: f.get_tensor(n) for n in names}


def _json_map(meta: dict, key: str, problems: list) -> dict:
    if key not in meta:
        problems.append(f"the metadata has no {key!r} entry")
        return {}
    try:
        value = json.loads(meta[key])
    except json.JSONDecodeError as e:
        problems.append(f"the metadata entry {key!r} is not valid JSON ({e})")
        return {}
    if not isinstance(value, dict):
        problems.append(f"the metadata entry {key!r} is not a JSON object")
        return {}
    return value


def read(path: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Reads every tensor and verifies its checksum (for files jobflow wrote).

    Returns ``(arrays, problems)``; ``problems`` lists every damaged or missing variable
    (empty when the file is intact). Raises ValueError explaining the damage when the file
    cannot be parsed at all.
    """
    try:
        with safe_open(path, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as e:
        raise ValueError(_damage(path, e)) from None
    problems: list[str] = []
    if meta.get("format") != FORMAT:
        return arrays, problems  # a safetensors file from elsewhere: no checksums
    if meta.get("format_version") != VERSION:
        problems.append(
            f"format version {meta.get('format_version')!r} is not supported (this jobflow reads {VERSION!r})"
        )
        return arrays, problems
    sums = _json_map(meta, "crc32", problems)
    for name in sorted(set(sums) - set(arrays)):
        problems.append(f"{name}: listed in the checksums but missing from the file")
    for name, arr in sorted(arrays.items()):
        want = sums.get(name)
        if want is None:
            problems.append(f"{name}: has no checksum")
        elif crc32(arr) != want:
            problems.append(
                f"{name}: checksum mismatch (data corrupted): CRC-32 {crc32(arr)}, recorded {want}"
            )
    return arrays, problems

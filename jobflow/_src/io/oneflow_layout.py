"""OneFlow's legacy checkpoint directory (model IO v2, ``check_point_v2.py``).

::

    path/<variable name>/out     raw C-order bytes, native (little) endian, no header
    path/<variable name>/meta    protobuf text of VariableMetaInfo:
                                     shape {
                                       dim: 32
                                       dim: 1
                                     }
                                     data_type: kFloat
    path/snapshot_done           empty file, written last

OneFlow keeps its system variables (``System-Train-TrainStep-<job>``, the loss-scale
state) as shape ``(1,)``, counters as int64. jobflow keeps them as scalars, and JAX stores
int64 as int32 unless ``jax_enable_x64`` is on. :func:`from_oneflow` and
:func:`to_oneflow` convert between the two, exactly (an int64 that does not fit int32 is
an error, never wrapped).

This module needs only numpy (and ml_dtypes for bfloat16).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import ml_dtypes
import numpy as np

from jobflow._src.core.names import SYSTEM_PREFIX

__all__ = [
    "DATA_TYPES",
    "DONE",
    "format_meta",
    "parse_meta",
    "write_dir",
    "var_names",
    "scan_dir",
    "read_var",
    "is_layout",
    "from_oneflow",
    "to_oneflow",
    "check_names",
    "check_dtypes",
]

DONE = "snapshot_done"
DATA = "out"
META = "meta"

# OneFlow's DataType enum (oneflow/core/common/data_type.proto). v0.3/v0.4 define values
# up to kFloat16 = 9; bfloat16 and the rest came with later versions.
DATA_TYPES: dict[str, tuple[int, np.dtype]] = {
    "kChar": (1, np.dtype(np.int8)),
    "kFloat": (2, np.dtype(np.float32)),
    "kDouble": (3, np.dtype(np.float64)),
    "kInt8": (4, np.dtype(np.int8)),
    "kInt32": (5, np.dtype(np.int32)),
    "kInt64": (6, np.dtype(np.int64)),
    "kUInt8": (7, np.dtype(np.uint8)),
    "kFloat16": (9, np.dtype(np.float16)),
    "kBFloat16": (11, np.dtype(ml_dtypes.bfloat16)),
    "kBool": (12, np.dtype(np.bool_)),
    "kUInt16": (13, np.dtype(np.uint16)),
    "kUInt32": (14, np.dtype(np.uint32)),
    "kUInt64": (15, np.dtype(np.uint64)),
    "kInt16": (17, np.dtype(np.int16)),
}
_BY_NUMBER = {num: (name, dt) for name, (num, dt) in DATA_TYPES.items()}
_FOR_DTYPE = {}
for _name, (_num, _dt) in DATA_TYPES.items():
    if _name != "kChar":  # int8 is written as kInt8
        _FOR_DTYPE[_dt] = _name


# ---------------------------------------------------------------------------- meta files


def format_meta(shape: tuple, dtype: np.dtype) -> str:
    """The ``meta`` text OneFlow writes (``text_format.MessageToString``)."""
    dims = "".join(f"  dim: {d}\n" for d in shape)
    return f"shape {{\n{dims}}}\ndata_type: {_FOR_DTYPE[np.dtype(dtype)]}\n"


def _tokens(text: str) -> list[str]:
    text = re.sub(r"#[^\n]*", "", text)  # comments
    return re.findall(r"[A-Za-z_]\w*|-?\d+|[{}<>:\[\],]|\S", text)


def parse_meta(text: str) -> tuple[tuple, np.dtype]:
    """Parses a VariableMetaInfo in protobuf text format: ``(shape, dtype)``.

    Accepts what protobuf's text format allows for this message: ``{}`` or ``<>`` around
    the shape, an optional ``:`` before them, repeated ``dim: n`` or ``dim: [a, b]``, and
    the data type as an enum name or number. Raises ValueError on anything else.
    """
    toks = _tokens(text)
    shape, dtype, i = None, None, 0

    def expect(tok):
        nonlocal i
        if i >= len(toks) or toks[i] != tok:
            raise ValueError(
                f"expected {tok!r} at token {i}, got {toks[i] if i < len(toks) else 'end of text'!r}"
            )
        i += 1

    def integer():
        nonlocal i
        if i >= len(toks) or not re.fullmatch(r"-?\d+", toks[i]):
            raise ValueError(f"expected an integer at token {i}")
        i += 1
        return int(toks[i - 1])

    while i < len(toks):
        field = toks[i]
        i += 1
        if field == "shape":
            if shape is not None:
                raise ValueError("shape given twice")
            if i < len(toks) and toks[i] == ":":
                i += 1
            close = {"{": "}", "<": ">"}.get(toks[i] if i < len(toks) else "")
            if close is None:
                raise ValueError("expected '{' after shape")
            i += 1
            dims = []
            while i < len(toks) and toks[i] != close:
                if toks[i] != "dim":
                    raise ValueError(f"unknown field {toks[i]!r} in shape")
                i += 1
                expect(":")
                if i < len(toks) and toks[i] == "[":
                    i += 1
                    while i < len(toks) and toks[i] != "]":
                        dims.append(integer())
                        if i < len(toks) and toks[i] == ",":
                            i += 1
                    expect("]")
                else:
                    dims.append(integer())
            expect(close)
            if any(d < 0 for d in dims):
                raise ValueError(f"negative dimension in shape {dims}")
            shape = tuple(dims)
        elif field == "data_type":
            if dtype is not None:
                raise ValueError("data_type given twice")
            expect(":")
            tok = toks[i] if i < len(toks) else ""
            i += 1
            if tok in DATA_TYPES:
                dtype = DATA_TYPES[tok][1]
            elif re.fullmatch(r"-?\d+", tok) and int(tok) in _BY_NUMBER:
                dtype = _BY_NUMBER[int(tok)][1]
            else:
                raise ValueError(f"unknown data_type {tok!r} (known: {', '.join(DATA_TYPES)})")
        else:
            raise ValueError(f"unknown field {field!r}")
    if shape is None or dtype is None:
        raise ValueError("shape and data_type are both required")
    return shape, dtype


# ---------------------------------------------------------------------------- directories


def check_names(names) -> list[str]:
    """Problems for names that cannot be a variable directory."""
    problems = []
    for name in names:
        if (
            name in ("", ".", "..", DONE)
            or "/" in name
            or os.sep in name
            or "\0" in name
            or (os.altsep and os.altsep in name)
        ):
            problems.append(f"{name!r}: not usable as a OneFlow variable directory name")
    return problems


def check_dtypes(arrays: dict[str, np.ndarray]) -> list[str]:
    """Problems for arrays whose dtype has no OneFlow DataType."""
    return [
        f"{name}: dtype {arr.dtype} has no OneFlow DataType (known: {', '.join(sorted({str(d) for d in _FOR_DTYPE}))})"
        for name, arr in arrays.items()
        if arr.dtype not in _FOR_DTYPE
    ]


def write_dir(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` in OneFlow's layout into the new directory ``path``."""
    os.makedirs(path)
    for name, arr in arrays.items():
        var_dir = os.path.join(path, name)
        os.makedirs(var_dir)
        with open(os.path.join(var_dir, DATA), "wb") as f:
            f.write(np.ascontiguousarray(arr).tobytes())
        with open(os.path.join(var_dir, META), "w") as f:
            f.write(format_meta(arr.shape, arr.dtype))
    with open(os.path.join(path, DONE), "w"):
        pass  # written last: marks the snapshot complete


def is_layout(path: str) -> bool:
    """Whether ``path`` looks like a OneFlow checkpoint directory."""
    if not os.path.isdir(path):
        return False
    if os.path.exists(os.path.join(path, DONE)):
        return True
    return bool(var_names(path))


def var_names(path: str) -> list[str]:
    """The names of the variables in a OneFlow directory (subdirectories with an ``out``)."""
    return sorted(e for e in os.listdir(path) if os.path.isfile(os.path.join(path, e, DATA)))


def scan_dir(path: str) -> tuple[dict[str, tuple[tuple, np.dtype]], dict[str, int], list[str]]:
    """Reads the ``meta`` files and checks the ``out`` sizes, without reading the data.

    Returns ``(entries, untyped, problems)``: ``entries`` maps each intact variable to its
    ``(shape, dtype)``; ``untyped`` maps the variables that have an ``out`` file but no
    ``meta`` (OneFlow's older writers) to their size in bytes (their shape and dtype must
    come from the variable they are loaded into); ``problems`` lists every damaged
    variable and a missing ``snapshot_done``.
    """
    entries, untyped, problems = {}, {}, []
    if not os.path.exists(os.path.join(path, DONE)):
        problems.append(
            f"no {DONE} file: the save that wrote this directory did not finish (if you are sure it "
            f"is complete, create the empty file {os.path.join(path, DONE)})"
        )
    for name in var_names(path):
        data = os.path.join(path, name, DATA)
        size = os.path.getsize(data)
        meta = os.path.join(path, name, META)
        if not os.path.exists(meta):
            untyped[name] = size
            continue
        try:
            with open(meta) as f:
                shape, dtype = parse_meta(f.read())
        except (ValueError, UnicodeDecodeError) as e:
            problems.append(f"{name}: unreadable meta file ({e})")
            continue
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size != expected:
            problems.append(
                f"{name}: {DATA} has {size} bytes; meta says shape {shape} {dtype.name} = {expected} bytes "
                f"({'truncated' if size < expected else 'trailing bytes'})"
            )
            continue
        entries[name] = (shape, dtype)
    return entries, untyped, problems


def read_var(path: str, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The ``out`` file of variable ``name`` as an array (its size already checked)."""
    return np.fromfile(os.path.join(path, name, DATA), dtype=dtype).reshape(shape)


# ---------------------------------------------------------------------------- conversions


def from_oneflow(
    name: str, arr: np.ndarray, canonical: Callable[[np.dtype], np.dtype]
) -> tuple[np.ndarray, str | None]:
    """OneFlow's value -> jobflow's: ``System-*`` (1,) -> scalar, dtypes to what JAX stores.

    Returns ``(array, problem or None)``; an integer that does not fit the stored dtype is
    a problem (never wrapped). float64 is rounded to float32 when x64 is off, as JAX does.
    """
    if name.startswith(SYSTEM_PREFIX) and arr.shape == (1,):
        arr = arr.reshape(())
    want = np.dtype(canonical(arr.dtype))
    if want == arr.dtype:
        return arr, None
    if arr.dtype.kind in "iu" and arr.size:
        info = np.iinfo(want)
        if arr.min() < info.min or arr.max() > info.max:
            return arr, (
                f"{name}: {arr.dtype.name} values in [{arr.min()}, {arr.max()}] do not fit "
                f"{want.name}, the dtype JAX stores (enable jax_enable_x64 to load them)"
            )
    return arr.astype(want), None


def to_oneflow(name: str, arr: np.ndarray) -> np.ndarray:
    """jobflow's value -> OneFlow's: ``System-*`` scalars -> shape (1,), their int32 -> int64."""
    if name.startswith(SYSTEM_PREFIX) and arr.shape == ():
        arr = arr.reshape((1,))
        if arr.dtype == np.int32:
            arr = arr.astype(np.int64)
    return arr

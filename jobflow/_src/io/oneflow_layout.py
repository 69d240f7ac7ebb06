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

import dataclasses
import math
import os
import re
import stat
import sys
from collections.abc import Callable

import ml_dtypes
import numpy as np

from jobflow._src.core.names import SYSTEM_PREFIX
from jobflow._src.io.safe_files import (
    Unreadable,
    empty,
    kind_of,
    label,
    lkind,
    lstat,
    open_below,
    printable,
    read_capped,
    read_exact,
    shape_problem,
)

__all__ = [
    "DATA_TYPES",
    "DONE",
    "MAX_META",
    "Scan",
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
MAX_META = 64 * 1024  # a real meta has a few dozen bytes

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


class _MetaParser:
    """A recursive-descent parser of VariableMetaInfo's text format (see :func:`parse_meta`)."""

    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str:
        return self.toks[self.i] if self.i < len(self.toks) else ""

    def take(self) -> str:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, tok: str) -> None:
        if self.peek() != tok:
            got = self.peek() if self.i < len(self.toks) else "end of text"
            raise ValueError(f"expected {tok!r} at token {self.i}, got {got!r}")
        self.i += 1

    def integer(self) -> int:
        if not re.fullmatch(r"-?\d+", self.peek()):
            raise ValueError(f"expected an integer at token {self.i}")
        return int(self.take())

    def shape(self) -> tuple:
        if self.peek() == ":":
            self.i += 1
        close = {"{": "}", "<": ">"}.get(self.take())
        if close is None:
            raise ValueError("expected '{' after shape")
        dims = []
        while self.i < len(self.toks) and self.peek() != close:
            if self.take() != "dim":
                raise ValueError(f"unknown field {self.toks[self.i - 1]!r} in shape")
            self.expect(":")
            if self.peek() == "[":
                self.i += 1
                while self.i < len(self.toks) and self.peek() != "]":
                    dims.append(self.integer())
                    if self.peek() == ",":
                        self.i += 1
                self.expect("]")
            else:
                dims.append(self.integer())
        self.expect(close)
        if any(d < 0 for d in dims):
            raise ValueError(f"negative dimension in shape {dims}")
        return tuple(dims)

    def data_type(self) -> np.dtype:
        self.expect(":")
        tok = self.take()
        if tok in DATA_TYPES:
            return DATA_TYPES[tok][1]
        if re.fullmatch(r"-?\d+", tok) and int(tok) in _BY_NUMBER:
            return _BY_NUMBER[int(tok)][1]
        raise ValueError(f"unknown data_type {tok!r} (known: {', '.join(DATA_TYPES)})")


def parse_meta(text: str) -> tuple[tuple, np.dtype]:
    """Parses a VariableMetaInfo in protobuf text format: ``(shape, dtype)``.

    Accepts what protobuf's text format allows for this message: ``{}`` or ``<>`` around
    the shape, an optional ``:`` before them, repeated ``dim: n`` or ``dim: [a, b]``, and
    the data type as an enum name or number. Raises ValueError on anything else, and on
    shapes no array can have (:func:`.safe_files.shape_problem`).
    """
    parser = _MetaParser(text)
    fields: dict = {}
    while parser.i < len(parser.toks):
        field = parser.take()
        if field not in ("shape", "data_type"):
            raise ValueError(f"unknown field {field!r}")
        if field in fields:
            raise ValueError(f"{field} given twice")
        fields[field] = parser.shape() if field == "shape" else parser.data_type()
    if len(fields) != 2:
        raise ValueError("shape and data_type are both required")
    problem = shape_problem(fields["shape"], fields["data_type"].itemsize)
    if problem:
        raise ValueError(problem)
    return fields["shape"], fields["data_type"]


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
    return os.path.lexists(os.path.join(path, DONE)) or bool(var_names(path))


def _entries(path: str) -> list[tuple[str, bool, bool]]:
    """``(name, is a symbolic link, is a directory)`` for each entry of ``path``, sorted."""
    try:
        with os.scandir(path) as it:
            return sorted((e.name, e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in it)
    except OSError as e:
        raise Unreadable(f"the checkpoint directory cannot be listed ({e.strerror})") from None


def var_names(path: str) -> list[str]:
    """The names of the variables in a OneFlow directory: real subdirectories (not links)
    with an ``out`` entry."""
    return [
        name
        for name, link, is_dir in _entries(path)
        if is_dir and not link and lkind(os.path.join(path, name, DATA)) is not None
    ]


@dataclasses.dataclass
class Scan:
    """What :func:`scan_dir` found without reading the data.

    ``names``: every variable the directory lists, damaged ones included; ``entries``:
    each intact variable's ``(shape, dtype)``; ``untyped``: the variables with an ``out``
    but no ``meta`` (OneFlow's older writers) and their size in bytes (their shape and
    dtype must come from the variable they are loaded into); ``problems``: every damaged
    variable, every link, and a missing ``snapshot_done``.
    """

    names: list[str]
    entries: dict[str, tuple[tuple, np.dtype]]
    untyped: dict[str, int]
    problems: list[str]


def _done_problem(path: str) -> str | None:
    kind = lkind(os.path.join(path, DONE))
    if kind is None:
        return (
            f"no {DONE} file: the save that wrote this directory did not finish (if you are sure it "
            f"is complete, create the empty file {os.path.join(path, DONE)})"
        )
    if kind != "a regular file":
        return f"{DONE} is {kind}, not a regular file"
    return None


def _meta(path: str, name: str) -> tuple[tuple, np.dtype] | None:
    """The parsed ``meta`` of ``name`` (None when there is none); ValueError when damaged."""
    if lkind(os.path.join(path, name, META), f"{label(name)}/{META}") is None:
        return None
    fd = open_below(path, [name, META])
    try:
        data = read_capped(fd, MAX_META, f"{label(name)}/{META}")
    finally:
        os.close(fd)
    try:
        return parse_meta(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{label(name)}: unreadable meta file ({printable(str(e), 300)})") from None


def _scan_var(path: str, name: str, scan: Scan) -> None:
    """Adds variable ``name`` (a real directory with an ``out``) to ``scan``."""
    entry = f"{label(name)}/{DATA}"
    st = lstat(os.path.join(path, name, DATA), entry)
    if st is None or not stat.S_ISREG(st.st_mode):
        what = "missing" if st is None else kind_of(st.st_mode)
        scan.problems.append(f"{entry} is {what}; jobflow reads only regular files inside a checkpoint")
        return
    size = st.st_size
    meta = _meta(path, name)
    if meta is None:
        scan.untyped[name] = size
        return
    shape, dtype = meta
    expected = math.prod(shape) * dtype.itemsize
    if size != expected:
        scan.problems.append(
            f"{label(name)}: {DATA} has {size} bytes; meta says shape {shape} {dtype.name} = {expected} bytes "
            f"({'truncated' if size < expected else 'trailing bytes'})"
        )
        return
    scan.entries[name] = meta


def scan_dir(path: str) -> Scan:
    """Reads the ``meta`` files and checks the ``out`` sizes, without reading the data.

    Links inside the directory are refused (each is a problem), as are ``out`` and
    ``meta`` entries that are not regular files and ``meta`` files over
    :data:`MAX_META` bytes.
    """
    scan = Scan([], {}, {}, [])
    problem = _done_problem(path)
    if problem:
        scan.problems.append(problem)
    for name, link, is_dir in _entries(path):
        if link:
            scan.problems.append(
                f"{label(name)} is a symbolic link; jobflow reads only regular files and directories "
                f"inside a checkpoint"
            )
        if not is_dir or link or lkind(os.path.join(path, name, DATA)) is None:
            continue
        scan.names.append(name)
        try:
            _scan_var(path, name, scan)
        except ValueError as e:
            scan.problems.append(str(e))
    return scan


def read_var(path: str, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The ``out`` file of variable ``name`` as an array; ValueError when it is not a
    regular file inside ``path`` or its size is not ``shape`` x ``dtype``."""
    entry = f"{label(name)}/{DATA}"
    fd = open_below(path, [name, DATA])
    try:
        size, expected = os.fstat(fd).st_size, math.prod(shape) * np.dtype(dtype).itemsize
        if size != expected:
            raise Unreadable(f"{entry} has {size} bytes; {expected} expected (it changed?)")
        arr = empty(shape, dtype, entry)
        read_exact(fd, 0, arr, entry)
    finally:
        os.close(fd)
    if sys.byteorder == "big":
        arr.byteswap(inplace=True)  # OneFlow wrote it little-endian
    return arr


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

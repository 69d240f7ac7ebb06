"""Reading a checkpoint's files defensively: regular files only, nothing through a link.

A checkpoint may come from anyone, so its readers (:mod:`.safetensors_file`,
:mod:`.oneflow_layout`) open every file with these rules:

* The checkpoint's own path (the file, or the OneFlow directory) may be a symbolic link:
  the user named it. Below it nothing is followed: every component is opened relative to
  its directory with ``O_NOFOLLOW``, so a link anywhere inside the checkpoint (a variable
  directory, an ``out`` or ``meta`` file) is refused, and cannot be swapped in between a
  check and the read.
* Only regular files are read: files are opened with ``O_NONBLOCK`` (a FIFO cannot block
  the open) and ``fstat``-ed before the first byte is read; FIFOs, devices, sockets and
  directories are refused.
* Reads are bounded: small files (a ``meta``) have a size cap, data is read exactly as
  large as the header says, and a file that ends early is an error, not a short array.
* Shapes are checked before any allocation (:func:`shape_problem`).

Every refusal raises :class:`Unreadable` (a ValueError) whose message names the entry
relative to the checkpoint and says what is wrong; the readers turn it into one problem
of a :class:`~jobflow.errors.CheckpointError`. Standard library and numpy only.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Sequence

import numpy as np

# One read asks for at most this many bytes (Linux reads at most 2 GiB - 4 KiB at once anyway).
_MAX_READ = 1 << 30

__all__ = [
    "MAX_DIMS",
    "MAX_BYTES",
    "Unreadable",
    "kind_of",
    "printable",
    "label",
    "lstat",
    "lkind",
    "open_file",
    "open_below",
    "empty",
    "read_capped",
    "read_exact",
    "shape_problem",
    "value_problems",
]

MAX_DIMS = 32  # numpy 1.x's limit; no checkpoint jobflow writes comes near it
MAX_BYTES = 2**62  # an array's byte size (of its non-zero dimensions) must stay below this

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BASE_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
_DIR_FD = os.open in os.supports_dir_fd and _NOFOLLOW != 0


class Unreadable(ValueError):
    """An entry of a checkpoint jobflow will not or cannot read; the message says why."""


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every non-printable character escaped as ``repr`` does (``\\x1b``,
    ``\\n``, ``\\u200b``), so that names read from a file cannot move the cursor, recolour
    or rewrite a terminal; cut to ``limit`` characters (with ``...``) when given."""
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 3)] + "..."
    return out


def label(name: str) -> str:
    """A name read from a checkpoint as it appears in messages: escaped, at most 200 characters."""
    return printable(name, 200)


def kind_of(mode: int) -> str:
    """``"a regular file"``, ``"a directory"``, ``"a symbolic link"``, ``"a FIFO"``, ..."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def lstat(path: str, entry: str) -> os.stat_result | None:
    """``os.lstat(path)``; None when nothing is there; :class:`Unreadable` on other errors."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise Unreadable(f"{entry} cannot be examined ({e.strerror})") from None


def lkind(path: str, entry: str = "an entry") -> str | None:
    """:func:`kind_of` ``path`` itself (links not followed); None when nothing is there."""
    st = lstat(path, entry)
    return None if st is None else kind_of(st.st_mode)


def _refuse(entry: str, what: str) -> Unreadable:
    return Unreadable(
        f"{entry} is {what}; jobflow reads only regular files and directories inside a checkpoint"
    )


def _open_one(name: str, entry: str, *, dir_fd, follow: bool, directory: bool) -> int:
    """Opens ``name`` (relative to ``dir_fd``) and checks its type; ``entry`` names it in errors."""
    flags = _BASE_FLAGS | (0 if follow else _NOFOLLOW) | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as e:
        if not follow and e.errno in (errno.ELOOP, errno.EMLINK):
            raise _refuse(entry, "a symbolic link") from None
        if e.errno == errno.ENOTDIR and directory:
            raise _refuse(entry, "not a directory") from None
        if e.errno == errno.ENOENT:
            raise Unreadable(f"{entry} does not exist (it was removed while being read?)") from None
        raise Unreadable(f"{entry} cannot be opened ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)):
        os.close(fd)
        raise _refuse(entry, kind_of(mode))
    return fd


def open_file(path: str, entry: str = "the checkpoint file") -> int:
    """A read-only descriptor of the regular file ``path`` (a link at ``path`` itself is followed)."""
    return _open_one(path, entry, dir_fd=None, follow=True, directory=False)


def open_below(root: str, parts: Sequence[str]) -> int:
    """A read-only descriptor of the regular file ``root/parts[0]/.../parts[-1]``.

    ``root`` may be a link; no component below it is followed (``O_NOFOLLOW`` on each,
    opened relative to its parent). Where the system has no ``dir_fd`` support (Windows),
    each component is ``lstat``-ed instead.
    """
    if not _DIR_FD:
        return _open_below_by_path(root, parts)
    fd = _open_one(root, "the checkpoint directory", dir_fd=None, follow=True, directory=True)
    try:
        for i, part in enumerate(parts):
            entry = "/".join(parts[: i + 1])
            last = i == len(parts) - 1
            new = _open_one(part, entry, dir_fd=fd, follow=False, directory=not last)
            os.close(fd)
            fd = new
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_below_by_path(root: str, parts: Sequence[str]) -> int:
    path = root
    for i, part in enumerate(parts):
        path = os.path.join(path, part)
        kind = lkind(path)
        want = "a regular file" if i == len(parts) - 1 else "a directory"
        if kind != want:
            raise _refuse("/".join(parts[: i + 1]), kind or "missing")
    return _open_one(path, "/".join(parts), dir_fd=None, follow=False, directory=False)


def read_capped(fd: int, limit: int, entry: str) -> bytes:
    """The whole content of ``fd``, refusing files larger than ``limit`` bytes."""
    size = os.fstat(fd).st_size
    if size > limit:
        raise Unreadable(f"{entry} has {size} bytes; at most {limit} are accepted")
    try:
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise Unreadable(f"{entry} cannot be read ({e.strerror})") from None
    if len(data) > limit:
        raise Unreadable(f"{entry} grew beyond {limit} bytes while being read")
    return data


def empty(shape: tuple, dtype: np.dtype, entry: str) -> np.ndarray:
    """``np.empty(shape, dtype)``, or :class:`Unreadable` when memory cannot hold it."""
    try:
        return np.empty(shape, dtype)
    except (MemoryError, ValueError) as e:
        raise Unreadable(f"{entry} cannot be held in memory ({e})") from None


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """One positional read into ``view`` (``os.preadv`` where the platform has it)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


def read_exact(fd: int, offset: int, out: np.ndarray, entry: str) -> None:
    """Fills the C-contiguous array ``out`` with the bytes of ``fd`` from ``offset``
    (positional reads straight into ``out``: the file offset of ``fd`` is left alone)."""
    view = out.reshape(-1).view(np.uint8).data  # a memoryview of out's bytes
    done = 0
    try:
        while done < len(view):
            n = _pread_into(fd, view[done : done + _MAX_READ], offset + done)
            if not n:
                break
            done += n
    except OSError as e:
        raise Unreadable(f"{entry} cannot be read ({e.strerror})") from None
    if done < len(view):
        raise Unreadable(
            f"{entry} ended after {offset + done} bytes; {offset + len(view)} expected "
            f"(it was truncated while being read?)"
        )


def shape_problem(shape, itemsize: int) -> str | None:
    """Why ``shape`` cannot be an array's shape (None when it can): a list of at most
    :data:`MAX_DIMS` ints >= 0 whose non-zero product times ``itemsize`` stays below
    :data:`MAX_BYTES` (so numpy can represent it, whatever the file's size)."""
    if not isinstance(shape, (list, tuple)):
        return f"shape {shape!r} is not a list"
    if len(shape) > MAX_DIMS:
        return f"shape has {len(shape)} dimensions; at most {MAX_DIMS} are accepted"
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return f"shape {list(shape)!r} is not a list of integers >= 0"
    if math.prod(d for d in shape if d) * itemsize >= MAX_BYTES:
        return f"shape {list(shape)} is absurdly large"
    return None


def value_problems(arrays: dict[str, np.ndarray]) -> list[str]:
    """Values no writer produces: booleans stored as bytes other than 0 and 1."""
    return [
        f"{label(name)}: booleans stored as bytes other than 0 and 1"
        for name, arr in arrays.items()
        if arr.dtype == np.bool_ and arr.size and arr.view(np.uint8).max() > 1
    ]

"""Atomic replacement of a file or directory on a local file system.

:func:`write_atomically` gives this guarantee: whenever the writing process stops
(exception, crash, ``SIGKILL``, power loss after the call returned), ``path`` holds either
the complete previous content or the complete new content, never a mix and never a
partial write. How:

1. The new content is written as ``payload`` inside a private staging directory, a hidden
   sibling ``.<name>.tmp-<pid>-<token>`` of ``path`` (same directory, so the final rename
   never crosses file systems; anything a writer leaves beside its output stays in there),
   then every file and directory of it is ``fsync``-ed. (A writer may start the disk's
   writeback early, as the checkpoint writer does with ``sync_file_range``, so that these
   ``fsync``-s have less left to do; the durability is still theirs.)
2. ``payload`` is moved into place with one atomic system call:

   * ``path`` absent, or a file replaced by a file, or an empty directory replaced by a
     directory: ``rename(2)`` (``os.replace``), atomic by POSIX.
   * anything else (a non-empty directory, or a file replaced by a directory or back):
     Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two names atomically; the old
     content then sits in the staging directory, which is deleted.
   * where ``RENAME_EXCHANGE`` is not available (macOS, some network file systems), the
     old content is renamed aside to ``.<name>.old-<pid>-<token>`` first. A stop between
     the two renames leaves ``path`` absent and the complete previous content aside;
     :func:`recover` (run by every later save and read of ``path``) renames it back.

3. The parent directory is ``fsync``-ed so the rename itself is durable.

Leftover temporary names of processes that no longer exist are removed by later saves.
The guarantee assumes one writer per path at a time.

This module uses only the standard library, so it can be imported (and killed) cheaply.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable

__all__ = ["write_atomically", "recover", "remove_stale", "tidy", "delete", "is_occupied", "exchange"]

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


def _temp_path(path: str, kind: str) -> str:
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would kill it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _fsync(path: str) -> None:
    if os.name == "nt" and os.path.isdir(path):
        return  # directories cannot be opened on Windows
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: str) -> None:
    """fsyncs every file and directory under ``path`` (children before parents)."""
    if os.path.isdir(path):
        for root, _dirs, files in os.walk(path, topdown=False):
            for f in files:
                _fsync(os.path.join(root, f))
            _fsync(root)
    else:
        _fsync(path)


def _temps_in(directory: str) -> list[tuple[str, str, str, int]]:
    """``(temp path, target path, kind, pid)`` for every temporary name in ``directory``."""
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for entry in sorted(entries):
        m = _TEMP.match(entry)
        if m:
            out.append(
                (os.path.join(directory, entry), os.path.join(directory, m["name"]), m["kind"], int(m["pid"]))
            )
    return out


def recover(path: str) -> bool:
    """Puts back the previous content of ``path`` if a replacement was interrupted
    between its two renames (only possible without ``RENAME_EXCHANGE``).

    Returns whether something was restored.
    """
    path = os.path.abspath(path)
    if os.path.lexists(path):
        return False
    for temp, target, kind, pid in _temps_in(os.path.dirname(path)):
        if target == path and kind == "old" and not _alive(pid):
            os.rename(temp, path)
            _fsync(os.path.dirname(path))
            return True
    return False


def remove_stale(path: str) -> None:
    """Deletes temporary siblings of ``path`` left by processes that no longer exist."""
    path = os.path.abspath(path)
    for temp, target, _kind, pid in _temps_in(os.path.dirname(path)):
        if target == path and not _alive(pid):
            _remove(temp)


def tidy(directory: str) -> None:
    """:func:`recover` then :func:`remove_stale` for every name in ``directory``."""
    directory = os.path.abspath(directory)
    for target in sorted({t for _, t, _, _ in _temps_in(directory)}):
        recover(target)
        remove_stale(target)


def delete(path: str) -> None:
    """Deletes a file or directory so that no partly deleted copy is ever visible under
    ``path``: it is renamed to a temporary name first (a stop midway leaves a stale
    temporary name that :func:`tidy` removes)."""
    path = os.path.abspath(path)
    tmp = _temp_path(path, "tmp")
    os.rename(path, tmp)
    _fsync(os.path.dirname(path))
    _remove(tmp)


def is_occupied(path: str) -> bool:
    """Whether ``path`` holds something a save would replace (an empty directory does not)."""
    if os.path.isdir(path) and not os.path.islink(path):
        return bool(os.listdir(path))
    return os.path.lexists(path)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: str, b: str) -> bool:
    """Atomically swaps the names ``a`` and ``b`` (Linux ``renameat2``).

    Returns False where the system or the file system does not support it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), a, None, b)


def _replace(tmp: str, path: str) -> None:
    """Moves ``tmp`` to ``path`` atomically, replacing whatever is at ``path``."""
    tmp_is_dir = os.path.isdir(tmp)
    old_is_dir = os.path.isdir(path) and not os.path.islink(path)
    if not os.path.lexists(path) or (tmp_is_dir == old_is_dir and not (old_is_dir and os.listdir(path))):
        os.replace(tmp, path)  # rename(2): atomic
        return
    if exchange(tmp, path):
        return  # the old content is now at tmp, inside the staging directory
    aside = _temp_path(path, "old")
    os.rename(path, aside)
    try:
        os.rename(tmp, path)  # a stop between these two renames is undone by recover(path)
    except BaseException:
        os.rename(aside, path)
        raise
    _remove(aside)


def write_atomically(path, write: Callable[[str], None], *, overwrite: bool, durable: bool = True) -> str:
    """Creates ``path`` with ``write(temp_path)`` and moves it into place atomically.

    Args:
      path: the file or directory to create or replace; its parent is created if needed.
      write: writes the complete new content (a file or a directory) at the path it is
        given, which does not exist yet (in a private staging directory).
      overwrite: whether existing content at ``path`` may be replaced. An empty directory
        counts as nothing. Checked before anything is written.
      durable: ``fsync`` the new content before the rename and the parent after it (the
        module's guarantee, power loss included). False skips both: the replacement is
        still atomic for the processes of this machine and against a crash or kill of
        the writer, but after a power loss or an OS crash ``path`` may hold the previous
        content, the new one, or new content that was not completely on disk.

    Returns:
      the absolute path written.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    recover(path)
    if not overwrite and is_occupied(path):
        raise FileExistsError(
            f"{path!r} already exists; pass overwrite=True to replace it atomically, or choose another path"
        )
    remove_stale(path)
    staging = _temp_path(path, "tmp")
    os.mkdir(staging)
    try:
        payload = os.path.join(staging, "payload")
        write(payload)
        if durable:
            _fsync_tree(staging)
        _replace(payload, path)
        if durable:
            _fsync(parent)
    finally:
        _remove(staging)
    return path

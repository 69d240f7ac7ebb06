"""Writing a large file whose disk writeback runs while it is being written.

A durable save ends with ``fsync``, which waits until the kernel has written every dirty
page of the file to the disk. Written in one go and synced at the end, a file costs the
copy into the page cache *plus* the whole writeback. :class:`StreamingWriter` starts the
writeback of each window of bytes as soon as it is written (Linux
``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which queues the I/O and returns), so the
disk works while the next window is copied and the final ``fsync`` has little left to do.
It also bounds the dirty memory a save leaves behind: once more than ``limit`` bytes are
queued, it waits for the oldest window
(``SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER``) before writing more.

``sync_file_range`` makes nothing durable by itself (it does not flush the disk's cache
or the file's metadata): the caller still ``fsync``-s the file, and the guarantee is
``fsync``'s. Where the call does not exist (not Linux, a libc without it) or the file
system refuses it, the writer just writes, and ``fsync`` does all the writeback.

:func:`preallocate` reserves the file's final size first (Linux ``fallocate``), so the
file system allocates its blocks in one extent instead of window by window during the
writeback; where it is not supported nothing is reserved (``posix_fallocate``'s emulation,
which writes every block, is never used).

Standard library only.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import os
import sys

__all__ = ["WINDOW", "LIMIT", "StreamingWriter", "preallocate", "sync_file_range", "write_at"]

WINDOW = 8 * 2**20  # bytes written between two starts of the writeback
LIMIT = 32 * 2**20  # queued bytes beyond which the writer waits for the oldest window

_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4  # SYNC_FILE_RANGE_* (linux/fs.h)


@functools.cache
def _libc_function(name: str, argtypes: tuple):
    """``libc.<name>`` with ``argtypes`` (returning int, errno kept), or None where the
    system is not 64-bit Linux or its libc lacks the function."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


def sync_file_range():
    """Linux ``sync_file_range(fd, offset, nbytes, flags)`` through ctypes, or None."""
    return _libc_function("sync_file_range", (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint))


def preallocate(fd: int, size: int) -> bool:
    """Reserves ``size`` bytes for the open file ``fd`` (Linux ``fallocate``, mode 0: the
    file's size becomes at least ``size``). Returns whether it did; False where the
    system or the file system does not support it (nothing changed then)."""
    fn = _libc_function("fallocate", (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64))
    return size > 0 and fn is not None and fn(fd, 0, 0, size) == 0


def write_at(fd: int, data, offset: int) -> int:
    """Writes all of ``data`` (a bytes-like object) into ``fd`` at ``offset`` (``pwrite``
    until done); returns the number of bytes written."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(f"pwrite wrote {n} of {len(view) - done} bytes at offset {offset + done}")
        done += n
    return done


class StreamingWriter:
    """Writes byte buffers one after another into the open file ``fd`` from ``offset``,
    starting the disk writeback of every ``window`` bytes written and keeping at most
    ``limit`` bytes queued for it (see the module docstring).

    ``sfr``: the ``sync_file_range`` function to use (default: the system's, None where
    absent); None, or a call that fails, leaves plain writes (the first failure turns
    the early writeback off for this file; a real I/O error shows in the ``fsync``).
    """

    def __init__(self, fd: int, offset: int = 0, *, window: int = WINDOW, limit: int = LIMIT, sfr=...):
        if window < 1 or limit < 0:
            raise ValueError(f"StreamingWriter(window, limit) must be >= 1 and >= 0; got {window}, {limit}")
        self.fd, self.offset, self.window, self.limit = fd, offset, window, limit
        self._sfr = sync_file_range() if sfr is ... else sfr
        self._started = offset  # the writeback is started (or waited for) before this offset
        self._queued: collections.deque[tuple[int, int]] = collections.deque()  # (offset, nbytes)

    @property
    def early_writeback(self) -> bool:
        """Whether the writeback is still started early (False: plain writes)."""
        return self._sfr is not None

    def write(self, data) -> None:
        """Writes all of ``data`` (a bytes-like object) at the current offset."""
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            piece = view[done : done + self.window - (self.offset - self._started)]
            n = write_at(self.fd, piece, self.offset)
            done += n
            self.offset += n
            if self.offset - self._started >= self.window:
                self._start_writeback()

    def finish(self) -> None:
        """Starts the writeback of what is left (the caller's ``fsync`` waits for all)."""
        if self.offset > self._started:
            self._start_writeback()

    def _call(self, begin: int, nbytes: int, flags: int) -> None:
        if self._sfr is not None and self._sfr(self.fd, begin, nbytes, flags) != 0:
            self._sfr = None  # not supported here (or failing): fsync will do it all

    def _start_writeback(self) -> None:
        begin, nbytes = self._started, self.offset - self._started
        self._started = self.offset
        if self._sfr is None:
            return
        self._call(begin, nbytes, _WRITE)
        self._queued.append((begin, nbytes))
        while self._queued and self.offset - self._queued[0][0] > self.limit:
            self._call(*self._queued.popleft(), _WAIT_BEFORE | _WRITE | _WAIT_AFTER)

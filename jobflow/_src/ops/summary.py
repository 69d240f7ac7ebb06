"""``flow.summary``: TensorBoard event files written from jobs.

Two ways values reach a log directory:

* OneFlow's in-job ops (``create_summary_writer``, ``scalar``, ``histogram``, ``image``,
  ``pb``, ``flush_summary_writer``) with OneFlow's names and arguments. Each value leaves
  the compiled step through a host callback (``jax.debug.callback``, as ``flow.watch``
  does): it works unchanged inside ``jax.value_and_grad`` and needs no extra program
  output (gradient accumulation writes once per micro-batch, the mirrored view once per
  device). The callback runs on the host
  while the step runs; keep such ops out of the fastest loops (a device-to-host copy and
  a Python call per op and step).
* ``function_config().summary(logdir, every_n_steps)``: a train job's per-step scalars
  (``job.last_info``) are written by the runtime from the step's packed info output, with
  no op in the body and no device sync (``runtime/info_summary.py``).

Files are written with tensorboardX's ``EventsWriter`` (TensorBoard's event protocol
buffers in TFRecord framing; ``crc32c`` computes the checksums natively). Writes are
synchronous and buffered in the process (no writer thread): one event per step costs
about 20 microseconds. Files are flushed by ``flush_summary_writer()``,
``flow.sync_default_session()`` and at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import TYPE_CHECKING

import jax
import numpy as np

from jobflow._src.core import trace as _trace

if TYPE_CHECKING:
    from tensorboardX.proto.summary_pb2 import Summary

# tensorboardX is imported when the first event file opens or the first summary is made,
# not with jobflow: its package imports torch (about 1.5 s) when torch is installed.

__all__ = [
    "EventFile",
    "open_event_file",
    "add_flush_hook",
    "remove_flush_hook",
    "flush_all",
    "close_all",
    "create_summary_writer",
    "flush_summary_writer",
    "scalar",
    "histogram",
    "image",
    "pb",
    "scalar_summary",
]

_lock = threading.Lock()
_files: list[EventFile] = []  # every open file, flushed together
_default: EventFile | None = None  # the writer of create_summary_writer
_flush_hooks: list = []  # callables run before a flush (the runtime's pending step infos)


class EventFile:
    """One TensorBoard event file in ``logdir`` (``events.out.tfevents.<time>.<host><suffix>``)."""

    def __init__(self, logdir: str, suffix: str = ""):
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        from tensorboardX.event_file_writer import EventsWriter

        self._writer = EventsWriter(os.path.join(self.logdir, "events"), suffix)
        self._lock = threading.Lock()
        self.closed = False

    @property
    def path(self) -> str:
        return self._writer._file_name

    def write(self, summary: Summary, step: int, wall_time: float | None = None) -> None:
        """Appends one event holding ``summary`` at ``step``."""
        from tensorboardX.proto.event_pb2 import Event

        event = Event(wall_time=time.time() if wall_time is None else wall_time, step=int(step))
        event.summary.CopyFrom(summary)
        with self._lock:
            if not self.closed:
                self._writer.write_event(event)

    def scalars(self, step: int, values: dict, wall_time: float | None = None) -> None:
        """Appends one event with a scalar per ``{tag: number}`` item at ``step``."""
        self.write(scalar_summary(values), step, wall_time)

    def flush(self) -> None:
        with self._lock:
            if not self.closed:
                self._writer.flush()

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self._writer.close()
                self.closed = True


def scalar_summary(values: dict) -> Summary:
    """A ``Summary`` with one ``simple_value`` per ``{tag: number}`` item (TensorBoard's scalars)."""
    from tensorboardX.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=t, simple_value=float(v)) for t, v in values.items()])


def open_event_file(logdir, suffix: str = "") -> EventFile:
    """A new event file in ``logdir``, flushed by :func:`flush_all` and closed at exit."""
    if not isinstance(logdir, (str, os.PathLike)) or not os.fspath(logdir):
        raise TypeError(f"summary logdir must be a non-empty path; got {logdir!r}")
    f = EventFile(os.fspath(logdir), suffix)
    with _lock:
        _files.append(f)
    return f


def add_flush_hook(hook) -> None:
    """Runs ``hook()`` first whenever :func:`flush_all` runs (writes what is pending)."""
    with _lock:
        _flush_hooks.append(hook)


def remove_flush_hook(hook) -> None:
    with _lock:
        if hook in _flush_hooks:
            _flush_hooks.remove(hook)


def flush_all() -> None:
    """Writes every pending value and flushes every open event file to disk."""
    for hook in list(_flush_hooks):
        hook()
    _flush_files()


def close_all() -> None:
    """Flushes and closes every event file (at interpreter exit)."""
    flush_all()
    for f in list(_files):
        f.close()
    with _lock:
        _files.clear()


atexit.register(close_all)


# ------------------------------------------------------------------- OneFlow's in-job ops


def create_summary_writer(logdir, name=None) -> None:
    """Opens the summary writer the other ops write to (OneFlow: an op of a job such as
    ``CreateWriter``). Here it opens when it runs on the host (in a job body: when the job
    is traced); called again with the same ``logdir`` it keeps the open writer."""
    global _default
    path = os.path.abspath(os.fspath(logdir)) if isinstance(logdir, (str, os.PathLike)) else logdir
    if _default is not None and not _default.closed and _default.logdir == path:
        return
    _default = open_event_file(path)


def flush_summary_writer(name=None) -> None:
    """Writes pending values to disk (in a job: each time the job runs).

    Outside a job it also writes the steps a ``function_config().summary`` job still
    keeps; inside one it only flushes the files (waiting there for kept steps could wait
    for the very step that runs the flush)."""
    if _trace.current() is None:
        flush_all()
    else:
        jax.debug.callback(_flush_files)


def _flush_files() -> None:
    for f in list(_files):
        f.flush()


def _writer(op: str) -> EventFile:
    if _default is None or _default.closed:
        raise RuntimeError(
            f"flow.summary.{op} needs a summary writer; call "
            f"flow.summary.create_summary_writer(logdir) first (in a job or outside one)"
        )
    return _default


def _tag_text(tag, op: str) -> str:
    """A tag given as a string or as OneFlow's int8 array of characters."""
    if isinstance(tag, str):
        return tag
    arr = np.asarray(tag)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"flow.summary.{op}(tag) must be a string or an int8 array of characters; got {tag!r}"
        )
    return arr.astype(np.uint8).tobytes().rstrip(b"\0").decode("utf-8", "replace")


def _step_int(step, op: str) -> int:
    arr = np.asarray(step)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise TypeError(f"flow.summary.{op}(step) must be one integer; got {step!r}")
    return int(arr.reshape(()))


def _emit(op: str, write, value, step, tag) -> None:
    """Runs ``write(file, value, step, tag)`` on the host: now outside a job, else each
    time the compiled job runs (a host callback). ``step`` and ``tag`` may be traced."""
    f = _writer(op)
    if isinstance(tag, str):
        tag_arg = None
    else:
        _check_tag_array(tag, op)
        tag_arg = tag

    def host(value, step, tag_arr):
        write(f, np.asarray(value), _step_int(step, op), _tag_text(tag if tag_arr is None else tag_arr, op))

    if step is None:
        step = 0
    if _trace.current() is None:
        host(value, step, tag_arg)
    else:
        jax.debug.callback(host, value, step, tag_arg)


def _check_tag_array(tag, op):
    dtype = getattr(tag, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in "iu":
        raise TypeError(
            f"flow.summary.{op}(tag) must be a string or an int8 array of characters; got {tag!r}"
        )


def scalar(value, step, tag, name=None) -> None:
    """Writes ``value`` (one number) as scalar ``tag`` at ``step`` (one integer).

    OneFlow's arguments: ``value`` a blob with one value, ``step`` an int64 blob, ``tag``
    an int8 blob of characters (``np.frombuffer(b"loss", np.int8)``); a string tag works too.
    """

    if np.size(value) != 1:
        raise ValueError(f"flow.summary.scalar(value) must hold one number; got shape {np.shape(value)}")

    def write(f, v, s, t):
        f.scalars(s, {t: v.reshape(())})

    _emit("scalar", write, value, step, tag)


def histogram(value, step, tag, name=None) -> None:
    """Writes a histogram of every element of ``value`` as ``tag`` at ``step``."""

    def write(f, v, s, t):
        from tensorboardX import summary as _tbx_summary

        v = v.astype(np.float64).ravel()
        f.write(_tbx_summary.histogram(t, v[np.isfinite(v)], "auto"), s)

    _emit("histogram", write, value, step, tag)


def image(value, step=None, tag=None, name=None) -> None:
    """Writes ``value`` (uint8, ``(N, H, W, C)`` or ``(H, W, C)``, C in 1, 3, 4) as
    images ``tag`` (default ``"image"``) at ``step``. Needs Pillow (PNG encoding)."""

    shape = np.shape(value)
    if len(shape) not in (3, 4) or shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"flow.summary.image(value) must be (N, H, W, C) with C in 1, 3, 4; got shape {shape}"
        )

    def write(f, v, s, t):
        from tensorboardX import summary as _tbx_summary

        images = v[None] if v.ndim == 3 else v
        for i, img in enumerate(images):
            f.write(_tbx_summary.image(t if len(images) == 1 else f"{t}/{i}", img, dataformats="HWC"), s)

    _emit("image", write, value, step, "image" if tag is None else tag)


def pb(value, step=None, name=None) -> None:
    """Writes a serialized TensorBoard ``Summary`` protocol buffer (int8 bytes) at ``step``."""

    def write(f, v, s, _):
        from tensorboardX.proto.summary_pb2 import Summary

        f.write(Summary.FromString(v.astype(np.uint8).tobytes()), s)

    _emit("pb", write, value, step, "")

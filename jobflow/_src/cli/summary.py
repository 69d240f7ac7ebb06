"""``jobflow summary LOGDIR``: the scalar curves of TensorBoard event files, in the terminal.

For machines without a browser: every scalar tag found in ``LOGDIR`` (searched
recursively; each folder holding event files is a run) is one row of a table with its
number of points, step range, first / last / min / max value and a sparkline of the
curve. ``--tag`` keeps tags containing any of the given strings.

The event files are read with :func:`read_events`, a small reader of the TFRecord
framing (length, masked CRC-32C of the length, the record, masked CRC-32C of the record;
the checksums are verified) that parses each record as TensorBoard's ``Event`` protocol
buffer (tensorboardX's copy of the ``.proto``). A file cut short by a writer still
running ends the read of that file quietly; a checksum that does not match is an error.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator

import numpy as np

from jobflow._src.cli.schedule import sparkline

__all__ = ["add_arguments", "run", "read_events", "read_scalars", "event_files", "EventFileError"]


class EventFileError(ValueError):
    """An event file whose framing or checksums are wrong."""


def _masked_crc(data: bytes) -> int:
    from tensorboardX.crc32c import crc32c

    crc = crc32c(data) & 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file, checksums verified."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return  # end of file (or a record still being written)
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if _masked_crc(header[:8]) != crc:
                raise EventFileError(f"{path}: corrupt record length at byte {f.tell() - 12}")
            body = f.read(length + 4)
            if len(body) < length + 4:
                return
            if _masked_crc(body[:length]) != struct.unpack("<I", body[length:])[0]:
                raise EventFileError(f"{path}: corrupt record at byte {f.tell() - length - 4}")
            yield body[:length]


def read_events(path: str) -> Iterator:
    """TensorBoard ``Event`` protocol buffers of one event file, in file order."""
    from tensorboardX.proto.event_pb2 import Event

    for record in _records(path):
        yield Event.FromString(record)


def event_files(logdir: str) -> dict[str, list[str]]:
    """``{run (folder relative to logdir): [event files, sorted]}`` under ``logdir``."""
    runs: dict[str, list[str]] = {}
    for folder, _, files in sorted(os.walk(logdir)):
        found = sorted(os.path.join(folder, n) for n in files if "tfevents" in n)
        if found:
            runs[os.path.relpath(folder, logdir)] = found
    return runs


def read_scalars(logdir: str) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """``{(run, tag): (steps, values)}`` of every scalar (``simple_value``) under
    ``logdir``, sorted by step (stable: equal steps keep the order they were written)."""
    points: dict[tuple[str, str], list] = {}
    for run, files in event_files(logdir).items():
        for path in files:
            for event in read_events(path):
                for value in event.summary.value:
                    if value.WhichOneof("value") == "simple_value":
                        points.setdefault((run, value.tag), []).append((event.step, value.simple_value))
    out = {}
    for key, pts in points.items():
        steps = np.array([p[0] for p in pts], np.int64)
        order = np.argsort(steps, kind="stable")
        out[key] = (steps[order], np.array([p[1] for p in pts], np.float64)[order])
    return out


def add_arguments(parser) -> None:
    parser.add_argument("logdir", help="a directory of TensorBoard event files (searched recursively)")
    parser.add_argument("--tag", nargs="+", help="show only tags containing one of these strings")
    parser.add_argument("--width", type=int, default=40, help="sparkline width in characters (default 40)")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _row(run: str, tag: str, steps: np.ndarray, values: np.ndarray, width: int) -> list[str]:
    finite = values[np.isfinite(values)]
    lo, hi = (_fmt(finite.min()), _fmt(finite.max())) if finite.size else ("", "")
    return [
        tag if run == "." else f"{run}: {tag}",
        str(len(values)),
        f"{steps[0]}..{steps[-1]}",
        _fmt(values[0]),
        _fmt(values[-1]),
        lo,
        hi,
        sparkline(np.where(np.isfinite(values), values, finite.min() if finite.size else 0.0), width),
    ]


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    if not os.path.isdir(args.logdir):
        console.print(f"[red]jobflow summary: {args.logdir!r} is not a directory[/red]")
        return 2
    if args.width < 1:
        console.print(f"[red]jobflow summary: --width must be >= 1; got {args.width}[/red]")
        return 2
    scalars = read_scalars(args.logdir)
    if args.tag:
        scalars = {k: v for k, v in scalars.items() if any(t in k[1] for t in args.tag)}
    if not scalars:
        console.print(f"no scalars in event files under {args.logdir}")
        return 1
    table = Table(title=f"scalars in {args.logdir}", title_justify="left")
    for col in ("tag", "points", "steps", "first", "last", "min", "max", "curve"):
        table.add_column(col, justify="left" if col in ("tag", "steps", "curve") else "right", no_wrap=True)
    for (run_name, tag), (steps, values) in sorted(scalars.items()):
        table.add_row(*_row(run_name, tag, steps, values, args.width))
    console.print(table)
    return 0

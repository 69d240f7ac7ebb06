"""Writing a checkpoint in either format, atomically (numpy, ml_dtypes, crc32c and the
standard library only: no JAX, so a process doing nothing but this starts in a fraction of
a second).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import numpy as np

from jobflow._src.core.errors import CheckpointError
from jobflow._src.io import atomic as _atomic
from jobflow._src.io import oneflow_layout as _of
from jobflow._src.io import safetensors_file as _sf

__all__ = ["FORMATS", "MODEL_FILE", "CheckpointError", "names_a_file", "prepare", "write"]

FORMATS = ("jobflow", "oneflow")

# The one file of a jobflow checkpoint directory.
MODEL_FILE = "model.safetensors"


def names_a_file(path: str) -> bool:
    """Whether a jobflow checkpoint at ``path`` is a single file: ``path`` ends with
    ``.safetensors``. Any other path is a directory holding :data:`MODEL_FILE`."""
    return os.fspath(path).lower().endswith(".safetensors")


def _in_directory(write_file: Callable[[str], None], target: str) -> None:
    """Creates the directory ``target`` and writes ``target/model.safetensors`` in it."""
    os.mkdir(target)
    write_file(os.path.join(target, MODEL_FILE))


def prepare(
    path: str,
    arrays: dict[str, np.ndarray],
    *,
    kinds: dict[str, str],
    format: str,
    version: str,
    problems: tuple[str, ...] = (),
    durable: bool = True,
) -> Callable[[str], None]:
    """Checks that every array can be stored in ``format``; returns ``writer(target)``,
    which writes them at ``target`` (for :func:`jobflow._atomic.write_atomically`): for
    the jobflow format a directory holding ``model.safetensors``, or that file itself
    when ``path`` ends with ``.safetensors`` (:func:`names_a_file`).

    ``arrays`` are C-contiguous host arrays in jobflow's representation; ``kinds`` maps
    names to model / slot / system (recorded by the jobflow format). ``problems`` found by
    the caller are reported together with the format's own in one CheckpointError.
    ``durable=False``: the caller will not ``fsync`` (the writer starts no writeback).
    """
    if format == "jobflow":
        found = [*problems, *_sf.check_dtypes(arrays)]
        writer = functools.partial(_sf.write, arrays=arrays, kinds=kinds, version=version, durable=durable)
        if not names_a_file(path):
            writer = functools.partial(_in_directory, writer)
    else:
        arrays = {n: _of.to_oneflow(n, a) for n, a in arrays.items()}
        found = [*problems, *_of.check_names(arrays), *_of.check_dtypes(arrays)]
        writer = functools.partial(_of.write_dir, arrays=arrays)
    if found:
        raise CheckpointError("save", path, found, "nothing was written")
    return writer


def write(
    path: str,
    arrays: dict[str, np.ndarray],
    *,
    kinds: dict[str, str],
    format: str,
    overwrite: bool,
    version: str,
    durable: bool = True,
) -> None:
    """:func:`prepare`, then writes atomically (``durable``: see
    :func:`jobflow._src.io.atomic.write_atomically`)."""
    writer = prepare(path, arrays, kinds=kinds, format=format, version=version, durable=durable)
    _atomic.write_atomically(path, writer, overwrite=overwrite, durable=durable)

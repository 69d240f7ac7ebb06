"""Checkpoint save / load throughput: ``flow.checkpoint.save`` / ``load`` vs safetensors'
own ``save_file`` / ``load_file`` and ``torch.save`` / ``torch.load``, on the same float32
variables (the section ``checkpoint_io`` of ``python -m benchmarks``).

Every round saves with each contender (the order rotating), then loads each file back;
throughput is bytes of variable data / seconds, ratios are medians of per-round ratios
against safetensors' own function. Before each save the contender's previous file is
deleted (outside the timing), so every save writes a new file; every load reads a file
just written (the page cache holds it for all contenders alike).

What each contender does:

* jobflow save: the store's arrays on the host, jobflow's own safetensors writer (a
  CRC-32C per variable, the disk's writeback started every 8 MiB) into a private staging
  directory, ``fsync`` of the file and the staging directory, an atomic rename into place
  and ``fsync`` of the parent (``jobflow/_src/io/atomic.py``). jobflow load: jobflow's own
  reader (header checks, one read per tensor), CRC-32C verification (on a second thread
  from 16 MiB), the session's checks, and the values put into the store (on the job's
  devices).
* jobflow save with ``durable=False``: the same without the ``fsync``s and the early
  writeback (the opt-out; save only, its file loads as jobflow's).
* safetensors ``save_file`` / ``load_file`` (numpy): no checksum, no ``fsync``;
  ``save_file + fsync`` adds the one ``fsync`` of the file (what durability costs).
  ``safetensors.flax`` ``load_file``: the same file read into JAX arrays (what a JAX
  program would otherwise call; the ratios stay against the numpy ``load_file``).
* ``torch.save`` / ``torch.load(weights_only=True)`` of the same arrays as CPU tensors.
"""

import os
import shutil
import tempfile
import time
import zlib

import crc32c
import jax
import numpy as np

import jobflow as flow
import jobflow.typing as tp
from benchmarks import _harness as h

MIB = 2**20
CHUNK = 4 * MIB  # bytes per variable: 1 Mi float32 values
SAFETENSORS = "safetensors save_file / load_file"
NOT_DURABLE = "jobflow, durable=False (no fsync)"
SAFETENSORS_JAX = "safetensors.flax load_file (JAX arrays)"
SIZES = {"full": ((100, 15), (1024, 3)), "quick": ((16, 3), (64, 2))}  # (MiB, rounds)


def make_variables(total_mib: int, chunk: int = CHUNK, seed: int = 0) -> dict[str, np.ndarray]:
    """Fills a fresh session with ``total_mib`` MiB of float32 variables of ``chunk`` bytes
    each (random values) held by a predict job; returns them as numpy arrays."""
    flow.clear_default_session()
    chunk = min(chunk, total_mib * MIB)
    n, size = total_mib * MIB // chunk, chunk // 4

    @flow.global_function(type="predict")
    def checkpoint_holder(x: tp.Numpy.Placeholder((1,))) -> tp.Numpy:
        for i in range(n):
            flow.get_variable(f"ckpt-v{i:04d}", shape=(size,), initializer=flow.zeros_initializer())
        return x

    checkpoint_holder.compile()
    rng = np.random.default_rng(seed)
    values = {f"ckpt-v{i:04d}": rng.standard_normal(size, dtype=np.float32) for i in range(n)}
    flow.load_variables(values)
    flow.sync_default_session()
    return values


def _flax_load(path: str) -> dict:
    """safetensors' loader for JAX: ``load_file`` then ``jnp.array`` of each (device arrays,
    as jobflow's load gives), finished."""
    from safetensors.flax import load_file

    return jax.block_until_ready(load_file(path))


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Contenders:
    """Save and load functions of each contender, writing under ``root``."""

    def __init__(self, root: str, arrays: dict[str, np.ndarray]):
        from safetensors.numpy import load_file, save_file

        self.arrays = arrays
        p = {
            "jobflow": os.path.join(root, "jobflow_ckpt"),
            NOT_DURABLE: os.path.join(root, "jobflow_not_durable"),
            SAFETENSORS: os.path.join(root, "plain.safetensors"),
            "safetensors save_file + fsync": os.path.join(root, "synced.safetensors"),
        }

        def st_synced():
            save_file(arrays, p["safetensors save_file + fsync"])
            _fsync(p["safetensors save_file + fsync"])

        self.save = {
            "jobflow": lambda: flow.checkpoint.save(p["jobflow"]),
            NOT_DURABLE: lambda: flow.checkpoint.save(p[NOT_DURABLE], durable=False),
            SAFETENSORS: lambda: save_file(arrays, p[SAFETENSORS]),
            "safetensors save_file + fsync": st_synced,
        }
        self.load = {
            "jobflow": lambda: flow.checkpoint.load(p["jobflow"]),
            SAFETENSORS: lambda: load_file(p[SAFETENSORS]),
            SAFETENSORS_JAX: lambda: _flax_load(p[SAFETENSORS]),
        }
        try:
            import torch

            tensors = {n: torch.from_numpy(a) for n, a in arrays.items()}
            p["torch.save / torch.load"] = os.path.join(root, "torch.pt")
            self.save["torch.save / torch.load"] = lambda: torch.save(tensors, p["torch.save / torch.load"])
            self.load["torch.save / torch.load"] = lambda: torch.load(
                p["torch.save / torch.load"], weights_only=True
            )
        except ImportError:
            pass
        self.paths = p

    def remove(self, name: str) -> None:
        path = self.paths[name]
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def _timed(fn) -> float:
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def measure(total_mib: int, rounds: int, root: str) -> dict:
    """``{"save": {name: [seconds per round]}, "load": {...}, "bytes": n, "check": max diff}``."""
    arrays = make_variables(total_mib)
    c = _Contenders(root, arrays)
    times: dict = {"save": {n: [] for n in c.save}, "load": {n: [] for n in c.load}}
    for r in range(rounds):
        for kind, fns in (("save", c.save), ("load", c.load)):
            names = list(fns)
            for name in names[r % len(names) :] + names[: r % len(names)]:
                if kind == "save":
                    c.remove(name)
                times[kind][name].append(_timed(fns[name]))
    # what jobflow's checksums cost alone (CRC-32C), and zlib's CRC-32 (files of earlier versions)
    checksums = {
        "CRC-32C of the data (crc32c, one thread)": lambda: [crc32c.crc32c(a.data) for a in arrays.values()],
        "CRC-32 of the data (zlib, one thread)": lambda: [zlib.crc32(a.data) for a in arrays.values()],
    }
    times["checksum"] = {name: [] for name in checksums}
    for _ in range(rounds):
        for name, fn in checksums.items():
            times["checksum"][name].append(_timed(fn))
    # the loaded values are the saved ones (same model, every contender)
    flow.checkpoint.load(c.paths["jobflow"])
    back = {n: v.numpy() for n, v in flow.get_all_variables().items()}
    check = max(float(np.abs(back[n] - a).max()) for n, a in arrays.items())
    return {"times": times, "bytes": sum(a.nbytes for a in arrays.values()), "check": check}


def run(sizes, root: str | None = None) -> dict:
    """The section's table for ``sizes`` = ``((MiB, rounds), ...)``; files go under a
    temporary directory in ``root`` (default: the system's), deleted afterwards."""
    rows, notes = [], []
    for total_mib, rounds in sizes:
        with tempfile.TemporaryDirectory(dir=root, prefix="jobflow-bench-") as tmp:
            free = shutil.disk_usage(tmp).free
            if free < 4 * total_mib * MIB:
                notes.append(f"{total_mib} MiB skipped: only {free / 2**30:.1f} GiB free in {tmp}")
                continue
            result = measure(total_mib, rounds, tmp)
        nbytes = result["bytes"]
        for kind in ("save", "load", "checksum"):
            t = result["times"][kind]
            for name, values in t.items():
                rows.append(
                    {
                        "size (MiB)": nbytes / MIB,
                        "operation": kind,
                        "implementation": name,
                        "MB/s": nbytes / 1e6 / h.median(values),
                        "vs safetensors": h.ratio(t, SAFETENSORS, name) if SAFETENSORS in t else None,
                        "spread": h.spread(values),
                    }
                )
        notes.append(
            f"{total_mib} MiB: {rounds} rounds; jobflow's loaded values differ by {result['check']:g}"
        )
        flow.clear_default_session()
    notes += [
        f"float32 variables of {CHUNK // MIB} MiB each; 'vs safetensors': safetensors' time / this one's "
        "(throughput ratio, median of per-round ratios; target for jobflow >= 0.8).",
        "jobflow save: CRC-32C per variable, writeback started every 8 MiB, fsync of the file and "
        "directories, atomic rename; load: header checks, CRC-32C verification (on a second thread "
        "beside the reads from 16 MiB), values put into the session's store.",
    ]
    return {
        "title": "Checkpoint save / load throughput",
        "columns": ["size (MiB)", "operation", "implementation", "MB/s", "vs safetensors", "spread"],
        "rows": rows,
        "notes": notes,
    }


def section(scale) -> dict:
    """``python -m benchmarks --only checkpoint_io``."""
    return run(SIZES["quick" if scale.get("quick") else "full"])

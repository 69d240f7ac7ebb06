"""Kills checkpoint saves at every file-system operation and at random moments, and keeps
what each kill left on disk for test_checkpoint_atomic.py to check with the public API.

It imports jobflow's checkpoint writer (``jobflow._checkpoint_io`` and the modules it
uses: numpy, safetensors and the standard library) without ``jobflow/__init__.py``, which
would import JAX. ``_checkpoint_io.write`` is ``_checkpoint_io.prepare`` followed by
``_atomic.write_atomically``, the two calls ``flow.checkpoint.save`` makes once it has
the values on the host. Without JAX the
process has no threads, so it can ``fork`` a writer for each trial and ``SIGKILL`` it:
about a hundred kills take a few seconds.

    python checkpoint_child.py every-op OUTDIR
        for each scenario (format; no previous checkpoint, or one; RENAME_EXCHANGE or the
        fallback): a writer saves state 2 over state 1 and is killed just before its
        K-th file-system operation, for every K from just before the commit on and every
        third K before it (and once not at all).
    python checkpoint_child.py random OUTDIR TRIALS SEED
        a writer saves states 1, 2, 3, ... in a loop; it is killed after a random delay.

Each trial's directory is copied to OUTDIR/<trial>/; one JSON line per trial on stdout
gives the copy, the format and the states the checkpoint may hold (``null``: none).
"""

import json
import os
import random
import shutil
import signal
import sys
import time
import types

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_pkg = types.ModuleType("jobflow")
_pkg.__path__ = [os.path.join(_ROOT, "jobflow")]
sys.modules["jobflow"] = _pkg

from jobflow._src.io import atomic as _atomic  # noqa: E402
from jobflow._src.io import checkpoint_io as _checkpoint_io  # noqa: E402

STEP = "System-Train-TrainStep-job"
NAME = "ckpt"


def state(k: int, n: int = 16) -> dict:
    """Checkpoint contents number ``k``: every value is derived from ``k``."""
    return {
        "w": np.full((n, n), k, np.float32),
        "w-momentum": np.full((n,), -k, np.float32),
        STEP: np.array(k, np.int32),
    }


def save(path: str, fmt: str, k: int, n: int = 16) -> None:
    _checkpoint_io.write(path, state(k, n), kinds={}, format=fmt, overwrite=True, version="test")


def _instrument(kill_at: int) -> list:
    """Records the file-system operations of this process; SIGKILL just before number ``kill_at``."""
    calls = []

    def wrap(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            if len(calls) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        setattr(module, name, wrapper)

    for name in ("rename", "replace", "fsync", "unlink", "makedirs", "mkdir", "rmdir"):
        wrap(os, name)
    wrap(shutil, "rmtree")
    wrap(_atomic, "exchange")
    return calls


def kill_points(ops: list) -> list:
    """Every operation around the commit (two before the first rename to three after it),
    every third one elsewhere (writing and fsyncing the staging copy before, which leaves
    the previous checkpoint in place; deleting leftovers after), the last one, and
    ``len(ops) + 1``: not killed."""
    commit = min(i for i, name in enumerate(ops, 1) if name in ("rename", "replace", "exchange"))
    return [k for k in range(1, len(ops) + 2) if -2 <= k - commit <= 3 or k % 3 == 1 or k >= len(ops)]


def _in_child(fn) -> tuple[int, bytes]:
    """Runs ``fn(write_fd)`` in a forked process; returns (wait status, what it wrote)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            fn(w)
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        return status, f.read()


def _reset(workdir: str, fmt_prev, prev) -> str:
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    path = os.path.join(workdir, NAME)
    if prev is not None:
        save(path, fmt_prev, prev)
    return path


def _save_killed(path, fmt, k, kill_at, fallback):
    def run(w):
        if fallback:
            _atomic.exchange = lambda a, b: False
        calls = _instrument(kill_at)
        save(path, fmt, k)
        os.write(w, json.dumps(calls).encode())

    return _in_child(run)


SCENARIOS = [  # (format written, previous format, previous state, fallback)
    ("jobflow", None, None, False),
    ("jobflow", "jobflow", 1, False),
    ("oneflow", None, None, False),
    ("oneflow", "oneflow", 1, False),
    ("oneflow", "oneflow", 1, True),
    ("jobflow", "oneflow", 1, False),
    ("jobflow", "oneflow", 1, True),
]


def every_op(outdir: str) -> None:
    work = os.path.join(outdir, "work")
    trial = 0
    for fmt, fmt_prev, prev, fallback in SCENARIOS:
        _, out = _save_killed(_reset(work, fmt_prev, prev), fmt, 2, 0, fallback)
        ops = json.loads(out)
        n_ops = len(ops)
        for kill_at in kill_points(ops):
            path = _reset(work, fmt_prev, prev)
            status, _ = _save_killed(path, fmt, 2, kill_at, fallback)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            assert killed == (kill_at <= n_ops), (fmt, prev, fallback, kill_at, status)
            dest = os.path.join(outdir, str(trial))
            shutil.copytree(work, dest, symlinks=True)
            valid = [prev, 2] if killed else [2]
            print(
                json.dumps(
                    {
                        "dir": dest,
                        "format": fmt,
                        "valid": valid,
                        "scenario": f"{fmt} over {fmt_prev} state {prev}, fallback={fallback}, "
                        f"killed before op {kill_at}/{n_ops} "
                        f"({ops[kill_at - 1] if kill_at <= n_ops else 'none'})",
                    }
                ),
                flush=True,
            )
            trial += 1


def random_kills(outdir: str, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    work = os.path.join(outdir, "work")
    for trial in range(trials):
        fmt = ("jobflow", "oneflow")[trial % 2]
        path = _reset(work, fmt, 0)
        t0 = time.perf_counter()
        save(path, fmt, 0, n=256)
        one_save = time.perf_counter() - t0
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            k = 1
            while True:
                save(path, fmt, k, n=256)
                os.write(w, f"{k}\n".encode())
                k += 1
        os.close(w)
        time.sleep(rng.uniform(0, 4 * one_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            acked = [int(x) for x in f.read().split()]
        last = acked[-1] if acked else 0
        dest = os.path.join(outdir, f"random-{trial}")
        shutil.copytree(work, dest, symlinks=True)
        print(
            json.dumps(
                {
                    "dir": dest,
                    "format": fmt,
                    "valid": [last, last + 1],
                    "n": 256,
                    "scenario": f"{fmt} save loop killed after {len(acked)} saves",
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    mode, outdir = sys.argv[1], sys.argv[2]
    if mode == "every-op":
        every_op(outdir)
    elif mode == "random":
        random_kills(outdir, int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")

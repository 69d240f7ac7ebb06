"""Checkpoints of a 2-process run (``jobflow launch``) whose variables and optimizer slots
are split across the processes: process 0 writes, every process loads, and the resumed
run is bitwise the uninterrupted one in both processes."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import jobflow as flow

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_processes_save_load_and_resume(tmp_path):
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobflow.cli",
            "launch",
            "-n",
            "2",
            "--cpu-devices",
            "2",
            "--timeout",
            "100",
            str(ROOT / "tests" / "checkpoint_multiprocess_worker.py"),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in (0, 1):
        r = np.load(tmp_path / f"rank{rank}.npz")
        assert r["split"]  # the slots really were split across the processes
        assert r["loaded_step"] == 2 and r["restored_step"] == 4
        assert r["resume_equal"] and r["restore_equal"]
    assert sorted(os.listdir(tmp_path / "managed")) == ["ckpt-00000004.safetensors"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # one writer, no leftovers
    info = flow.checkpoint.describe(tmp_path / "ckpt.safetensors", verify=True)
    assert info.problems == () and info.step_counters == {"train": 2}
    assert {v.name: v.shape for v in info.variables}["h-weight-momentum"] == (16, 8)  # whole, not a piece

"""Atomic saves: a SIGKILL at any moment of a save leaves the previous checkpoint (or none,
if there was none) or the new one at the path, complete, and never a partial one that
loads; the next save cleans up whatever the killed one left.

The kills happen in tests/checkpoint_child.py (a JAX-free process that forks a writer per
trial); the results are checked here with the public API. A last test kills a training
process (tests/checkpoint_trainer.py, saving with flow.checkpoint.save) at random moments.
"""

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import jobflow as flow
from tests.checkpoint_trainer import define_job

CHILD = Path(__file__).with_name("checkpoint_child.py")
ROOT = Path(__file__).parents[1]
STEP = "System-Train-TrainStep-job"


def state(k, n=16):  # the same contents as checkpoint_child.state
    return {
        "w": np.full((n, n), k, np.float32),
        "w-momentum": np.full((n,), -k, np.float32),
        STEP: np.array(k, np.int32),
    }


def run_child(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def check_case(case) -> int | None:
    """Asserts the trial left one of its valid states; returns which (None: nothing)."""
    path = os.path.join(case["dir"], "ckpt")
    try:
        values = flow.checkpoint.get(path)
    except FileNotFoundError:
        assert None in case["valid"], f"{case['scenario']}: the previous checkpoint is gone"
        got = None
    else:
        got = int(values[STEP])
        assert got in case["valid"], f"{case['scenario']}: holds state {got}, expected one of {case['valid']}"
        expected = state(got, case.get("n", 16))
        assert sorted(values) == sorted(expected), case["scenario"]
        for name, want in expected.items():
            assert values[name].dtype == want.dtype and values[name].shape == want.shape, (
                case["scenario"],
                name,
            )
            np.testing.assert_array_equal(values[name], want, err_msg=f"{case['scenario']}: {name}")
    # the next save succeeds and removes every leftover of the killed one
    flow.checkpoint.save(path, state(7), overwrite=True, format=case["format"])
    assert os.listdir(case["dir"]) == ["ckpt"], case["scenario"]
    assert int(flow.checkpoint.get(path)[STEP]) == 7
    return got


def test_kill_before_file_system_operations(tmp_path):
    """Kills before every operation around the commit, every third one elsewhere."""
    cases = run_child("every-op", str(tmp_path))
    outcomes = collections.defaultdict(set)
    for case in cases:
        scenario = case["scenario"].split(", killed")[0]
        outcomes[scenario].add(check_case(case))
    assert len(outcomes) == 7 and len(cases) > 80
    for scenario, seen in outcomes.items():
        # every scenario was killed both before its commit (previous state) and after it (new)
        previous = None if "over None" in scenario else 1
        assert seen == {previous, 2}, (scenario, seen)


def test_kill_save_loop_at_random_moments(tmp_path):
    cases = run_child("random", str(tmp_path), "24", "20240601")
    assert len(cases) == 24
    got = [check_case(case) for case in cases]
    assert all(g is not None for g in got)
    assert max(got) >= 2, "the kills all landed before the writer's second save; the test saw too little"


@pytest.mark.slow
def test_kill_a_training_process_during_save(tmp_path):
    """flow.checkpoint.save in a real training process, killed at random moments."""
    rng = random.Random(7)
    script = Path(__file__).with_name("checkpoint_trainer.py")
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    job = define_job()
    for trial in range(3):
        path = tmp_path / f"ckpt-{trial}.safetensors"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            first = proc.stdout.readline()
            assert first.strip() == "1", proc.stderr.read() if proc.poll() is not None else first
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            proc.kill()
            rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        acked = [1] + [int(s) for s in rest.split()]
        values = flow.checkpoint.get(path)  # complete: every checksum verifies
        step = int(values[STEP])
        assert step in (acked[-1], acked[-1] + 1)
        assert sorted(values) == [STEP, "w", "w-momentum"]
        report = flow.checkpoint.load(path)  # loads into a session with the same job
        assert sorted(report.loaded) == [STEP, "w", "w-momentum"]
        assert int(flow.get_all_variables()[STEP]) == step
        job(np.ones((8, 256), np.float32))
        flow.checkpoint.save(path, overwrite=True)  # and the next save cleans up
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

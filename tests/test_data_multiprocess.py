"""In-job data in a 2-process run (``jobflow launch``): each process reads its share of the
parts, the global batch is the processes' pieces, and a checkpoint holds every process's
position, so loading it resumes both exactly."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import jobflow as flow
from jobflow._src.data.pipeline import _seed_for
from tests import data_fixtures as fx

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_processes_read_their_shares_and_resume(tmp_path):
    data_dir = fx.bert_dataset(tmp_path / "bert", records=32, parts=4)
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "jobflow.cli", "launch", "-n", "2", "--cpu-devices", "2", "--timeout", "150"]
        + [str(ROOT / "tests" / "data_multiprocess_worker.py"), data_dir, str(tmp_path)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r0, r1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    for key in ("seen", "later", "again"):
        np.testing.assert_array_equal(r0[key], r1[key])  # one global batch in both processes
    np.testing.assert_array_equal(r0["again"], r0["later"])  # resumed on the same batches
    assert r0["equal"] and r1["equal"]  # and to the same variables
    # the global batch: process 0's 4 rows (parts 0-1) then process 1's (parts 2-3), each read
    # by an independent source with the pipeline's seed for reader 0
    shares = [
        flow.data.OFRecordSource(
            data_dir,
            data_part_num=4,
            random_shuffle=True,
            shuffle_buffer_size=4,
            seed=_seed_for(0, 0),
            rank=r,
            world=2,
        )
        for r in (0, 1)
    ]
    for batch in [*r0["seen"], *r0["later"]]:
        want = [flow.data.parse_record(rec)["input_ids"] for s in shares for rec in s.next_records(4)]
        np.testing.assert_array_equal(batch, np.stack(want))

"""A sharded embedding table across two processes equals one process.

``jobflow launch -n 2 --cpu-devices 2`` runs tests/embedding_multiprocess_worker.py: a
``(32, 8)`` table split by rows (``get_variable(distribute=flow.distribute.split(0))``)
over 2 processes x 2 CPU devices, looked up with ``flow.gather``, trained with LazyAdam and
with indexed-slices SGD. The expectation is the same jobs in this process on 4 devices
(within 1e-5), and, independently, that the rows no batch looked up never moved. Their
checkpoint (the table gathered from both processes) loads into this one process on 1 and
on 8 devices.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import jobflow as flow
from jobflow._src.runtime import session as session_impl

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _worker():
    spec = importlib.util.spec_from_file_location(
        "embedding_multiprocess_worker", ROOT / "tests" / "embedding_multiprocess_worker.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("embedding")
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    args = ["-n", "2", "--cpu-devices", "2", "--timeout", "110"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobflow.cli",
            "launch",
            *args,
            str(ROOT / "tests" / "embedding_multiprocess_worker.py"),
            str(out),
        ],
        cwd=out,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)], out


@pytest.mark.parametrize("optimizer", ["lazy_adam", "sgd"])
def test_two_processes_by_two_devices_equal_one_process_by_four(ranks, optimizer):
    ranks, _ = ranks
    worker = _worker()
    for r in ranks:
        assert r["world"] == 2
        assert not r[f"{optimizer}:table_fully_addressable"]  # the table is split across the processes
        local = r[f"{optimizer}:local_shards"]
        assert local.tolist() == [[worker.ROWS // 4, worker.DIM]] * 2  # a quarter of the rows per device
    for k in ranks[0]:
        np.testing.assert_array_equal(ranks[0][k], ranks[1][k], err_msg=k)

    losses, values = worker.train(flow.scope.placement("cpu", "0:0-3"), optimizer)
    got = ranks[0]
    np.testing.assert_allclose(got[f"{optimizer}:losses"], losses, rtol=1e-5, atol=1e-5)
    names = sorted(k.split(":var:")[1] for k in got if k.startswith(f"{optimizer}:var:"))
    assert names == sorted(values)
    for name, value in values.items():
        np.testing.assert_allclose(got[f"{optimizer}:var:{name}"], value, rtol=1e-5, atol=1e-5, err_msg=name)

    # rows no batch looked up (ids < ROWS // 2 only) never moved: the sparse update held
    table = got[f"{optimizer}:var:embedding"]
    flow.clear_default_session()
    worker.build_job(flow.scope.placement("cpu", "0:0-3"), optimizer).compile()  # initial values
    start = flow.get_all_variables()["embedding"].numpy()
    np.testing.assert_array_equal(table[worker.ROWS // 2 :], start[worker.ROWS // 2 :])
    assert not np.allclose(table[: worker.ROWS // 2], start[: worker.ROWS // 2])


@pytest.mark.parametrize("devices", ["0:0", "0:0-7"])
def test_their_checkpoint_loads_into_one_process(ranks, devices):
    ranks, out = ranks
    worker = _worker()
    worker.build_job(flow.scope.placement("cpu", devices), "lazy_adam").compile()
    flow.checkpoint.load(str(out / "ckpt-lazy_adam"))
    table = flow.get_all_variables()["embedding"].numpy()
    assert table.tobytes() == ranks[0]["lazy_adam:var:embedding"].tobytes()
    stored = session_impl.default_session().store["embedding-m"]
    assert {s.data.shape for s in stored.addressable_shards} == {
        (worker.ROWS // len(stored.sharding.device_set), worker.DIM)
    }

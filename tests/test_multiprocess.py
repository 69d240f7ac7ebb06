"""Several processes: ``flow.env.init`` on ``jax.distributed`` and the ``jobflow launch`` launcher.

The main test launches 2 processes (2 CPU devices each, gloo collectives on loopback)
that train one job data-parallel over all 4 devices with its optimizer state sharded
across them; both must end with identical weights that equal a single-process run of
the same job on the same global batches (run here, in the test process), and a mirrored job across the
processes returns each device's own result.
"""

import importlib.util
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import jobflow as flow
from jobflow._src.cli import launch
from jobflow._src.graph import env

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_launcher(args, tmp_path, timeout=90):
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "jobflow.cli", "launch", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - start


def _worker_module():
    spec = importlib.util.spec_from_file_location(
        "multiprocess_worker", ROOT / "tests" / "multiprocess_worker.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_train_like_one_process(tmp_path):
    proc, _ = _run_launcher(
        [
            "-n",
            "2",
            "--cpu-devices",
            "2",
            "--timeout",
            "80",
            str(ROOT / "tests" / "multiprocess_worker.py"),
            str(tmp_path),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[0] rank 0/2 done" in proc.stdout and "[1] rank 1/2 done" in proc.stdout
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    for r in ranks:
        assert r["world"] == 2 and r["train_devices"] == 4 and r["predict_devices"] == 2
        assert not r["slot_fully_addressable"]  # the slots really were split across the processes
        assert r["reload_equal"]
    # mirrored view across processes: each process gets its own devices' results as the
    # list, and every device's result (concatenated, gathered) as tp.Numpy
    worker = _worker_module()
    fed = [worker.mirrored_inputs(r) for r in (0, 1)]
    for r in (0, 1):
        np.testing.assert_allclose(ranks[r]["mirrored_list"], [x - x.mean() for x in fed[r]], rtol=1e-6)
        np.testing.assert_allclose(
            ranks[r]["mirrored_all"], np.concatenate([x - x.mean() for x in fed[0] + fed[1]]), rtol=1e-6
        )
    for k in ranks[0].files:
        if not k.startswith("mirrored_list"):
            np.testing.assert_array_equal(ranks[0][k], ranks[1][k], err_msg=k)

    # the same job in this single process, on one device
    train, predict = worker.build_jobs()
    losses = np.stack([train(x, y) for x, y in worker.batches()])
    logits = predict(next(iter(worker.batches()))[0])
    ref = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    np.testing.assert_allclose(ranks[0]["losses"], losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ranks[0]["logits"], logits, rtol=1e-5, atol=1e-5)
    assert sorted(k[4:] for k in ranks[0].files if k.startswith("var:")) == sorted(ref)
    for k, v in ref.items():
        np.testing.assert_allclose(ranks[0][f"var:{k}"], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_a_failing_process_stops_the_others(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(
        "import os, sys, time\n"
        "rank = int(os.environ['JAX_PROCESS_ID'])\n"
        "print('hello from', rank, 'of', os.environ['JAX_NUM_PROCESSES'], flush=True)\n"
        "if rank == 1:\n    sys.exit(3)\n"
        "time.sleep(120)\n"
    )
    proc, took = _run_launcher(["-n", "2", str(script)], tmp_path, timeout=60)
    assert proc.returncode == 3
    assert took < 30
    assert "[0] hello from 0 of 2" in proc.stdout and "[1] hello from 1 of 2" in proc.stdout
    assert "jobflow launch: rank 1 exited with code 3; stopping the other ranks" in proc.stderr


def test_timeout_stops_every_process(tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(120)\n")
    proc, took = _run_launcher(["-n", "2", "--timeout", "1", str(script)], tmp_path, timeout=60)
    assert proc.returncode == 124 and took < 30
    assert "timed out after 1 s" in proc.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_processes_end_with_the_launcher(tmp_path, sig):
    script = tmp_path / "pid.py"
    script.write_text(
        "import os, pathlib, time\n"
        "pathlib.Path(f\"pid{os.environ['JAX_PROCESS_ID']}\").write_text(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    launcher = subprocess.Popen(
        [sys.executable, "-m", "jobflow.launch", "-n", "2", str(script)],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"pid{r}").exists() for r in (0, 1)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # let both write their pid completely
        pids = [int((tmp_path / f"pid{r}").read_text()) for r in (0, 1)]
        launcher.send_signal(getattr(signal, sig))
        code = launcher.wait(timeout=30)
        assert code == (143 if sig == "SIGTERM" else -signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        launcher.stdout.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (already dead, not yet reaped by its new parent) counts as gone
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return True


def test_child_environment():
    base = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_foo=1", "RANK": "5", "KEEP": "1"}
    e = launch.child_environment(base, 1, 3, 4321, cpu_devices=2)
    names = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
    assert [e[k] for k in names] == ["127.0.0.1:4321", "3", "1"]
    assert e["JAX_NUM_CPU_DEVICES"] == "2" and e["XLA_FLAGS"] == "--xla_foo=1"
    assert "RANK" not in e and e["KEEP"] == "1"
    assert env.from_environment(e)[:3] == ("127.0.0.1:4321", 3, 1)
    assert launch.child_environment(base, 0, 2, 1, None)["XLA_FLAGS"] == base["XLA_FLAGS"]
    with pytest.raises(ValueError, match="launch nprocs must be an int >= 1; got 0"):
        launch.launch([sys.executable, "-c", "pass"], 0)
    sock, port = launch.reserve_port()
    try:  # held: a plain bind of the same port fails until the reservation is closed
        with pytest.raises(OSError):
            socket.create_server(("127.0.0.1", port))
    finally:
        sock.close()
    socket.create_server(("127.0.0.1", port)).close()


def test_env_settings_are_read_and_checked():
    torch_style = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "4", "RANK": "2"}
    assert env._resolve(None, None, None, torch_style)[:3] == ("10.0.0.1:29500", 4, 2)
    assert env._resolve(None, None, 3, torch_style).process_id == 3  # arguments win
    assert env._resolve(None, None, None, {})[:3] == (None, None, None)  # one process
    assert env._resolve(None, 1, 0, {})[:3] == (None, None, None)
    with pytest.raises(ValueError, match=r"process_id must be an int in \[0, 2\) for num_processes=2; got 2"):
        env._resolve("localhost:1234", 2, 2, {})
    with pytest.raises(ValueError, match=r"coordinator_address must be 'host:port' .* got 'localhost'"):
        env._resolve("localhost", 2, 0, {})
    with pytest.raises(ValueError, match=r"got None \(from flow.env.init arguments and JAX_\* environment"):
        env._resolve(None, None, None, {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"})
    with pytest.raises(ValueError, match=r"environment variable WORLD_SIZE must be an integer; got 'two'"):
        env._resolve(None, None, None, {"WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match=r"num_processes must be an int >= 1; got 0"):
        env._resolve("localhost:1", 0, 0, {})
    flow.env.init()  # nothing asks for several processes: a no-op
    assert flow.env.get_world_size() == 1 and flow.env.get_rank() == 0

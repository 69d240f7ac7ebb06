"""``jobflow launch`` when a worker fails: a worker that raises or exits with a code
mid-training ends at once with that code (not after JAX's shutdown barrier times out),
the launcher names its rank on stderr, stops the others (SIGTERM, then SIGKILL) within
seconds and exits with the worker's code. Also: workers run as ``python script.py``
would, and the runtime's noise is hidden unless ``--verbose``. (The launcher's other
behaviour: tests/test_multiprocess.py.)"""

import os
import pathlib
import subprocess
import sys
import textwrap
import time

from jobflow._src.cli import launch

ROOT = pathlib.Path(__file__).resolve().parents[1]

RAISES_MID_TRAINING = """\
import pathlib, sys, time
import numpy as np
import jobflow as flow
import jobflow.typing as tp

rank = flow.env.get_rank()
both = flow.scope.placement("cpu", ["0:0-1", "1:0-1"])  # every step is a collective of both ranks


@flow.global_function(type="train", function_config=flow.function_config().default_placement_scope(both))
def train(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:
    w = flow.get_variable("w", shape=(4,), initializer=flow.zeros_initializer())
    loss = flow.math.reduce_mean((flow.math.reduce_sum(x * w, axis=1) - 1.0) ** 2)
    flow.optimizer.SGD(0.1).minimize(loss)
    return loss


x = np.ones((8, 4), np.float32)
for step in range(1_000_000):  # rank 0 trains on, waiting for rank 1 in every step
    train(x)
    if rank == 1 and step == 3:
        pathlib.Path(sys.argv[1]).write_text(repr(time.time()))
        raise RuntimeError("boom on rank 1")
"""


def _run(args, cwd, timeout=120):
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "jobflow.cli", "launch", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_worker_raising_mid_training_stops_the_run_within_seconds(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(RAISES_MID_TRAINING)
    start = time.monotonic()
    proc = _run(["-n", "2", "--cpu-devices", "2", str(script), str(tmp_path / "raised")], tmp_path)
    took, end = time.monotonic() - start, time.time()
    assert proc.returncode == 1, proc.stdout + proc.stderr  # an uncaught exception, as in Python
    raised = float((tmp_path / "raised").read_text())
    assert end - raised < 10, f"the run ended {end - raised:.1f} s after rank 1 raised"
    assert took < 60
    assert "jobflow launch: rank 1 exited with code 1; stopping the other ranks" in proc.stderr
    assert "[1] RuntimeError: boom on rank 1" in proc.stderr
    assert f'[1]   File "{script}", line' in proc.stderr  # the traceback starts in the script
    assert "runpy" not in proc.stderr and "<string>" not in proc.stderr
    assert "[Gloo]" not in proc.stdout  # quiet by default


# Runs jobflow/_src/cli/launch.py (standard library only) without importing jobflow and
# JAX, and in its own process: forking a test process that runs JAX would trip JAX's
# fork warning.
LAUNCHER = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('launch', sys.argv.pop(1)); "
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
    "sys.exit(module.main())"
)


def _launch(tmp_path, body, n=2, grace=5.0, verbose=False):
    """Runs ``body`` in ``n`` workers under the launcher: ``(code, stdout, stderr, seconds)``."""
    script = tmp_path / "w.py"
    script.write_text(textwrap.dedent(body))
    args = ["-n", str(n), "--grace", str(grace), *(["--verbose"] if verbose else []), str(script), "a", "b"]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, launch.__file__, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def test_an_early_exit_stops_ranks_that_ignore_sigterm(tmp_path):
    code, _, err, took = _launch(
        tmp_path,
        """\
        import os, signal, sys, time
        rank = int(os.environ["JAX_PROCESS_ID"])
        if rank == 1:
            time.sleep(0.5)
            sys.exit(5)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as JAX's preemption notifier does
        time.sleep(120)
        """,
        grace=1.0,
    )
    assert code == 5 and took < 20
    assert err.splitlines() == ["jobflow launch: rank 1 exited with code 5; stopping the other ranks"]


def test_workers_run_as_python_runs_a_script(tmp_path):
    code, out, err, _ = _launch(
        tmp_path,
        """\
        import os, sys, time
        print(__name__, os.path.basename(__file__), sys.argv[1:], sys.path[0] == os.path.dirname(__file__))
        rank = int(os.environ["JAX_PROCESS_ID"])
        if rank == 0:
            open("printed-0", "w").close()
        if rank == 1:
            while not os.path.exists("printed-0"):  # the failing exit stops rank 0: after its print
                time.sleep(0.01)
            sys.exit("a message for the user")
        """,
    )
    assert sorted(out.splitlines()) == [f"[{r}] __main__ w.py ['a', 'b'] True" for r in (0, 1)]
    assert code == 1 and "[1] a message for the user" in err
    code, out, err, _ = _launch(tmp_path, "import sys\nprint('ok')\nsys.exit(0)\n")
    assert code == 0 and sorted(out.splitlines()) == ["[0] ok", "[1] ok"] and err == ""


NOISY = """\
import sys
print("[Gloo] Rank 1 is connected to 1 peer ranks. Expected number of connected peer ranks is : 1")
print("training step 1")
print("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", file=sys.stderr)
print("W1201 19:14:27.777451   15183 preemption_notifier.cc:90] SIGTERM caught at 2026", file=sys.stderr)
print("I0000 00:00:1733012345.123456   12 coordination_service_agent.cc:10] ok", file=sys.stderr)
print("E1201 19:14:27.777451   15183 coordination_service.cc:1] a real error", file=sys.stderr)
print("I1201 19:14:27.777451 140 train.py:10] the user's own absl log", file=sys.stderr)
"""


def test_runtime_noise_is_hidden_unless_verbose(tmp_path):
    code, out, err, _ = _launch(tmp_path, NOISY, n=1)
    assert code == 0
    assert out == "[0] training step 1\n"
    assert err.splitlines() == [
        "[0] E1201 19:14:27.777451   15183 coordination_service.cc:1] a real error",
        "[0] I1201 19:14:27.777451 140 train.py:10] the user's own absl log",
    ]
    code, out, err, _ = _launch(tmp_path, NOISY, n=1, verbose=True)
    assert len(out.splitlines()) == 2 and len(err.splitlines()) == 5  # everything
    assert launch.is_noise(
        "[Gloo] Rank 0 is connected to 3 peer ranks. Expected number of connected peer ranks is : 3"
    )
    assert not launch.is_noise("loss 0.5 [Gloo] Rank 0 is connected to 3 peer ranks")
    # gloo's threads write their reports piece by piece: two of them interleaved (seen in CI)
    assert launch.is_noise(
        "[Gloo] Rank [Gloo] Rank 2 is connected to 3 peer ranks. Expected number of connected peer ranks is : 3"
    )
    assert launch.is_noise("3 is connected to 3 peer ranks. Expected number of connected peer ranks is : 3")
    assert not launch.is_noise("3") and not launch.is_noise("step 3 [Gloo] Rank")

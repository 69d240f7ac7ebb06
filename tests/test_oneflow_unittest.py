"""``flow.unittest`` (OneFlow's test helpers) and the runner of OneFlow's own tests.

Written in the style of OneFlow's legacy op tests (a ``flow.unittest.TestCase`` with
``skip_unless_*`` decorators), as a OneFlow test file would be."""

import os
import pathlib
import subprocess
import sys
import unittest

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as oft

ROOT = pathlib.Path(__file__).resolve().parents[1]


@flow.unittest.skip_unless_1n1d()
class TestInOneFlowStyle(flow.unittest.TestCase):
    def test_watch_gets_a_blob(test_case):
        data = np.ones((10,), dtype=np.float32)
        seen = []

        def EqOnes(x):
            seen.append(x)
            test_case.assertTrue(np.allclose(data, x.numpy()))

        @flow.global_function()
        def ReluJob(x: oft.Numpy.Placeholder((10,))):
            flow.watch(x, EqOnes)
            return x

        ReluJob(data).get()
        test_case.assertEqual(len(seen), 1)

    def test_setup_cleared_the_session(test_case):
        test_case.assertEqual(flow.get_all_variables(), {})


def test_env_reads_oneflows_variables(monkeypatch):
    monkeypatch.delenv("ONEFLOW_TEST_NODE_LIST", raising=False)
    monkeypatch.delenv("ONEFLOW_TEST_DEVICE_NUM", raising=False)
    assert flow.unittest.env.device_num() == 1 and flow.unittest.env.node_size() == 1
    assert not flow.unittest.env.has_node_list() and not flow.unittest.env.eager_execution_enabled()
    monkeypatch.setenv("ONEFLOW_TEST_DEVICE_NUM", "4")
    monkeypatch.setenv("ONEFLOW_TEST_NODE_LIST", "a,b")
    assert flow.unittest.env.device_num() == 4 and flow.unittest.env.node_list() == ["a", "b"]
    assert flow.unittest.env.node_size() == 2
    assert isinstance(flow.unittest.skip_unless_2n4d()(lambda: None), type(lambda: None))
    monkeypatch.setenv("ONEFLOW_TEST_WORLD_SIZE", "x")
    with pytest.raises(ValueError, match="must be a number"):
        flow.unittest.env.has_world_size()


def test_skip_unless_skips_other_configurations():
    @flow.unittest.skip_unless_1n4d()
    class Four(unittest.TestCase):
        def test_x(self):
            raise AssertionError("must not run")

    result = unittest.TestResult()
    Four("test_x").run(result)
    assert len(result.skipped) == 1 and "device_num is 4" in result.skipped[0][1]


def test_eager_tests_are_skipped(monkeypatch):
    monkeypatch.setenv("ONEFLOW_TEST_ENABLE_EAGER", "1")

    class Eager(flow.unittest.TestCase):
        def test_x(self):
            raise AssertionError("must not run")

    result = unittest.TestResult()
    Eager("test_x").run(result)
    assert len(result.skipped) == 1


def test_register_test_cases(tmp_path):
    (tmp_path / "test_small.py").write_text(
        "import jobflow as flow\n"
        "def test_one(): pass\n"
        "@flow.unittest.num_nodes_required(2)\n"
        "def test_two_nodes(): pass\n"
    )
    scope = {}
    flow.unittest.register_test_cases(scope, str(tmp_path), lambda n: n == 1)
    assert set(scope) == {"test_small"}
    assert hasattr(scope["test_small"], "test_one") and not hasattr(scope["test_small"], "test_two_nodes")


def test_watch_annotations_in_the_mirrored_view():
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())
    cfg.default_placement_scope(flow.scope.placement("cpu", "0:0-1"))
    got = {}

    def as_list(x: oft.ListNumpy):
        got["list"] = x

    def as_numpy(x: oft.Numpy):
        got["numpy"] = x

    def as_blob(x):
        got["blob"] = x

    @flow.global_function(function_config=cfg)
    def job(x: oft.Numpy.Placeholder((4, 2))):
        for handler in (as_list, as_numpy, as_blob):
            flow.watch(x * 2, handler)
        return x  # the result is ready once the step (and its watchers) ran

    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    job(x).get()
    assert [p.shape for p in got["list"]] == [(2, 2), (2, 2)]
    np.testing.assert_array_equal(got["list"][1], x[2:] * 2)
    assert type(got["numpy"]) is np.ndarray
    np.testing.assert_array_equal(got["numpy"], x * 2)
    np.testing.assert_array_equal(got["blob"].numpy(), x * 2)
    assert got["blob"].parallel_num() == 2


def test_the_runner_rewrites_imports_and_gpu_cases():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import run_oneflow_tests as runner
    finally:
        sys.path.remove(str(ROOT / "tools"))
    src = 'import oneflow as flow\nimport oneflow.typing as oft\nfrom oneflow.core.job import x\n    arg_dict["device_type"] = ["cpu", "gpu"]\n'
    src += 'with flow.scope.placement("gpu", "0:0-3"):\n'
    out = runner.rewrite(src)
    assert "import jobflow as flow" in out and "import jobflow.typing as oft" in out
    assert "from jobflow.core.job import x" in out and 'arg_dict["device_type"] = ["cpu"]' in out
    assert 'placement("cpu", "0:0-3")' in out
    assert '["cpu", "gpu"]' in runner.rewrite(src, cpu_only=False)


def test_the_runner_refuses_to_copy_into_the_repository():
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "run_oneflow_tests.py"),
            "/nonexistent",
            "--out",
            str(ROOT / "x"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 2 and "outside jobflow's repository" in run.stderr

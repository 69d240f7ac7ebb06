"""Runs OneFlow's own legacy-API op tests against jobflow.

    python tools/run_oneflow_tests.py PATH [--tag v0.4.0] [--device-num N] [--out DIR] [TEST.py ...] [-- PYTEST ARGS]

PATH is a OneFlow checkout (a work tree, or a bare git directory together with ``--tag``).
The script copies ``oneflow/python/test/ops/<TEST>.py`` and their helpers
(``test_util.py``, ``test_global_storage.py``) into ``--out`` (a temporary directory by
default, never this repository), rewrites ``import oneflow`` / ``from oneflow`` into
``jobflow`` and (unless ``--keep-gpu``) the ``arg_dict["device_type"]`` lists of the
parametrized tests into ``["cpu"]`` and ``placement("gpu", ...)`` into
``placement("cpu", ...)``, and runs pytest there with 8 CPU devices.
``--device-num N`` sets ``ONEFLOW_TEST_DEVICE_NUM`` (which ``skip_unless_1n<N>d`` tests
run). Tests that compare with TensorFlow need it importable (e.g. installed elsewhere with
``pip install --target DIR tensorflow`` and ``DIR`` on ``PYTHONPATH``). Nothing of OneFlow is kept in
jobflow's repository. Results of the last run are in docs/from_oneflow.md ("OneFlow's
own tests").
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST_DIR = "oneflow/python/test/ops"
HELPERS = ["test_util.py", "test_global_storage.py"]
DEFAULT_TESTS = [
    "test_optimizers.py",
    "test_watch.py",
    "test_watch_diff.py",
    "test_checkpoint.py",
    "test_model_io.py",
    "test_global_function_signature.py",
    "test_global_function_input_output.py",
    "test_get_variable.py",
]
_IMPORT = re.compile(r"^(\s*)(import|from)\s+oneflow\b", re.M)
_GPU_PLACEMENT = re.compile(r"""(placement\(\s*["'])gpu(["'])""")
_DEVICE_TYPES = re.compile(r"""^(\s*arg_dict\[["']device_type["']\]\s*=\s*)\[[^\]]*\]""", re.M)


def rewrite(source: str, cpu_only: bool = True) -> str:
    """``import oneflow...`` / ``from oneflow...`` lines pointed at jobflow; with
    ``cpu_only``, the ``arg_dict["device_type"] = [...]`` lists of the parametrized tests
    become ``["cpu"]`` and ``placement("gpu", ...)`` becomes ``placement("cpu", ...)``
    (the GPU cases need a GPU)."""
    source = _IMPORT.sub(lambda m: f"{m[1]}{m[2]} jobflow", source)
    if not cpu_only:
        return source
    source = _GPU_PLACEMENT.sub(lambda m: f"{m[1]}cpu{m[2]}", source)
    return _DEVICE_TYPES.sub(lambda m: f'{m[1]}["cpu"]', source)


def read_source(oneflow: pathlib.Path, tag: str | None, name: str) -> str | None:
    """One file of OneFlow's test directory (None if absent), from a work tree or a git dir."""
    rel = f"{TEST_DIR}/{name}"
    if tag is None:
        path = oneflow / rel
        return path.read_text() if path.is_file() else None
    run = subprocess.run(
        ["git", f"--git-dir={oneflow}", "show", f"{tag}:{rel}"], capture_output=True, text=True
    )
    return run.stdout if run.returncode == 0 else None


def prepare(
    oneflow: pathlib.Path, tag: str | None, tests: list[str], out: pathlib.Path, cpu_only: bool = True
) -> list[str]:
    """Copies the rewritten tests and helpers into ``out``; returns the tests found."""
    out.mkdir(parents=True, exist_ok=True)
    found = []
    for name in HELPERS + tests:
        source = read_source(oneflow, tag, name)
        if source is None:
            print(f"not in that checkout: {TEST_DIR}/{name}", file=sys.stderr)
            continue
        (out / name).write_text(rewrite(source, cpu_only))
        if name in tests:
            found.append(name)
    return found


def run_pytest(out: pathlib.Path, tests: list[str], pytest_args: list[str]) -> int:
    """pytest on the copied tests, with jobflow importable and 8 CPU devices."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(out), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *tests, *pytest_args]
    return subprocess.run(cmd, cwd=out, env=env).returncode


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("oneflow", type=pathlib.Path, help="a OneFlow checkout or bare git directory")
    parser.add_argument(
        "tests", nargs="*", default=DEFAULT_TESTS, help="test files of oneflow/python/test/ops"
    )
    parser.add_argument("--tag", default=None, help="read from this tag of a git directory (e.g. v0.4.0)")
    parser.add_argument(
        "--device-num",
        type=int,
        default=1,
        help="ONEFLOW_TEST_DEVICE_NUM: which skip_unless_1n<d>d tests run",
    )
    parser.add_argument(
        "--keep-gpu", action="store_true", help="keep the GPU cases of arg_dict['device_type'] lists"
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=None, help="where to copy the tests (default: a temp dir)"
    )
    args = parser.parse_intermixed_args(argv)
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix="oneflow_tests_"))
    if out.resolve().is_relative_to(ROOT):
        parser.error("--out must be outside jobflow's repository (OneFlow's code is never copied into it)")
    tests = prepare(args.oneflow, args.tag, args.tests, out, cpu_only=not args.keep_gpu)
    if not tests:
        print("no tests found", file=sys.stderr)
        return 2
    print(f"running {len(tests)} OneFlow test files in {out}")
    os.environ["ONEFLOW_TEST_DEVICE_NUM"] = str(args.device_num)
    return run_pytest(out, tests, extra)


if __name__ == "__main__":
    sys.exit(main())

"""`jobflow schedule` on OneFlow's legacy schedulers shows exactly what a job computes
(their warmup runs on the absolute step), takes their own `warmup=`, and reports an
unwritable --plot in one line."""

import re

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.cli import main as cli
from jobflow._src.cli import schedule as schedule_cli

X = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32) * 0.01
Y = np.array([1.0, 2.0], np.float32) * 0.01


def _lrs_in_a_job(sched, n):
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 2)), y: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        loss = flow.math.square(flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y)
        flow.optimizer.SGD(sched).minimize(loss)
        return loss

    lrs = []
    for _ in range(n):
        train(X, Y)
        lrs.append(train.last_lr)
    return np.asarray(lrs, np.float32)


def _table(out: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in re.findall(r"│\s+(\d+) │\s+(\S+) │", out)}


@pytest.mark.parametrize(
    "argv, sched",
    [
        (
            ["CosineScheduler", "--warmup", "10"],
            flow.optimizer.CosineScheduler(0.1, 40, warmup=flow.optimizer.warmup.linear(10, 0)),
        ),
        (
            [
                "flow.optimizer.PolynomialScheduler",
                "--arg",
                "warmup=constant(8, 0.5)",
                "--arg",
                "end_learning_rate=0.01",
            ],
            flow.optimizer.PolynomialScheduler(0.1, 40, 0.01, warmup=flow.optimizer.warmup.constant(8, 0.5)),
        ),
        (
            ["optimizer.LinearCosineScheduler", "--arg", "warmup=flow.optimizer.warmup.linear(12, 0.25)"],
            flow.optimizer.LinearCosineScheduler(0.1, 40, warmup=flow.optimizer.warmup.linear(12, 0.25)),
        ),
    ],
    ids=["cosine-warmup", "polynomial-constant-warmup", "linear-cosine-arg-warmup"],
)
def test_the_cli_shows_what_the_job_computes(argv, sched, capsys):
    n = 40
    in_job = _lrs_in_a_job(sched, n)
    built = schedule_cli.build(
        argv[0],
        0.1,
        n,
        10 if "--warmup" in argv else 0,
        schedule_cli._parse_args(argv[2::2] if "--arg" in argv else []),
    )
    np.testing.assert_allclose(built.values(n), in_job, rtol=1e-6)
    np.testing.assert_allclose(sched.values(n), in_job, rtol=1e-6)
    assert cli.main(["schedule", *argv, "--steps", str(n), "--base-lr", "0.1"]) == 0
    rows = _table(capsys.readouterr().out)
    assert len(rows) >= 10 and max(rows) == n - 1
    for step, value in rows.items():
        assert value == pytest.approx(float(in_job[step]), rel=1e-5), step


def test_warmup_ends_where_the_job_says_and_the_curve_is_not_shifted():
    values = schedule_cli.build("CosineScheduler", 0.1, 100, 20, {}).values(100)
    assert values[0] == 0.0 and values[19] == pytest.approx(0.1 * 19 / 20)
    # decay on the absolute step: at step 50 the cosine has run 50 of 100 steps, not 30
    assert values[50] == pytest.approx(0.05, rel=1e-5)
    assert values[99] == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 99 / 100)), rel=1e-4)


def test_legacy_warmup_errors(capsys):
    assert cli.main(["schedule", "CosineScheduler", "--warmup", "5", "--arg", "warmup=linear(5, 0)"]) == 2
    assert "give its warmup once" in capsys.readouterr().out
    assert cli.main(["schedule", "CosineScheduler", "--arg", "warmup=cubic(5)"]) == 2
    out = capsys.readouterr().out
    assert "CosineScheduler(warmup) from --arg must be linear(steps, start_multiplier)" in out
    assert "got warmup='cubic(5)'" in out
    assert cli.main(["schedule", "CosineScheduler", "--arg", "step=5"]) == 2
    assert "did you mean 'steps'?" in capsys.readouterr().out


def test_plot_into_a_missing_directory_is_one_line_and_a_nonzero_exit(tmp_path, capsys):
    target = tmp_path / "missing" / "lr.png"
    assert cli.main(["schedule", "cosine", "--steps", "50", "--plot", str(target)]) == 2
    out = capsys.readouterr().out
    assert out.strip() == f"jobflow schedule: cannot write --plot {target}: no such directory {target.parent}"
    assert not target.parent.exists()
    assert cli.main(["schedule", "cosine", "--steps", "50", "--plot", str(tmp_path)]) == 2
    assert "it is a directory; give a .png file name" in capsys.readouterr().out

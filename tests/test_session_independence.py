"""A job's session state does not leak: compile() after clear_default_session() creates the
job's variables in the new session (so a checkpoint loads), and a job whose body raises
never blocks listing, saving or loading the other jobs' variables."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

X = np.ones((8, 4), np.float32)
Y = np.ones((8,), np.float32)


def _train_job():
    @flow.global_function(type="train")
    def train_job(x: tp.Numpy.Placeholder((None, 4)), y: tp.Numpy.Placeholder((None,))) -> tp.Numpy:
        w = flow.get_variable("w", shape=(4, 1), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w)[:, 0] - y))
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    return train_job


def _broken_job():
    @flow.global_function(type="predict")
    def broken(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:
        raise ValueError("a bug in the body")

    return broken


def test_compile_after_clear_creates_the_variables_and_a_checkpoint_loads(tmp_path):
    train_job = _train_job()
    for _ in range(3):
        train_job(X, Y)
    path = str(tmp_path / "c.safetensors")
    flow.checkpoint.save(path)
    trained = flow.get_all_variables()
    flow.clear_default_session()
    train_job.compile(X, Y)
    assert sorted(flow.get_all_variables()) == sorted(trained)
    assert flow.get_all_variables()["System-Train-TrainStep-train_job"] == 0
    report = flow.checkpoint.load(path)
    assert report.loaded == tuple(sorted(trained))
    for name, value in flow.get_all_variables().items():
        np.testing.assert_array_equal(value, trained[name], err_msg=name)
    train_job(X, Y)  # continues from the loaded state
    assert flow.get_all_variables()["System-Train-TrainStep-train_job"] == 4


def test_compile_without_arguments_after_clear_also_rebinds(tmp_path):
    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((2, 3))) -> tp.Numpy:
        return flow.matmul(x, flow.get_variable("v", (3, 1), initializer=flow.ones_initializer()))

    predict.compile()
    flow.clear_default_session()
    assert flow.get_all_variables() == {}
    predict.compile()
    assert list(flow.get_all_variables()) == ["v"]


def test_a_broken_job_does_not_block_saving_listing_or_loading(tmp_path):
    train_job = _train_job()
    train_job(X, Y)
    broken = _broken_job()
    path = str(tmp_path / "c.safetensors")
    with pytest.warns(
        UserWarning,
        match=r"job 'broken' was skipped: defining its variables raised ValueError: a bug in the body",
    ):
        names = sorted(flow.get_all_variables())
    assert names == ["System-Train-TrainStep-train_job", "w", "w-momentum"]
    with pytest.warns(UserWarning, match="'broken' was skipped"):
        flow.checkpoint.save(path)
    with pytest.warns(UserWarning, match="'broken' was skipped"):
        assert flow.checkpoint.describe(path) is not None and flow.checkpoint.load(path).loaded == tuple(
            names
        )
    with pytest.raises(ValueError, match="a bug in the body"):  # the job itself still reports its error
        broken(X)


def test_redefining_the_broken_job_fixes_it():
    _train_job()(X, Y)
    _broken_job()

    @flow.global_function(type="predict")
    def broken(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:  # same name: replaces it
        return x * 2.0

    assert sorted(flow.get_all_variables()) == ["System-Train-TrainStep-train_job", "w", "w-momentum"]

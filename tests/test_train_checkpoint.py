"""flow.train.CheckPoint: OneFlow v0.2's init / save / load over flow.checkpoint."""

import os

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp


def _define():
    @flow.global_function(type="train")
    def train_job(x: tp.Numpy.Placeholder((4, 3))) -> tp.Numpy:
        w = flow.get_variable("w", (3, 2), initializer=flow.random_normal_initializer())
        loss = flow.math.reduce_sum(flow.matmul(x, w) ** 2)
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    return train_job


def _values():
    return {k: np.array(v) for k, v in flow.get_all_variables().items()}


def test_init_save_load_round_trip(tmp_path):
    assert flow.train.CheckPoint is flow.train.CheckPoint  # the attribute exists
    job = _define()
    check_point = flow.train.CheckPoint()
    check_point.init()  # discovers the job: its variables exist with their initial values
    assert set(_values()) >= {"w", "w-momentum", "System-Train-TrainStep-train_job"}
    initial = _values()["w"]
    for _ in range(3):
        job(np.ones((4, 3), np.float32))
    trained = _values()
    path = str(tmp_path / "lenet_models_1")
    check_point.save(path)  # OneFlow's snapshot layout, as OneFlow's CheckPoint wrote it
    assert os.path.isdir(path) and os.path.isfile(os.path.join(path, "snapshot_done"))
    assert os.path.isfile(os.path.join(path, "w", "out"))
    with pytest.raises(FileExistsError, match="already exists"):
        check_point.save(path)
    check_point.save(path, overwrite=True)

    flow.clear_default_session()
    job = _define()
    check_point = flow.train.CheckPoint()
    report = check_point.load(path)
    assert sorted(report.loaded) == sorted(trained)
    assert all(_values()[k].tobytes() == trained[k].tobytes() for k in trained)
    assert not np.array_equal(trained["w"], initial)


def test_oneflow_format_and_bad_paths(tmp_path):
    job = _define()
    job(np.ones((4, 3), np.float32))
    saved = _values()
    check_point = flow.train.CheckPoint()
    check_point.save(str(tmp_path / "js"), format="jobflow")
    assert os.listdir(tmp_path / "js") == ["model.safetensors"]
    check_point.save(str(tmp_path / "of"))
    assert (tmp_path / "of" / "snapshot_done").exists()
    flow.clear_default_session()
    _define()
    check_point.load(str(tmp_path / "of"))
    assert _values()["w"].tobytes() == saved["w"].tobytes()
    with pytest.raises(TypeError, match=r"CheckPoint.save\(path\) must be a str; got PosixPath"):
        check_point.save(tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        check_point.load(str(tmp_path / "missing"))


def test_init_after_training_refuses_instead_of_keeping_trained_values():
    job = _define()
    flow.train.CheckPoint().init()
    job(np.ones((4, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"CheckPoint.init\(\): train jobs \['train_job'\] have already"):
        flow.train.CheckPoint().init()

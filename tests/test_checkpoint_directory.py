"""flow.checkpoint.save(path) writes a directory (path/model.safetensors), as OneFlow users
expect of a checkpoint path; a path ending in .safetensors is the file itself; old
single-file checkpoints still load."""

import os

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.cli import main as cli
from jobflow.checkpoint import CheckpointError

STEP = "System-Train-TrainStep-train_job"


def _define():
    @flow.global_function(type="train")
    def train_job(x: tp.Numpy.Placeholder((4, 3))) -> tp.Numpy:
        w = flow.get_variable("w", (3, 2), initializer=flow.random_normal_initializer())
        loss = flow.math.reduce_sum(flow.matmul(x, w) ** 2)
        flow.optimizer.Adam(0.1).minimize(loss)
        return loss

    return train_job


def _trained(steps=2):
    job = _define()
    for i in range(steps):
        job(np.full((4, 3), 0.1 * (i + 1), np.float32))
    return job


def _values():
    return {k: np.array(v) for k, v in flow.get_all_variables().items()}


def test_save_writes_a_directory_that_load_get_describe_and_inspect_read(tmp_path, capsys):
    _trained()
    saved = _values()
    path = tmp_path / "ckpt"
    flow.checkpoint.save(path)
    assert os.path.isdir(path) and os.listdir(path) == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no leftovers
    for where in (path, path / "model.safetensors", str(path)):
        got = flow.checkpoint.get(where)
        assert sorted(got) == sorted(saved)
        assert all(got[k].tobytes() == saved[k].tobytes() for k in saved)
    info = flow.checkpoint.describe(path, verify=True)
    assert info.format == "jobflow" and info.step_counters == {"train_job": 2} and info.problems == ()
    assert cli.main(["inspect", str(path), "--verify"]) == 0
    assert "verified: every variable is intact" in capsys.readouterr().out

    flow.clear_default_session()
    _define()
    report = flow.checkpoint.load(path)
    assert sorted(report.loaded) == sorted(saved)
    assert all(_values()[k].tobytes() == saved[k].tobytes() for k in saved)


def test_existing_empty_directory_and_overwrite(tmp_path):
    _trained(1)
    path = tmp_path / "model_save"
    path.mkdir()
    flow.checkpoint.save(path)  # an empty directory counts as nothing, as in OneFlow
    assert os.listdir(path) == ["model.safetensors"]
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        flow.checkpoint.save(path)
    first = (path / "model.safetensors").read_bytes()
    _define()(np.ones((4, 3), np.float32))
    flow.checkpoint.save(path, overwrite=True)  # directory replaced by a directory, atomically
    assert os.listdir(path) == ["model.safetensors"]
    assert (path / "model.safetensors").read_bytes() != first
    assert int(flow.checkpoint.get(path)[STEP]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_save"]


def test_dot_safetensors_path_is_a_single_file(tmp_path):
    _trained(1)
    path = tmp_path / "c.safetensors"
    flow.checkpoint.save(path)
    assert path.is_file()
    assert int(flow.checkpoint.get(path)[STEP]) == 1


def test_old_single_file_checkpoints_still_load_and_can_be_replaced(tmp_path):
    _trained(1)
    saved = _values()
    flow.checkpoint.save(tmp_path / "c.safetensors")
    old = tmp_path / "old_ckpt"  # a file without the suffix: what earlier versions wrote
    os.rename(tmp_path / "c.safetensors", old)
    assert old.is_file()
    got = flow.checkpoint.get(old)
    assert all(got[k].tobytes() == saved[k].tobytes() for k in saved)
    assert flow.checkpoint.describe(old).format == "jobflow"
    flow.checkpoint.load(old)
    flow.checkpoint.save(old, overwrite=True)  # a file replaced by a directory
    assert old.is_dir() and os.listdir(old) == ["model.safetensors"]
    assert flow.checkpoint.get(old)[STEP].tobytes() == saved[STEP].tobytes()


def test_hostile_model_file_is_refused(tmp_path):
    _trained(1)
    flow.checkpoint.save(tmp_path / "real")
    link = tmp_path / "link"
    link.mkdir()
    os.symlink(tmp_path / "real" / "model.safetensors", link / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model.safetensors is a symbolic link, not a regular file"):
        flow.checkpoint.get(link)
    nested = tmp_path / "nested"
    (nested / "model.safetensors").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"model.safetensors is a directory, not a regular file"):
        flow.checkpoint.load(nested)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"a directory without model.safetensors"):
        flow.checkpoint.get(empty)


def test_damage_inside_the_directory_is_named(tmp_path):
    _trained(1)
    path = tmp_path / "ckpt"
    flow.checkpoint.save(path)
    file = path / "model.safetensors"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        flow.checkpoint.load(path)

"""examples/data_parallel.py: LeNet on 4 of the 8 fake CPU devices prints its layout and learns."""

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn")


@pytest.mark.slow
def test_data_parallel_example(capsys):
    path = pathlib.Path(__file__).parents[1] / "examples" / "data_parallel.py"
    spec = importlib.util.spec_from_file_location("data_parallel_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    acc = module.main(["--epochs", "3", "--shard-optimizer-state"])
    out = capsys.readouterr().out
    assert "train_job runs on 4 devices: cpu:0 (process 0), cpu:1 (process 0), cpu:2" in out
    assert "split along axis 0 │ 16x1x8x8" in out  # the batch of 64: 16 images per device
    assert "dense1-weight-momentum" in out and "128x256" in out  # a quarter of the momentum buffer
    assert "trained 66 steps on 4 devices" in out
    assert acc >= 0.9

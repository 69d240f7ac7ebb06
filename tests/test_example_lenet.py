"""The README's main example: LeNet on sklearn digits must reach >= 95% test accuracy."""

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn")


@pytest.mark.slow
def test_lenet_example_reaches_95_percent():
    path = pathlib.Path(__file__).parents[1] / "examples" / "lenet.py"
    spec = importlib.util.spec_from_file_location("lenet_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    acc = module.main(["--epochs", "12"])
    assert acc >= 0.95


@pytest.mark.slow
def test_lenet_example_saves_and_resumes(tmp_path):
    import jobflow as flow

    path = pathlib.Path(__file__).parents[1] / "examples" / "lenet.py"
    spec = importlib.util.spec_from_file_location("lenet_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ckpt = tmp_path / "lenet.safetensors"
    args = ["--epochs", "2", "--batch-size", "2048"]  # one batch per epoch: one compile
    acc = module.main(args + ["--save", str(ckpt)])
    trained = {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}
    assert flow.checkpoint.describe(ckpt).step_counters == {"train_job": 2}
    flow.clear_default_session()
    # resuming a finished run trains nothing and evaluates the restored weights
    assert module.main(args + ["--resume", str(ckpt)]) == acc
    resumed = flow.get_all_variables()
    assert sorted(resumed) == sorted(trained)
    assert all(resumed[k].tobytes() == trained[k].tobytes() for k in trained)

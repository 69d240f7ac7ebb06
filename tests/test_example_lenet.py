"""The README's main example: LeNet on sklearn digits must reach >= 95% test accuracy, and
its --save / --resume continue an interrupted run bitwise."""

import importlib.util
import pathlib
import shutil

import pytest

pytest.importorskip("sklearn")


def load_example():
    path = pathlib.Path(__file__).parents[1] / "examples" / "lenet.py"
    spec = importlib.util.spec_from_file_location("lenet_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_lenet_example_reaches_95_percent():
    acc = load_example().main(["--epochs", "12"])
    assert acc >= 0.95


@pytest.mark.slow
def test_lenet_example_resumes_an_interrupted_run_bitwise(tmp_path, monkeypatch):
    import jobflow as flow

    module = load_example()
    ckpt, after_epoch_1 = tmp_path / "lenet_ckpt", tmp_path / "epoch1"  # checkpoints are directories
    save = flow.checkpoint.save

    def save_and_keep_the_first(*args, **kwargs):  # what a run killed after epoch 1 leaves
        save(*args, **kwargs)
        if not after_epoch_1.exists():
            shutil.copytree(ckpt, after_epoch_1)

    monkeypatch.setattr(flow.checkpoint, "save", save_and_keep_the_first)
    args = ["--epochs", "2", "--batch-size", "2048"]  # one batch per epoch: one compile
    acc = module.main(args + ["--save", str(ckpt)])
    expected = {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}
    assert flow.checkpoint.describe(after_epoch_1).step_counters == {"train_job": 1}

    flow.clear_default_session()
    assert module.main(args + ["--resume", str(after_epoch_1)]) == acc  # trains epoch 2 only
    resumed = flow.get_all_variables()
    assert int(resumed["System-Train-TrainStep-train_job"]) == 2
    assert sorted(resumed) == sorted(expected)
    assert all(resumed[k].tobytes() == expected[k].tobytes() for k in expected)


@pytest.mark.slow
def test_lenet_example_writes_tensorboard_curves(tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    module = load_example()
    module.main(["--epochs", "2", "--batch-size", "2048", "--logdir", str(tmp_path)])
    acc = ea.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"train_job/loss", "train_job/lr", "train_job/global_grad_norm"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("train_job/loss")] == [0, 1]

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

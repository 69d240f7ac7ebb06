"""examples/hybrid_parallel.py: the Wide & Deep model on 4 of the 8 fake CPU devices learns
and prints its layout."""

import importlib.util
import pathlib

import jobflow as flow


def _example():
    path = pathlib.Path(__file__).parents[1] / "examples" / "hybrid_parallel.py"
    spec = importlib.util.spec_from_file_location("hybrid_parallel_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hybrid_parallel_example_learns(capsys):
    example = _example()
    args = ["--devices", "4", "--epochs", "2", "--samples", "16384", "--vocab", "256", "--batch-size", "256"]
    log_loss = example.main(args)
    out = capsys.readouterr().out
    assert "train_job runs on 4 devices: cpu:0 (process 0), cpu:1 (process 0), cpu:2" in out
    assert "trained 128 steps on 4 devices" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    for name, piece in (
        ("deep-embedding", "64x16"),
        ("deep-embedding-v", "64x16"),
        ("wide-embedding", "64x1"),
    ):
        assert "split along axis 0" in rows[name] and piece in rows[name], rows[name]
    assert "split along axis 0" in rows["deep-hidden-weight"] and "64x72" in rows["deep-hidden-weight"]
    assert "replicated" in rows["deep-out-weight"]
    _, dense, clicks, truth = example.synthetic_clicks(16384 + 4 * 256, 256, 4, 0)
    held_out = clicks[16384:]
    rate_only = example._log_loss(held_out, held_out.mean())
    best = example._log_loss(held_out, truth[16384:])
    assert log_loss < rate_only - 0.1  # it learned the ids' effects ...
    assert log_loss < best + 0.08  # ... close to what the true probabilities give

    flow.clear_default_session()
    assert abs(example.main([*args[:1], "1", *args[2:]]) - log_loss) < 1e-4  # one device: the same
    assert "trained 128 steps on 1 devices" in capsys.readouterr().out

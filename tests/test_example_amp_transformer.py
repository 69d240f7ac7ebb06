"""examples/amp_transformer.py: a Flax Transformer encoder trained with float16 AMP and a
dynamic loss scale learns its generated task; the first steps overflow and are skipped."""

import importlib.util
import pathlib


def test_amp_transformer_example(capsys):
    path = pathlib.Path(__file__).parents[1] / "examples" / "amp_transformer.py"
    spec = importlib.util.spec_from_file_location("amp_transformer_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--steps", "150", "--warmup", "20", "--log-every", "50"])
    printed = capsys.readouterr().out
    assert "loss scale" in printed and "skipped for non-finite gradients" in printed
    # OneFlow's initial 2**30 overflows float16: ~15 halvings to fit, each a skipped call
    assert 10 <= out["skipped"] <= 20 and out["calls"] == 150 + out["skipped"]
    assert out["loss_scale"] < 2.0**20
    assert out["losses"][-1] < 0.5 * out["losses"][0]
    assert out["accuracy"] >= 0.6  # chance is about 1/8

"""The OneFlow v0.4 compatibility list: every exported name has one status, every name
marked supported / differs resolves under `import jobflow as flow`, and
docs/oneflow_compatibility.md is exactly what tools/gen_oneflow_compat.py writes."""

import importlib.util
import pathlib

import pytest

import jobflow as flow

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gen():
    pytest.importorskip("tomllib" if __import__("sys").version_info >= (3, 11) else "tomli")
    spec = importlib.util.spec_from_file_location(
        "gen_oneflow_compat", ROOT / "tools" / "gen_oneflow_compat.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_exported_name_has_exactly_one_status(gen):
    _, names = gen.read_exports()
    assert len(names) == len(set(names)) > 500
    table = gen.classify(names, gen.read_status())
    assert set(table) == set(names)
    assert all(note for kind, note in table.values() if kind != "supported")


def test_every_supported_name_resolves(gen):
    _, names = gen.read_exports()
    table = gen.classify(names, gen.read_status())
    assert gen.unresolved(table, flow) == []
    for must in (
        "nn.conv2d_transpose",
        "nn.compat_conv2d",
        "one_hot",
        "concat",
        "clip_by_value",
        "identity_n",
        "gather",
        "where",
    ):
        assert table[must][0] in ("supported", "differs"), must
    for must in (
        "layers.batch_normalization_relu",
        "layers.batch_normalization_add_relu",
        "nn.batch_normalization",
    ):
        assert table[must][0] == "supported", must


def test_regenerating_gives_the_committed_page(gen):
    assert gen.build(flow) == (ROOT / "docs" / "oneflow_compatibility.md").read_text()


def test_the_checks_catch_a_missing_status_and_an_unresolvable_name(gen):
    _, names = gen.read_exports()
    status = gen.read_status()
    status["supported"] = [n for n in status["supported"] if n != "one_hot"]
    with pytest.raises(ValueError, match="one_hot: no status"):
        gen.classify(names, status)
    status["supported"].append("one_hot")
    table = gen.classify(names, status)
    table["nn.no_such_op"] = ("supported", "")
    assert gen.unresolved(table, flow) == ["nn.no_such_op"]

"""The XLA compiler options jobflow compiles CPU steps with (jobflow/_src/runtime/xla_options.py):
convolutions on XLA's Eigen kernels instead of YNNPACK, unless the user's XLA_FLAGS set
the flag, the switch is off, or the devices are not CPUs."""

import dataclasses
import re

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import xla_options

FLAG = "xla_cpu_experimental_ynn_fusion_type"


@pytest.fixture
def switch():
    saved = dict(xla_options.ENABLED)
    yield xla_options.ENABLED
    xla_options.ENABLED.update(saved)


@dataclasses.dataclass
class _Device:
    platform: str


def _conv_job(name):
    @flow.global_function(type="predict", function_config=flow.FunctionConfig())
    def job(x: tp.Numpy.Placeholder((8, 32, 14, 14))) -> tp.Numpy:
        return flow.layers.conv2d(x, 16, 5, padding="SAME", name=f"{name}_conv", use_bias=False)

    return job


def _ynn_convolutions(text: str) -> int:
    """How many computations called by YNNPACK fusions hold a convolution."""
    called = set(
        re.findall(r'calls=%([\w.]+), backend_config=\{"fusion_config":\{"kind":"__ynn_fusion"', text)
    )
    bodies = {m.group(1): m.group(2) for m in re.finditer(r"(?ms)^%([\w.]+) .*?\{\n(.*?)^\}", text)}
    return sum("convolution(" in bodies.get(c, "") for c in called)


def test_cpu_devices_get_the_option(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    if not xla_options._supported(tuple(xla_options._CPU_OPTIONS.items())):
        pytest.skip("this jaxlib does not know the option (see test_an_unknown_option_is_left_out...)")
    options = xla_options.compiler_options([_Device("cpu"), _Device("cpu")])
    assert options == {FLAG: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


def test_an_unknown_option_is_left_out_and_jobs_still_compile(monkeypatch):
    """What a jaxlib without the option gets: XLA's defaults, no error."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(xla_options, "_CPU_OPTIONS", {"xla_cpu_no_such_option": "1"})
    assert xla_options.compiler_options([_Device("cpu")]) == {}
    flow.clear_default_session()
    x = np.ones((8, 32, 14, 14), np.float32)
    assert _conv_job("unknown")(x).shape == (8, 16, 14, 14)


def test_left_out_off_cpu_when_switched_off_or_set_by_the_user(monkeypatch, switch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert xla_options.compiler_options([_Device("gpu")]) == {}
    assert xla_options.compiler_options([_Device("cpu"), _Device("gpu")]) == {}
    assert xla_options.compiler_options([]) == {}
    monkeypatch.setenv("XLA_FLAGS", f"--{FLAG}=individual_convolution")
    assert xla_options.compiler_options([_Device("cpu")]) == {}
    monkeypatch.delenv("XLA_FLAGS")
    switch["eigen_cpu_conv"] = False
    assert xla_options.compiler_options([_Device("cpu")]) == {}


def test_convolutions_leave_ynnpack_and_values_stay(monkeypatch, switch):
    torch = pytest.importorskip("torch")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    x = np.random.default_rng(0).standard_normal((8, 32, 14, 14)).astype(np.float32)
    flow.clear_default_session()
    on = _conv_job("on")
    y_on = on(x)
    switch["eigen_cpu_conv"] = False
    off = _conv_job("off")
    w = np.random.default_rng(1).standard_normal((16, 32, 5, 5)).astype(np.float32)
    flow.load_variables({"on_conv-weight": w, "off_conv-weight": w})
    y_on, y_off = on(x), off(x)
    assert _ynn_convolutions(on.compiled_text()) == 0 and " convolution(" in on.compiled_text()
    if _ynn_convolutions(off.compiled_text()) == 0:
        pytest.skip("this jaxlib does not run convolutions on YNNPACK by default")
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=2).numpy()
    np.testing.assert_allclose(y_on, expected, rtol=1e-5, atol=2e-4)  # sums of 800 products of size ~30
    np.testing.assert_allclose(y_off, expected, rtol=1e-5, atol=2e-4)  # sums of 800 products of size ~30

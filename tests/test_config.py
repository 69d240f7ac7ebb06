"""function_config and flow.config: settings, validation, OneFlow compatibility flags."""

import numpy as np
import pytest

import jobflow as flow


def test_defaults_and_setters_chain():
    cfg = flow.function_config()
    assert cfg.settings["default_data_type"] == flow.float32
    assert cfg.settings["default_logical_view"].kind == "consistent"
    out = cfg.default_data_type(flow.float16).enable_auto_mixed_precision(True).seed(3)
    assert out is cfg
    assert cfg.settings["seed"] == 3 and cfg.settings["enable_auto_mixed_precision"] is True
    cfg.default_logical_view(flow.scope.mirrored_view())
    assert cfg.settings["default_logical_view"].kind == "mirrored"
    p = flow.scope.placement("cpu", "0:0-1")
    cfg.default_placement_scope(p)
    assert cfg.settings["default_placement_scope"] is p
    cfg.amp_dtype(flow.float16)
    assert cfg.settings["amp_dtype"] == np.float16


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda c: c.default_data_type(flow.int32), ValueError, "floating dtype"),
        (lambda c: c.default_data_type("notatype"), TypeError, "default_data_type"),
        (lambda c: c.default_logical_view("mirrored"), TypeError, "consistent_view"),
        (lambda c: c.default_placement_scope("0:0"), TypeError, "placement"),
        (lambda c: c.enable_auto_mixed_precision(1), TypeError, "True or False"),
        (lambda c: c.amp_dtype(flow.float32), ValueError, "float16 or flow.bfloat16"),
        (lambda c: c.seed(-1), ValueError, "int >= 0"),
        (lambda c: c.default_initializer_conf({"constant_conf": {}}), TypeError, "initializer"),
        (
            lambda c: c.enable_auto_mixed_precisoin(True),
            AttributeError,
            "did you mean 'enable_auto_mixed_precision'",
        ),
        (lambda c: c.train.primary_lr(0.1), AttributeError, "minimize"),
    ],
)
def test_invalid_settings_raise_naming_the_setting(call, exc, pattern):
    cfg = flow.function_config()
    before = dict(cfg.settings)
    with pytest.raises(exc, match=pattern):
        call(cfg)
    assert cfg.settings == before


def test_oneflow_runtime_flags_are_accepted_and_recorded():
    cfg = flow.function_config()
    cfg.enable_fuse_model_update_ops(True)
    cfg.cudnn_buf_limit_mbyte(2048)
    assert cfg.settings["enable_fuse_model_update_ops"] is True
    assert cfg.settings["cudnn_buf_limit_mbyte"] == 2048


def test_session_config_validation():
    with pytest.raises(ValueError, match="seed"):
        flow.config.seed(-3)
    with pytest.raises(ValueError, match="gpu_device_num"):
        flow.config.gpu_device_num(-1)
    with pytest.raises(ValueError, match="cpu_device_num"):
        flow.config.cpu_device_num(0)

"""``jobflow.core.*_pb2``: OneFlow's protobuf enums and messages that programs import,
with OneFlow v0.4's names and numbers, behaving as protoc-generated modules do."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.core.common.data_type_pb2 as data_type_util
import jobflow.core.job.initializer_conf_pb2 as initializer_conf_util
import jobflow.core.operator.op_conf_pb2 as op_conf_util
import jobflow.typing as tp

ONEFLOW_DATA_TYPES = {
    "kInvalidDataType": 0,
    "kChar": 1,
    "kFloat": 2,
    "kDouble": 3,
    "kInt8": 4,
    "kInt32": 5,
    "kInt64": 6,
    "kUInt8": 7,
    "kOFRecord": 8,
    "kFloat16": 9,
    "kTensorBuffer": 10,
}


def test_data_type_enum_has_oneflows_values():
    for name, number in ONEFLOW_DATA_TYPES.items():
        assert getattr(data_type_util, name) == number
        assert data_type_util.DataType.Value(name) == number
        assert data_type_util.DataType.Name(number) == name
    assert dict(data_type_util.DataType.items()) == ONEFLOW_DATA_TYPES
    with pytest.raises(ValueError):
        data_type_util.DataType.Value("kBogus")


def test_activation_type_enum():
    assert (op_conf_util.kNone, op_conf_util.kTanH, op_conf_util.kSigmoid, op_conf_util.kRelu) == (0, 1, 2, 3)
    assert op_conf_util.ActivationType.Name(3) == "kRelu"


def test_initializer_conf_is_a_real_message_with_oneflows_defaults():
    conf = initializer_conf_util.InitializerConf()
    assert conf.WhichOneof("type") is None
    conf.truncated_normal_conf.std = 0.5
    assert conf.WhichOneof("type") == "truncated_normal_conf"
    assert conf.truncated_normal_conf.mean == 0.0
    assert initializer_conf_util.TruncatedNormalInitializerConf().std == pytest.approx(0.05)
    conf.constant_conf.value = 3.0  # a oneof: setting another member clears the first
    assert conf.WhichOneof("type") == "constant_conf"
    again = initializer_conf_util.InitializerConf.FromString(conf.SerializeToString())
    assert again == conf and again.constant_conf.value == 3.0


def _variable(initializer, shape=(64, 256)):
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((1, 64))) -> tp.Numpy:
        return flow.matmul(x, flow.get_variable("w", shape, initializer=initializer))

    job(np.ones((1, 64), np.float32))
    return flow.get_all_variables()["w"].numpy()


def test_get_variable_takes_an_initializer_conf():
    conf = initializer_conf_util.InitializerConf()
    conf.constant_conf.value = 0.25
    np.testing.assert_array_equal(_variable(conf), np.full((64, 256), 0.25, np.float32))
    flow.clear_default_session()
    conf.truncated_normal_conf.std = 0.1
    w = _variable(conf)
    assert np.abs(w).max() <= 0.2 and 0.07 < w.std() < 0.1
    flow.clear_default_session()
    conf.xavier_conf.variance_norm = initializer_conf_util.kAverage
    conf.xavier_conf.data_format = "channels_first"
    w = _variable(conf)  # uniform, variance 1 / ((64 + 256) / 2)
    assert np.abs(w).max() <= np.sqrt(3 / 160) and w.var() == pytest.approx(1 / 160, rel=0.05)


def test_an_initializer_conf_without_a_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="InitializerConf with 'no initializer set'"):
        _variable(initializer_conf_util.InitializerConf())

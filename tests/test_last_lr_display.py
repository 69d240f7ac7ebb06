"""last_lr / last_info show the float32 the step used in its shortest form and compare
equal to that float32."""

import pickle

import numpy as np

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.core.dtypes import Float32Value


def test_last_lr_prints_short_and_equals_the_float32():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 2))) -> tp.Numpy:
        w = flow.get_variable("w", (2, 2), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(x * w)
        flow.optimizer.SGD(0.001).minimize(loss)
        return loss

    train(np.ones((2, 2), np.float32))
    lr = train.last_lr
    assert repr(lr) == str(lr) == f"{lr}" == "0.001" and f"{lr:.3e}" == "1.000e-03"
    assert lr == np.float32(0.001) and lr != 0.001 and isinstance(lr, float)
    info = train.last_info
    assert repr(info["lr"]) == "0.001" and info["step"] == 0 and type(info["step"]) is int
    assert type(info["skipped"]) is bool and repr(info["loss"]) == "4.0"
    assert str(info).startswith("{") and "0.0010000000474974513" not in str(info)


def test_float32_value_forms():
    for value, text in [
        (0.1 / 3.5, "0.028571429"),
        (2.0**30, "1073741824.0"),
        (1e-8, "1e-08"),
        (np.inf, "inf"),
    ]:
        v = Float32Value(np.float32(value))
        assert repr(v) == text and v == np.float32(value)
        assert pickle.loads(pickle.dumps(v)) == v
    assert type(Float32Value(0.5) * 2) is float

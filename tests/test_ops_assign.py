"""flow.assign writes a non-trainable variable when the train step ends (an exponential
moving average of a weight here); it refuses predict jobs, trainable variables and
arrays that are not variables."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp


def _ema_job(decay=0.5, assign=flow.assign):
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((4,))) -> tp.Numpy:
        w = flow.get_variable("w", (4,), initializer=flow.zeros_initializer())
        ema = flow.get_variable("ema", (4,), initializer=flow.zeros_initializer(), trainable=False)
        assign(ema, decay * ema + (1 - decay) * w)
        flow.optimizer.SGD(1.0, momentum=0.0).minimize(flow.math.reduce_sum(-w * x))
        return ema

    return train


@pytest.mark.parametrize("assign", [flow.assign, flow.system.assign])
def test_assign_keeps_an_ema_of_a_weight(assign):
    train = _ema_job(assign=assign)
    x = np.ones(4, np.float32)
    seen = [train(x) for _ in range(3)]  # w before each step: 0, 1, 2 (SGD on -sum(w))
    np.testing.assert_allclose(seen, [np.zeros(4), np.zeros(4), 0.5 * np.ones(4)])
    np.testing.assert_allclose(flow.get_all_variables()["ema"], 1.25 * np.ones(4))  # 0.5*0.5 + 0.5*2


def test_assign_refusals():
    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((4,))) -> tp.Numpy:
        v = flow.get_variable("v", (4,), initializer=flow.zeros_initializer(), trainable=False)
        flow.assign(v, x)
        return x

    with pytest.raises(ValueError, match="train job"):
        predict(np.ones(4, np.float32))

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((4,))) -> tp.Numpy:
        w = flow.get_variable("w", (4,), initializer=flow.zeros_initializer())
        flow.assign(w * 2, x)
        flow.optimizer.SGD(1.0).minimize(flow.math.reduce_sum(w * x))
        return x

    with pytest.raises(ValueError, match="get_variable returned"):
        train(np.ones(4, np.float32))

    @flow.global_function(type="train")
    def train2(x: tp.Numpy.Placeholder((4,))) -> tp.Numpy:
        w = flow.get_variable("w2", (4,), initializer=flow.zeros_initializer())
        flow.assign(w, x)
        flow.optimizer.SGD(1.0).minimize(flow.math.reduce_sum(w * x))
        return x

    with pytest.raises(ValueError, match="trainable"):
        train2(np.ones(4, np.float32))

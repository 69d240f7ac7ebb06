"""Small job builders shared by the tests."""

import numpy as np

import jobflow as flow
import jobflow.typing as tp


def linear_regression_jobs(lr=0.1, momentum=0.0, batch=8, dim=3, name_suffix=""):
    """A train job fitting y = x @ w (weight named 'w', zero-initialized) and a predict job."""

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((batch, dim)), y: tp.Numpy.Placeholder((batch,))) -> tp.Numpy:
        w = flow.get_variable("w", (dim,), initializer=flow.zeros_initializer())
        loss = flow.math.square(flow.matmul(x, flow.reshape(w, (dim, 1)))[:, 0] - y)
        flow.optimizer.SGD(lr, momentum=momentum).minimize(loss)
        return loss

    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((batch, dim))) -> tp.Numpy:
        w = flow.get_variable("w", (dim,), initializer=flow.zeros_initializer())
        return flow.matmul(x, flow.reshape(w, (dim, 1)))[:, 0]

    return train, predict


def data(batch=8, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, dim)).astype(np.float32)
    y = (x @ np.arange(1, dim + 1, dtype=np.float32)).astype(np.float32)
    return x, y

"""flow.watch / flow.watch_diff call their handlers with numpy values every step (the
forward value, and the loss gradient for the array watch_diff returns); profiler marks
are no-ops."""

import numpy as np

import jobflow as flow
import jobflow.typing as tp


def test_watch_and_watch_diff_see_values_and_gradients():
    seen, grads = [], []

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((4, 3))) -> tp.Numpy:
        w = flow.get_variable("w", (3,), initializer=flow.ones_initializer())
        h = x * flow.reshape(w, (1, 3))
        flow.watch(h, seen.append)
        h = flow.watch_diff(h, grads.append)
        loss = flow.math.reduce_sum(flow.math.square(h))
        flow.optimizer.SGD(0.0, momentum=0.0).minimize(loss)
        return loss

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    train(x)
    train(x)
    assert len(seen) == 2 and len(grads) == 2
    assert isinstance(seen[0], np.ndarray)
    np.testing.assert_allclose(seen[0], x)
    np.testing.assert_allclose(grads[1], 2 * x)


def test_watch_prints_with_a_prompt(capsys):
    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        flow.watch(x + 1, "x+1:")
        return x

    predict(np.array([1.0, 2.0], np.float32))
    assert "x+1: [2. 3.]" in capsys.readouterr().out


def test_profiler_marks_are_no_ops():
    x = np.ones(3)
    assert flow.profiler.nvtx_start(x, "a") is x and flow.profiler.nvtx_end(x, "a") is x
    assert flow.profiler.range_push("r") is None and flow.profiler.range_pop() is None

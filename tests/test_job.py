"""global_function: definition, compilation, trace counting, return annotations."""

import threading

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from tests.helpers import data, linear_regression_jobs


def test_job_is_named_after_the_function_and_registered():
    train, predict = linear_regression_jobs()
    assert (train.name, train.type) == ("train", "train")
    assert (predict.name, predict.type) == ("predict", "predict")
    assert predict.__doc__ is None and predict.__name__ == "predict"


def test_train_and_predict_share_weights():
    train, predict = linear_regression_jobs(lr=0.1)
    x, y = data()
    before = predict(x)
    assert np.all(before == 0)
    for _ in range(400):
        train(x, y)
    np.testing.assert_allclose(predict(x), x @ flow.get_all_variables()["w"].numpy(), rtol=1e-5)
    assert np.abs(predict(x) - y).max() < 0.05


def test_job_defined_after_another_job_ran():
    train, _ = linear_regression_jobs(lr=0.1)
    x, y = data()
    for _ in range(5):
        train(x, y)
    w = flow.get_all_variables()["w"].numpy()

    @flow.global_function(type="predict")
    def late(x: tp.Numpy.Placeholder((8, 3))) -> tp.Numpy:
        return flow.get_variable("w", (3,), initializer=flow.zeros_initializer()) * 1.0

    np.testing.assert_array_equal(late(x), w)


def test_redefining_a_job_name_replaces_it():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x + 1

    first = job

    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x + 2

    from jobflow._src.runtime.session import default_session

    assert default_session().jobs["job"] is job and job is not first
    np.testing.assert_array_equal(job(np.zeros(2, np.float32)), [2, 2])


def test_bare_decorator_defines_a_predict_job():
    @flow.global_function
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x * 3

    assert job.type == "predict"
    np.testing.assert_array_equal(job(np.ones(2, np.float32)), [3, 3])


def test_compile_ahead_then_call_does_not_retrace():
    train, _ = linear_regression_jobs()
    train.compile()
    assert train.num_traces == 1
    x, y = data()
    for _ in range(3):
        train(x, y)
    assert train.num_traces == 1
    assert "stablehlo" in train.lower_text() or "func.func" in train.lower_text()
    assert "HloModule" in train.compiled_text()


def test_compile_with_varying_dims_needs_examples():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((None, 2))) -> tp.Numpy:
        return x * 2

    with pytest.raises(ValueError, match="None dimensions"):
        job.compile()
    job.compile(np.zeros((3, 2), np.float32))
    assert job.num_traces == 1


def test_none_dimension_compiles_once_per_size():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((None, 3)), y: tp.Numpy.Placeholder((None,))) -> tp.Numpy:
        w = flow.get_variable("w", (3,), initializer=flow.zeros_initializer())
        loss = flow.math.square(flow.matmul(x, flow.reshape(w, (3, 1)))[:, 0] - y)
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
        return loss

    x, y = data(batch=10)
    for size in (4, 4, 2, 4, 2, 3):
        assert train(x[:size], y[:size]).shape == (size,)
    assert train.num_traces == 3
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 6


def test_inspection_before_compile_raises():
    train, _ = linear_regression_jobs()
    with pytest.raises(RuntimeError, match="not been compiled"):
        train.lower_text()
    with pytest.raises(RuntimeError, match="has not run"):
        _ = train.last_lr


def test_last_lr_of_predict_job_raises():
    _, predict = linear_regression_jobs()
    predict(data()[0])
    with pytest.raises(RuntimeError, match="predict job"):
        _ = predict.last_lr


def test_definition_errors():
    with pytest.raises(ValueError, match="'train' or 'predict'"):
        flow.global_function(type="eval")
    with pytest.raises(TypeError, match="function_config"):
        flow.global_function(type="train", function_config={"seed": 1})
    with pytest.raises(TypeError, match=r"argument 'x' must be annotated"):

        @flow.global_function()
        def bad(x) -> tp.Numpy:
            return x

    with pytest.raises(TypeError, match=r"\*args"):

        @flow.global_function()
        def bad2(*xs: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
            return xs[0]

    with pytest.raises(TypeError, match="default value"):

        @flow.global_function()
        def bad3(x: tp.Numpy.Placeholder((2,)) = None) -> tp.Numpy:
            return x

    with pytest.raises(TypeError, match="unsupported return annotation"):

        @flow.global_function()
        def bad4(x: tp.Numpy.Placeholder((2,))) -> int:
            return x


@pytest.mark.parametrize(
    "shape, match",
    [
        ([2, "a"], "non-negative ints or None"),
        (5, "must be a tuple"),
        ((2, -1), "non-negative ints or None"),
    ],
)
def test_placeholder_errors(shape, match):
    with pytest.raises((TypeError, ValueError), match=match):
        tp.Numpy.Placeholder(shape)


def _ret_job(annotation, body):
    def job(x: tp.Numpy.Placeholder((2,))):
        return body(x)

    job.__annotations__["return"] = annotation
    return flow.global_function()(job)


def test_return_numpy_tuple_list_dict_bundle():
    x = np.array([1.0, 2.0], np.float32)
    out = _ret_job(tp.Numpy, lambda x: x + 1)(x)
    assert isinstance(out, np.ndarray) and out.tolist() == [2, 3]
    a, b = _ret_job(tuple[tp.Numpy, tp.Numpy], lambda x: (x, x * 2))(x)
    assert b.tolist() == [2, 4]
    lst = _ret_job(list[tp.Numpy], lambda x: [x, x, x])(x)
    assert isinstance(lst, list) and len(lst) == 3
    d = _ret_job(dict[str, tp.Numpy], lambda x: {"a": x, "b": x.sum()})(x)
    assert d["b"] == 3.0 and isinstance(d["a"], np.ndarray)
    nested = _ret_job(tp.Bundle[tp.Numpy], lambda x: {"a": (x, [x])})(x)
    assert nested["a"][1][0].tolist() == [1, 2]
    assert _ret_job(None, lambda x: None)(x) is None


def test_return_structure_mismatch_is_reported():
    job = _ret_job(tuple[tp.Numpy, tp.Numpy], lambda x: x)
    with pytest.raises(TypeError, match="must be a tuple of arrays"):
        job(np.ones(2, np.float32))
    job = _ret_job(tuple[tp.Numpy, tp.Numpy], lambda x: (x, x, x))
    with pytest.raises(TypeError, match="2 elements"):
        job(np.ones(2, np.float32))
    job = _ret_job(None, lambda x: x)
    with pytest.raises(TypeError, match="'-> None'"):
        job(np.ones(2, np.float32))


def test_callback_return_runs_callback_later_in_order():
    job = _ret_job(tp.Callback[tp.Numpy], lambda x: x * 2)
    results, done = [], threading.Event()
    for i in range(5):
        job(np.full(2, i, np.float32))(lambda r: results.append(r[0]))
    job(np.zeros(2, np.float32))(lambda r: done.set())
    flow.sync_default_session()
    assert done.is_set()
    assert results == [0, 2, 4, 6, 8]
    with pytest.raises(TypeError, match="callable"):
        job(np.zeros(2, np.float32))(42)


def test_future_without_annotation():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((2,))):
        return x * 3

    fut = job(np.ones(2, np.float32))
    assert isinstance(fut, tp.Future)
    np.testing.assert_array_equal(fut.get(), [3, 3])
    with pytest.raises(RuntimeError, match="already taken"):
        fut.get()
    box = []
    job(np.ones(2, np.float32)).async_get(box.append)
    flow.sync_default_session()
    np.testing.assert_array_equal(box[0], [3, 3])


def test_variable_names_of_a_job():
    train, predict = linear_regression_jobs(momentum=0.9)
    train.compile()
    assert train.variable_names == ["System-Train-TrainStep-train", "w", "w-momentum"]
    predict.compile()
    assert predict.variable_names == ["w"]


def test_clear_default_session_resets_jobs_and_variables():
    train, predict = linear_regression_jobs(lr=0.1)
    x, y = data()
    train(x, y)
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 1
    flow.clear_default_session()
    assert flow.get_all_variables() == {}
    train(x, y)  # the job object still works and starts from scratch
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 1
    assert train.num_traces == 2


def test_caller_namespace_does_not_leak_into_the_job():
    _, predict = linear_regression_jobs()
    with flow.scope.namespace("outer"):
        predict(data()[0])
    names = set(flow.get_all_variables())
    assert "w" in names and not any(n.startswith("outer") for n in names)

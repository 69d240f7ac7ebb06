"""Input checking at every call: clear errors naming job, argument, expected and received;
same-kind casts done silently; a failed call changes nothing."""

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp


@pytest.fixture
def train():
    @flow.global_function(type="train")
    def train_job(
        images: tp.Numpy.Placeholder((4, 3), dtype=flow.float),
        labels: tp.Numpy.Placeholder((4,), dtype=flow.int32),
    ) -> tp.Numpy:
        logits = flow.layers.dense(images, 2, kernel_initializer=flow.ones_initializer(), name="fc")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        flow.optimizer.SGD(0.1).minimize(loss)
        return loss

    return train_job


X = np.ones((4, 3), np.float32)
Y = np.zeros(4, np.int32)


def _snapshot():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


@pytest.mark.parametrize(
    "args, kwargs, exc, pattern",
    [
        ((X,), {}, TypeError, r"job 'train_job' is missing argument\(s\) \['labels'\]"),
        ((X, Y, Y), {}, TypeError, r"job 'train_job' takes 2 arguments \(images, labels\); got 3"),
        ((X,), {"label": Y}, TypeError, r"has no argument 'label'"),
        ((X, Y), {"images": X}, TypeError, r"got argument 'images' twice"),
        (
            ([[1.0] * 3] * 4, Y),
            {},
            TypeError,
            r"argument 'images': expected a numpy array with shape \(4, 3\) dtype float32; got list",
        ),
        ((X, 3), {}, TypeError, r"argument 'labels': expected a numpy array"),
        (
            (np.ones((4, 3, 1), np.float32), Y),
            {},
            ValueError,
            r"argument 'images': expected rank 2 .* got shape \(4, 3, 1\) \(rank 3\)",
        ),
        (
            (np.ones((5, 3), np.float32), Y),
            {},
            ValueError,
            r"argument 'images': expected shape \(4, 3\) dtype float32; got shape \(5, 3\)",
        ),
        (
            (X, np.zeros(4, np.float32)),
            {},
            TypeError,
            r"argument 'labels': expected dtype int32; got float32",
        ),
        ((X.astype(np.int32), Y), {}, TypeError, r"argument 'images': expected dtype float32; got int32"),
        ((X, np.zeros(4, bool)), {}, TypeError, r"argument 'labels': expected dtype int32; got bool"),
    ],
)
def test_bad_inputs_raise_and_change_nothing(train, args, kwargs, exc, pattern):
    train(X, Y)
    before = _snapshot()
    with pytest.raises(exc, match=pattern):
        train(*args, **kwargs)
    after = _snapshot()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_bad_first_call_creates_no_variables(train):
    from jobflow._src.runtime.session import default_session

    with pytest.raises(ValueError):
        train(np.ones((5, 3), np.float32), Y)
    assert default_session().store == {}


def test_same_kind_casts_are_silent(train):
    out64 = train(X.astype(np.float64), Y.astype(np.int64))
    assert out64.dtype == np.float32
    flow.clear_default_session()
    out32 = train(X, Y)
    np.testing.assert_array_equal(out64, out32)
    traces = train.num_traces
    train(X, Y.astype(np.uint8))  # uint8 fits in int32
    train(X.astype(np.float16), Y)
    assert train.num_traces == traces  # casts happen before the signature is formed


def test_jax_arrays_and_keyword_arguments_are_accepted(train):
    train(images=jnp.asarray(X), labels=jnp.asarray(Y))
    train(X, labels=Y)
    assert flow.get_all_variables()["System-Train-TrainStep-train_job"] == 2


def test_scalar_placeholder():
    @flow.global_function()
    def job(s: tp.Numpy.Placeholder(())) -> tp.Numpy:
        return s * 2

    assert job(np.float32(3.0)) == 6.0
    with pytest.raises(ValueError, match="expected rank 0"):
        job(np.ones(1, np.float32))

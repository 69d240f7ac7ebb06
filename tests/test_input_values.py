"""Checks of argument values: narrowing integer casts always check the range;
``function_config().check_input_values(True)`` checks finite floats and sparse
cross-entropy labels. Errors name the argument, the first bad index and its value; the
store is unchanged (docs/reliability.md, "Input range checks")."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.errors import JobInputError

CLASSES = 3
STEP = "System-Train-TrainStep-train"


def classifier(check=True, label_dtype=flow.int32, batch=4):
    cfg = flow.function_config().check_input_values(check)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((batch, 2)), labels: tp.Numpy.Placeholder((batch,), dtype=label_dtype)
    ) -> tp.Numpy:
        w = flow.get_variable("w", (2, CLASSES), initializer=flow.ones_initializer())
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, flow.matmul(x, w))
        flow.optimizer.SGD(0.1).minimize(loss)
        return loss

    return train


def x(batch=4):
    return np.arange(batch * 2, dtype=np.float32).reshape(batch, 2) / 10


def snapshot():
    return {k: v.numpy().tobytes() for k, v in flow.get_all_variables().items()}


def test_int64_labels_that_fit_are_cast():
    train = classifier(check=False)
    train(x(), np.array([0, 1, 2, 1], np.int64))
    assert int(flow.get_all_variables()[STEP]) == 1


@pytest.mark.parametrize("value", [2**32 + 1, 2**31, -(2**31) - 1])
def test_narrowing_integer_casts_check_the_range(value):
    train = classifier(check=False)
    train(x(), np.zeros(4, np.int32))
    before = snapshot()
    labels = np.array([0, 1, value, 1], np.int64)  # 2**32 + 1 would wrap to class 1
    with pytest.raises(JobInputError, match=rf"argument 'labels': value {value} at index \(2,\).*int32"):
        train(x(), labels)
    assert snapshot() == before


def test_narrowing_into_a_small_placeholder_dtype():
    @flow.global_function(type="predict")
    def pred(ids: tp.Numpy.Placeholder((2, 2), dtype=flow.int8)) -> tp.Numpy:
        return ids

    assert pred(np.array([[0, 127], [-128, 2]], np.int32)).dtype == np.int8
    with pytest.raises(
        JobInputError, match=r"'ids': value 128 at index \(1, 0\).*int8 \(range \[-128, 127\]\)"
    ):
        pred(np.array([[0, 127], [128, -129]], np.int32))
    with pytest.raises(JobInputError, match=r"'ids': value 300 at index \(0, 1\).*uint8"):
        pred2 = _uint8_job()
        pred2(np.array([[0, 300], [1, 2]], np.uint16))


def _uint8_job():
    @flow.global_function(type="predict")
    def pred2(ids: tp.Numpy.Placeholder((2, 2), dtype=flow.uint8)) -> tp.Numpy:
        return ids

    return pred2


@pytest.mark.parametrize("bad, index", [(-1, 1), (CLASSES, 3)])
def test_labels_outside_the_classes_are_refused(bad, index):
    train = classifier()
    good = np.array([0, 1, 2, 1], np.int32)
    train(x(), good)
    before = snapshot()
    labels = good.copy()
    labels[index] = bad
    if index == 1:
        labels[3] = -5  # a later bad label: only the first is named
    match = rf"argument 'labels': label {bad} at index \({index},\) is outside \[0, {CLASSES}\)"
    for _ in range(2):  # the checked path and the fast path of a known signature
        with pytest.raises(JobInputError, match=match):
            train(x(), labels)
    assert snapshot() == before
    train(x(), good)
    assert int(flow.get_all_variables()[STEP]) == 2


def test_non_finite_floats_are_refused():
    train = classifier()
    good = np.array([0, 1, 2, 1], np.int32)
    train(x(), good)
    before = snapshot()
    for value in (np.nan, np.inf, -np.inf):
        bad = x()
        bad[2, 1] = value
        with pytest.raises(
            JobInputError, match=rf"argument 'x': value {value} at index \(2, 1\) is not finite"
        ):
            train(bad, good)
    assert snapshot() == before


def test_without_the_switch_values_are_not_checked():
    train = classifier(check=False)
    train(x(), np.array([0, 1, 2, -1], np.int32))  # trains (as OneFlow did)
    assert int(flow.get_all_variables()[STEP]) == 1


def test_run_steps_and_jax_arrays_are_checked():
    import jax.numpy as jnp

    train = classifier()
    labels = np.array([[0, 1, 2, 1], [0, 1, 7, 1]], np.int32)
    with pytest.raises(JobInputError, match=r"label 7 at index \(1, 2\)"):
        train.run_steps(np.stack([x(), x()]), labels)
    with pytest.raises(JobInputError, match=r"label 7 at index \(2,\)"):
        train(jnp.asarray(x()), jnp.asarray(labels[1]))
    assert int(flow.get_all_variables()[STEP]) == 0


def test_labels_computed_in_the_body_are_not_checked_but_arguments_are():
    cfg = flow.function_config().check_input_values(True)

    @flow.global_function(type="predict", function_config=cfg)
    def pred(
        x: tp.Numpy.Placeholder((4, 3)), labels: tp.Numpy.Placeholder((4, 1), dtype=flow.int32)
    ) -> tp.Numpy:
        direct = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, x)  # (4, 1): squeezed
        derived = flow.nn.sparse_softmax_cross_entropy_with_logits(flow.reshape(labels, (4,)), x)
        return direct + derived

    good = np.array([[0], [1], [2], [0]], np.int32)
    assert pred(np.zeros((4, 3), np.float32), good).shape == (4,)
    with pytest.raises(JobInputError, match=r"label 3 at index \(3, 0\)"):
        pred(np.zeros((4, 3), np.float32), np.array([[0], [1], [2], [3]], np.int32))


def test_the_setting_takes_a_bool():
    with pytest.raises(TypeError, match="check_input_values expects True or False"):
        flow.function_config().check_input_values(1)

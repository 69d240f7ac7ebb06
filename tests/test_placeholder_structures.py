"""Placeholder arguments beyond one array: ``Tuple[...]`` of placeholders (OneFlow's tuple
arguments) and ``tp.Numpy.Placeholder`` arguments of a mirrored-view job, whose batch is
split evenly over the devices."""

# ruff: noqa: UP006, UP035 - OneFlow programs annotate with typing.Tuple

from typing import Tuple

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

A = np.arange(6, dtype=np.float32).reshape(2, 3)
B = np.ones((1, 3), np.int32)


def test_a_tuple_argument_takes_a_tuple_of_arrays():
    @flow.global_function()
    def job(
        pair: Tuple[tp.Numpy.Placeholder((2, 3)), tp.Numpy.Placeholder((1, 3), dtype=flow.int32)],
        scale: tp.Numpy.Placeholder((1, 1)),
    ) -> tp.Numpy:
        x, y = pair
        return (x + flow.cast(y, flow.float)) * scale

    want = (A + 1) * 2
    np.testing.assert_array_equal(job((A, B), np.array([[2.0]], np.float32)), want)
    np.testing.assert_array_equal(job([A, B], scale=np.array([[2.0]], np.float32)), want)
    with pytest.raises(flow.errors.JobInputError, match=r"'pair': expected a tuple of 2 arrays"):
        job(A, np.array([[2.0]], np.float32))
    with pytest.raises(flow.errors.JobInputError, match=r"pair\[1\]"):
        job((A, A), np.array([[2.0]], np.float32))


def test_nested_tuple_arguments():
    @flow.global_function()
    def job(t: Tuple[tp.Numpy.Placeholder((2, 3)), Tuple[tp.Numpy.Placeholder((2, 3))]]) -> tp.Numpy:
        return t[0] - t[1][0]

    np.testing.assert_array_equal(job((A, (A * 3,))), -2 * A)


def test_an_unsupported_argument_annotation_is_a_definition_error():
    with pytest.raises(flow.errors.JobDefinitionError, match="Tuple"):

        @flow.global_function()
        def job(t: Tuple[tp.Numpy.Placeholder((2, 3)), ...]) -> tp.Numpy:
            return t[0]


def _mirrored_cfg(n):
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())
    return cfg.default_placement_scope(flow.scope.placement("cpu", f"0:0-{n - 1}"))


def test_a_numpy_placeholder_in_the_mirrored_view_is_split_over_the_devices():
    x = np.arange(24, dtype=np.float32).reshape(8, 3)

    @flow.global_function(function_config=_mirrored_cfg(4))
    def job(x: tp.Numpy.Placeholder((8, 3)), extra: tp.ListNumpy.Placeholder((3,))) -> tp.ListNumpy:
        return flow.math.reduce_sum(x, axis=0) + extra

    extras = [np.full((3,), 10.0 * i, np.float32) for i in range(4)]
    out = job(x, extras)
    for i, got in enumerate(out):
        np.testing.assert_array_equal(got, x[2 * i : 2 * i + 2].sum(0) + 10.0 * i)


def test_mirrored_training_on_a_split_numpy_batch_equals_the_consistent_view():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)

    def body(x):
        w = flow.get_variable("w", (4, 1), initializer=flow.constant_initializer(0.5))
        loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w) - 1.0))
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
        return loss

    @flow.global_function(type="train")
    def consistent(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:
        return body(x)

    consistent(x)
    want = flow.get_all_variables()["w"].numpy()
    flow.clear_default_session()

    @flow.global_function(type="train", function_config=_mirrored_cfg(4))
    def consistent(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:
        return body(x)

    consistent(x)
    np.testing.assert_allclose(flow.get_all_variables()["w"].numpy(), want, rtol=1e-6)


def test_a_batch_that_does_not_split_evenly_in_the_mirrored_view_is_an_input_error():
    @flow.global_function(function_config=_mirrored_cfg(4))
    def job(x: tp.Numpy.Placeholder((None, 3))) -> tp.ListNumpy:
        return x

    with pytest.raises(flow.errors.JobInputError, match="does not divide across the job's 4 devices"):
        job(np.zeros((6, 3), np.float32))

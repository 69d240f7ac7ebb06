"""Results of jobs without a return annotation: OneFlow's ``LocalBlob`` API.

``job(x).get()`` gives what the body returned, each array a ``Blob``: a numpy array
with ``.numpy()``, ``.numpy_list()`` and ``.numpy(i)`` (one array per device in the
mirrored view); ``async_get(cb)`` passes the same object to ``cb``. ``tp.Callback[T]``
and ``tp.Bundle[T]`` results are converted as ``T`` says.
"""

import threading

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.core.blob import Blob

X = np.arange(24, dtype=np.float32).reshape(8, 3)


def _mirrored_cfg(n=4):
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())
    return cfg.default_placement_scope(flow.scope.placement("cpu", f"0:0-{n - 1}"))


def test_get_returns_blobs_with_numpy_in_the_bodys_nesting():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((8, 3))):
        return {"double": x * 2, "parts": (x[:2], flow.math.reduce_sum(x))}

    out = job(X).get()
    assert isinstance(out["double"], Blob) and isinstance(out["parts"], tuple)
    np.testing.assert_array_equal(out["double"].numpy(), X * 2)
    assert type(out["double"].numpy()) is np.ndarray
    np.testing.assert_array_equal(out["parts"][0].numpy_list()[0], X[:2])
    assert out["parts"][1].numpy(0) == X.sum() and out["parts"][1].parallel_num() == 1
    assert out["double"].is_dynamic is False
    np.testing.assert_array_equal(out["double"] + 1, X * 2 + 1)  # still a numpy array


def test_async_get_passes_the_same_blobs_to_the_callback():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((8, 3))):
        return x + 1

    got, done = [], threading.Event()
    job(X).async_get(lambda r: (got.append(r), done.set()))
    assert done.wait(60)
    assert isinstance(got[0], Blob)
    np.testing.assert_array_equal(got[0].numpy(), X + 1)


def test_callback_results_follow_their_annotation():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((8, 3))) -> tp.Callback[tp.Numpy]:
        return x * 3

    got, done = [], threading.Event()
    job(X)(lambda r: (got.append(r), done.set()))
    assert done.wait(60)
    assert type(got[0]) is np.ndarray
    np.testing.assert_array_equal(got[0], X * 3)


def test_mirrored_blob_numpy_list_has_one_array_per_device():
    @flow.global_function(function_config=_mirrored_cfg())
    def job(x: tp.ListNumpy.Placeholder((2, 3))):
        return flow.math.reduce_sum(x)

    parts = [X[2 * i : 2 * i + 2] for i in range(4)]
    out = job(parts).get()
    sums = [p.sum() for p in parts]
    np.testing.assert_array_equal(out.numpy(), sums)  # per-device scalars concatenated
    assert [float(a) for a in out.numpy_list()] == sums
    assert out.numpy(2) == sums[2] and out.parallel_num() == 4
    with pytest.raises(IndexError, match="4 device part"):
        out.numpy(4)


def test_bundle_of_list_numpy_gives_per_device_lists():
    @flow.global_function(function_config=_mirrored_cfg())
    def job(x: tp.ListNumpy.Placeholder((2, 3))) -> tp.Bundle[tp.ListNumpy]:
        return {"x": x, "s": [flow.math.reduce_sum(x)]}

    parts = [X[2 * i : 2 * i + 2] for i in range(4)]
    out = job(parts)
    assert len(out["x"]) == 4
    for got, want in zip(out["x"], parts):
        np.testing.assert_array_equal(got, want)
    assert [float(a) for a in out["s"][0]] == [p.sum() for p in parts]


def test_bundle_of_another_type_is_a_definition_error():
    with pytest.raises(flow.errors.JobDefinitionError, match="Bundle"):

        @flow.global_function()
        def job(x: tp.Numpy.Placeholder((8, 3))) -> tp.Bundle[tp.Callback[tp.Numpy]]:
            return x

"""get_variable, namespaces, sharing, initializers, get_all_variables / load_variables."""

import math
import zlib

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime.session import default_session


def _predict(body, shape=(2,)):
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder(shape)) -> tp.Numpy:
        return body(x)

    return job


def test_full_names_join_namespaces_with_dashes():
    def body(x):
        with flow.scope.namespace("enc"):
            a = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
            with flow.scope.namespace("block"):
                b = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        return x * a * b

    _predict(body)(np.ones(2, np.float32))
    assert sorted(flow.get_all_variables()) == ["enc-block-w", "enc-w"]


def test_same_name_within_a_job_returns_same_variable_and_reuse_false_raises():
    def body(x):
        a = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        b = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        return x * a + b

    np.testing.assert_array_equal(_predict(body)(np.ones(2, np.float32)), [2, 2])
    flow.clear_default_session()

    def body2(x):
        flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        return flow.get_variable("w", (2,), initializer=flow.ones_initializer(), reuse=False)

    with pytest.raises(ValueError, match="already exists in job 'job' and reuse=False"):
        _predict(body2)(np.ones(2, np.float32))


def test_conflicting_definitions_name_both():
    def body(x):
        flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        return flow.get_variable("w", (3,), initializer=flow.ones_initializer())

    with pytest.raises(ValueError, match=r"'w' is defined twice in job 'job'.*\(2,\).*\(3,\)"):
        _predict(body)(np.ones(2, np.float32))


def test_conflict_across_jobs_names_both_and_changes_nothing():
    _predict(lambda x: x * flow.get_variable("w", (2,), initializer=flow.ones_initializer()))(
        np.ones(2, np.float32)
    )

    @flow.global_function()
    def other(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        flow.get_variable("fresh", (2,), initializer=flow.ones_initializer())
        return flow.get_variable("w", (2,), dtype=flow.int32, initializer=flow.ones_initializer())

    with pytest.raises(
        ValueError,
        match=r"'w' is already defined with shape \(2,\) dtype float32 \(job 'job' "
        r"at test_variables.py:\d+\); now requested with shape \(2,\) dtype int32 "
        r"\(job 'other' at test_variables.py:\d+\)",
    ):
        other(np.ones(2, np.float32))
    assert "fresh" not in default_session().store


def test_get_variable_argument_errors():
    cases = [
        (lambda: flow.get_variable("w", (2,)), ValueError, "needs an initializer"),
        (
            lambda: flow.get_variable("w", None, initializer=flow.ones_initializer()),
            ValueError,
            "needs a shape",
        ),
        (
            lambda: flow.get_variable("w", ("a",), initializer=flow.ones_initializer()),
            TypeError,
            "tuple of ints",
        ),
        (
            lambda: flow.get_variable("", (2,), initializer=flow.ones_initializer()),
            ValueError,
            "non-empty string",
        ),
        (lambda: flow.get_variable("w", (2,), initializer=3), TypeError, "must be callable"),
        (
            lambda: flow.get_variable("w", (2,), initializer=flow.ones_initializer(), regularizer=0.1),
            TypeError,
            "regularizer",
        ),
    ]
    for make, exc, pattern in cases:
        flow.clear_default_session()
        with pytest.raises(exc, match=pattern):
            _predict(lambda x, make=make: make() * x)(np.ones(2, np.float32))
    with pytest.raises(RuntimeError, match="inside the body"):
        flow.get_variable("w", (2,), initializer=flow.ones_initializer())


def test_default_data_type_and_initializer_conf():
    cfg = flow.function_config()
    cfg.default_data_type(flow.float16)
    cfg.default_initializer_conf(flow.constant_initializer(0.5))

    @flow.global_function(function_config=cfg)
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return flow.get_variable("w", (2,))

    out = job(np.ones(2, np.float32))
    assert out.dtype == np.float16 and out.tolist() == [0.5, 0.5]


def test_initialization_is_deterministic_from_seed_and_name():
    def values(seed, names):
        flow.clear_default_session()
        flow.config.seed(seed)

        def body(x):
            for n in names:
                flow.get_variable(n, (50,), initializer=flow.random_normal_initializer())
            return x

        _predict(body)(np.ones(2, np.float32))
        return {k: v.numpy() for k, v in flow.get_all_variables().items()}

    a = values(1, ["a", "b"])
    b = values(1, ["b", "a"])  # creation order does not matter
    c = values(2, ["a", "b"])
    np.testing.assert_array_equal(a["a"], b["a"])
    np.testing.assert_array_equal(a["b"], b["b"])
    assert not np.array_equal(a["a"], a["b"])
    assert not np.array_equal(a["a"], c["a"])
    expected = np.random.default_rng([1, zlib.crc32(b"a")]).normal(0.0, 1.0, 50).astype(np.float32)
    np.testing.assert_array_equal(a["a"], expected)


def test_initializer_seed_and_job_seed():
    cfg = flow.function_config().seed(7)

    @flow.global_function(function_config=cfg)
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        flow.get_variable("a", (20,), initializer=flow.random_normal_initializer())
        flow.get_variable("b", (20,), initializer=flow.random_normal_initializer(seed=3))
        return x

    job(np.ones(2, np.float32))
    v = flow.get_all_variables()
    np.testing.assert_array_equal(
        v["a"], np.random.default_rng([7, zlib.crc32(b"a")]).normal(size=20).astype(np.float32)
    )
    np.testing.assert_array_equal(
        v["b"], np.random.default_rng([3, zlib.crc32(b"b")]).normal(size=20).astype(np.float32)
    )


def _init(initializer, shape):
    return initializer(shape, np.float64, np.random.default_rng(0))


def test_initializer_statistics():
    n = (400, 500)
    x = _init(flow.random_normal_initializer(1.0, 2.0), n)
    assert abs(x.mean() - 1.0) < 0.02 and abs(x.std() - 2.0) < 0.02
    x = _init(flow.truncated_normal_initializer(0.5, 0.1), n)
    assert np.abs(x - 0.5).max() < 0.2 and abs(x.mean() - 0.5) < 0.002
    assert abs(x.std() - 0.1 * 0.8796256610342398) < 0.001
    x = _init(flow.random_uniform_initializer(-2, 3), n)
    assert x.min() >= -2 and x.max() < 3 and abs(x.mean() - 0.5) < 0.02
    x = _init(flow.xavier_uniform_initializer(), n)  # dense (units=400, in=500)
    limit = math.sqrt(6 / (400 + 500))
    assert np.abs(x).max() <= limit and np.abs(x).max() > 0.99 * limit
    x = _init(flow.xavier_normal_initializer(), n)
    assert abs(x.std() - math.sqrt(2 / 900)) < 0.001
    # conv weight (F=64, C=32, 3, 3): fan_in = 32*9, fan_out = 64*9
    x = _init(flow.variance_scaling_initializer(2.0, "fan_in", "random_normal"), (64, 32, 3, 3))
    assert abs(x.std() - math.sqrt(2 / 288)) < 0.003
    x = _init(flow.variance_scaling_initializer(1.0, "fan_out", "truncated_normal"), (64, 32, 3, 3))
    assert (
        abs(x.std() - math.sqrt(1 / 576)) < 0.002 and np.abs(x).max() < 2 * math.sqrt(1 / 576) / 0.8796 + 1e-9
    )
    x = _init(flow.kaiming_initializer(nonlinearity="relu"), (64, 32, 3, 3))
    assert abs(x.std() - math.sqrt(2) / math.sqrt(288)) < 0.003
    x = _init(
        flow.kaiming_initializer(
            distribution="random_uniform", nonlinearity="leaky_relu", negative_slope=0.2
        ),
        n,
    )
    std = math.sqrt(2 / 1.04) / math.sqrt(500)
    assert np.abs(x).max() <= math.sqrt(3) * std and abs(x.std() - std) < 0.001
    assert np.all(_init(flow.constant_initializer(2.5), (3,)) == 2.5)
    assert np.all(_init(flow.zeros_initializer(), (3,)) == 0) and np.all(
        _init(flow.ones_initializer(), (3,)) == 1
    )


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: flow.random_normal_initializer(stddev=0), "stddev"),
        (lambda: flow.random_uniform_initializer(1, 1), "minval < maxval"),
        (lambda: flow.variance_scaling_initializer(mode="fan_sideways"), "mode"),
        (lambda: flow.variance_scaling_initializer(distribution="cauchy"), "distribution"),
        (lambda: flow.kaiming_initializer(nonlinearity="swish"), "nonlinearity"),
        (lambda: flow.random_normal_initializer(seed=-1), "seed"),
        (lambda: flow.constant_initializer("x"), "number"),
        (lambda: flow.regularizers.l2(-1.0), "l2"),
    ],
)
def test_initializer_and_regularizer_argument_errors(make, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        make()


def test_load_variables_checks_everything_and_loads_nothing_on_error():
    _predict(
        lambda x: (
            x * flow.get_variable("w", (2,), initializer=flow.ones_initializer())
            + flow.get_variable("b", (2,), initializer=flow.zeros_initializer())
        )
    )(np.ones(2, np.float32))
    with pytest.raises(ValueError) as err:
        flow.load_variables(
            {"w": np.full(2, 5.0, np.float32), "b": np.zeros(3, np.float32), "zzz": np.zeros(1)},
            ignore_mismatch=False,
        )
    msg = str(err.value)
    assert "loaded nothing" in msg and "unknown variables" in msg and "zzz" in msg
    assert "b: expected shape (2,) dtype float32, got shape (3,) dtype float32" in msg
    np.testing.assert_array_equal(flow.get_all_variables()["w"], [1, 1])
    with pytest.raises(ValueError, match="dtype float32, got shape \\(2,\\) dtype float64"):
        flow.load_variables({"w": np.zeros(2)})
    flow.load_variables({"w": np.full(2, 5.0, np.float32), "zzz": 1})  # unknown ignored
    np.testing.assert_array_equal(flow.get_all_variables()["w"], [5, 5])
    with pytest.raises(TypeError, match="dict"):
        flow.load_variables([("w", 1)])


def _aligned(values, align=64):
    """A float32 copy of ``values`` whose data starts on an ``align``-byte boundary: the
    arrays that ``jax.device_put`` on the CPU would use in place."""
    values = np.asarray(values, np.float32)
    raw = np.empty(values.size + align, np.float32)
    start = (-raw.ctypes.data % align) // 4
    out = raw[start : start + values.size].reshape(values.shape)
    out[...] = values
    assert out.ctypes.data % align == 0
    return out


def test_loaded_and_initial_values_are_copies_of_the_callers_arrays():
    kept = _aligned(np.full(4096, 2.0))

    def kept_initializer(shape, dtype, rng):  # returns an array its caller keeps
        return kept

    job = _predict(
        lambda x: (
            x * flow.get_variable("w", (4096,), initializer=flow.ones_initializer())
            + flow.get_variable("v", (4096,), initializer=kept_initializer)
        ),
        shape=(4096,),
    )
    ones = np.ones(4096, np.float32)
    np.testing.assert_array_equal(job(ones), 3.0)
    kept[:] = 100.0  # the initializer's caller changes its array: v keeps its initial value
    values = _aligned(np.full(4096, 5.0))
    flow.load_variables({"w": values})
    values[:] = -1.0  # the caller reuses its buffer after loading
    np.testing.assert_array_equal(flow.get_all_variables()["w"], 5.0)
    np.testing.assert_array_equal(flow.get_all_variables()["v"], 2.0)
    np.testing.assert_array_equal(job(ones), 7.0)


def test_load_before_first_call_initializes_jobs_first():
    job = _predict(lambda x: x * flow.get_variable("w", (2,), initializer=flow.ones_initializer()))
    flow.load_variables({"w": np.full(2, 3.0, np.float32)})
    np.testing.assert_array_equal(job(np.ones(2, np.float32)), [3, 3])


def test_get_all_variables_values_have_numpy_method():
    _predict(lambda x: x * flow.get_variable("w", (2,), initializer=flow.ones_initializer()))(
        np.ones(2, np.float32)
    )
    w = flow.get_all_variables()["w"]
    assert type(w.numpy()) is np.ndarray and w.mean() == 1.0


def test_non_trainable_variables_are_not_updated():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        a = flow.get_variable("a", (2,), initializer=flow.ones_initializer())
        frozen = flow.get_variable("frozen", (2,), initializer=flow.ones_initializer(), trainable=False)
        loss = flow.math.reduce_sum(x * a * frozen)
        flow.optimizer.SGD(0.5, momentum=0.0).minimize(loss)
        return loss

    train(np.ones(2, np.float32))
    v = flow.get_all_variables()
    np.testing.assert_array_equal(v["frozen"], [1, 1])
    np.testing.assert_allclose(v["a"], [0.5, 0.5])

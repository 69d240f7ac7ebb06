"""``flow.distribute``: the distribute objects, their checks and how get_variable, dense and
placement take them (the layouts' effect on jobs is tested in tests/test_distribute.py)."""

import warnings

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.graph import distribute as dist_impl
from jobflow._src.runtime import session as session_impl


def test_split_broadcast_auto_are_oneflows_names_with_their_sbp_strings():
    assert flow.distribute.split(1).axis == 1
    assert flow.distribute.split(1) == flow.distribute.split(1) != flow.distribute.split(0)
    assert [
        d.sbp() for d in (flow.distribute.split(2), flow.distribute.broadcast(), flow.distribute.auto())
    ] == [
        "S(2)",
        "B",
        "",
    ]
    for d in (flow.distribute.split(0), flow.distribute.broadcast(), flow.distribute.auto()):
        flow.distribute.assert_is_valid_distribute(d)  # no error


@pytest.mark.parametrize("axis", [1.0, "0", True, None])
def test_split_rejects_a_non_int_axis_naming_it(axis):
    with pytest.raises(TypeError, match=f"axis={axis!r}"):
        flow.distribute.split(axis)


def test_split_rejects_a_negative_axis():
    with pytest.raises(ValueError, match="axis=-1"):
        flow.distribute.split(-1)


def test_assert_is_valid_distribute_names_the_bad_value():
    with pytest.raises(TypeError, match="'S\\(0\\)'"):
        flow.distribute.assert_is_valid_distribute("S(0)")


def test_as_layout_takes_oneflows_parallel_distribution_lists_and_strings():
    s0, b = flow.distribute.split(0), flow.distribute.broadcast()
    assert dist_impl.as_layout("f") == ()
    assert dist_impl.as_layout("f", distribute=s0) == (s0,)
    assert dist_impl.as_layout("f", parallel_distribution=["B", "S(0)"]) == (b, s0)
    assert dist_impl.as_layout("f", parallel_distribution="S(0),B") == (s0, b)
    assert dist_impl.as_layout("f", parallel_distribution=[b, s0]) == (b, s0)
    assert dist_impl.as_layout("f", distribute=[b, s0]) == (b, s0)
    with pytest.raises(ValueError, match="not both"):
        dist_impl.as_layout("f", s0, [b])
    with pytest.raises(TypeError, match=r"parallel_distribution\[1\].*'S\(x\)'"):
        dist_impl.as_layout("f", parallel_distribution=["B", "S(x)"])
    with pytest.raises(TypeError, match="one or two"):
        dist_impl.as_layout("f", parallel_distribution=[b, b, b])


def test_deprecated_strategies_are_the_views_and_warn():
    with pytest.warns(DeprecationWarning, match="mirrored_view"):
        view = flow.distribute.mirrored_strategy()
    assert view == flow.scope.mirrored_view()
    with pytest.warns(DeprecationWarning, match="consistent_view"):
        assert flow.distribute.consistent_strategy() == flow.scope.consistent_view()
    assert flow.distribute.consistent_strategy_enabled() and not flow.distribute.mirrored_strategy_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with flow.distribute.mirrored_strategy():
            assert flow.distribute.mirrored_strategy_enabled()
            assert flow.scope.mirrored_view_enabled() and not flow.scope.consistent_view_enabled()
    assert flow.scope.consistent_view_enabled()


def test_a_mirrored_jobs_body_sees_the_mirrored_view_enabled():
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())
    seen = []

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.ListNumpy.Placeholder((2,))) -> tp.ListNumpy:
        seen.append(flow.distribute.mirrored_strategy_enabled())
        return x * 2

    out = job([np.ones(2, np.float32)])
    np.testing.assert_array_equal(out[0], [2, 2])
    assert seen and all(seen)


def _spec_of(build, placement=None):
    """The VariableSpecs in the store after a predict job running ``build`` was called."""
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.Numpy.Placeholder((4, 6))) -> tp.Numpy:
        return build(x)

    job(np.ones((4, 6), np.float32))
    return session_impl.default_session().specs


def test_get_variable_records_its_distribute_and_parallel_distribution():
    def build(x):
        init = flow.ones_initializer()
        a = flow.get_variable("a", (6, 4), initializer=init, distribute=flow.distribute.split(1))
        b = flow.get_variable("b", (6, 4), initializer=init, parallel_distribution=["B", "S(0)"])
        c = flow.get_variable("c", (6, 4), initializer=init)
        return x @ (a + b + c)

    specs = _spec_of(build, flow.scope.placement("cpu", "0:0-3", (2, 2)))
    assert specs["a"].distribute == (flow.distribute.split(1),)
    assert specs["b"].distribute == (flow.distribute.broadcast(), flow.distribute.split(0))
    assert specs["c"].distribute == ()


@pytest.mark.parametrize(
    "model_distribute, weight, bias",
    [
        (None, (), ()),
        (flow.distribute.broadcast(), (flow.distribute.broadcast(),), (flow.distribute.broadcast(),)),
        (flow.distribute.split(0), (flow.distribute.split(0),), (flow.distribute.split(0),)),
        (flow.distribute.split(1), (flow.distribute.split(1),), (flow.distribute.broadcast(),)),
    ],
)
def test_dense_model_distribute_lays_out_weight_and_bias(model_distribute, weight, bias):
    specs = _spec_of(
        lambda x: flow.layers.dense(
            x, 4, kernel_initializer=flow.ones_initializer(), model_distribute=model_distribute, name="d"
        )
    )
    assert specs["d-weight"].distribute == weight
    assert specs["d-bias"].distribute == bias


def test_get_variable_rejects_a_split_axis_the_shape_lacks_and_creates_nothing():
    def build(x):
        w = flow.get_variable(
            "w", (6, 3), initializer=flow.ones_initializer(), distribute=flow.distribute.split(5)
        )
        return x @ w

    with pytest.raises(ValueError, match=r"get_variable\('w'\).*split\(5\).*\(6, 3\)"):
        _spec_of(build)
    assert "w" not in session_impl.default_session().store


def test_get_variable_rejects_a_distribute_of_a_wrong_type():
    def build(x):
        w = flow.get_variable("w", (6, 3), initializer=flow.ones_initializer(), distribute="split")
        return x @ w

    with pytest.raises(TypeError, match=r"get_variable\('w'\) distribute.*'split'"):
        _spec_of(build)
    assert "w" not in session_impl.default_session().store


def test_dense_rejects_an_unsupported_model_distribute():
    with pytest.raises(ValueError, match=r"model_distribute=flow.distribute.split\(2\)"):
        _spec_of(lambda x: flow.layers.dense(x, 4, model_distribute=flow.distribute.split(2)))


@pytest.mark.parametrize("hierarchy", [(2, 2, 1), (0, 4), "2,2", (2.0, 2), [True, 4]])
def test_placement_rejects_a_bad_hierarchy_naming_it(hierarchy):
    with pytest.raises(ValueError, match="hierarchy="):
        flow.scope.placement("cpu", "0:0-3", hierarchy)


def test_placement_hierarchy_must_multiply_to_the_device_count():
    p = flow.scope.placement("cpu", "0:0-3", (3, 2))
    with pytest.raises(ValueError, match="names 4 devices, but the hierarchy has 6"):
        p.devices()
    mesh = flow.scope.placement("cpu", "0:0-3", [2, 2]).mesh()
    assert mesh.axis_names == ("data", "model") and mesh.devices.shape == (2, 2)
    assert flow.scope.placement("cpu", "0:0-3", (4,)).mesh().axis_names == ("data",)


def test_prelu_model_distribute_is_alphas_distribute():
    specs = _spec_of(lambda x: flow.layers.prelu(x, model_distribute=flow.distribute.split(0), name="p"))
    assert specs["p-alpha"].distribute == (flow.distribute.split(0),)


def test_cast_to_current_logical_view_returns_its_input_in_either_view():
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())

    @flow.global_function(type="predict", function_config=cfg)
    def mirrored(x: tp.ListNumpy.Placeholder((2,))) -> tp.ListNumpy:
        return flow.cast_to_current_logical_view(x) + 1

    @flow.global_function(type="predict")
    def consistent(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return flow.cast_to_current_logical_view(x) * 3

    np.testing.assert_array_equal(mirrored([np.arange(2, dtype=np.float32)])[0], [1, 2])
    np.testing.assert_array_equal(consistent(np.arange(2, dtype=np.float32)), [0, 3])
    with pytest.raises(RuntimeError, match="inside the body"):
        flow.cast_to_current_logical_view(np.ones(2))

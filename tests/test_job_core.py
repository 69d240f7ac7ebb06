"""The job core: one plan per input signature, typed errors, pure steps, fresh scope stacks."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.graph import scope as scope_impl
from jobflow._src.runtime import plan as plan_impl
from jobflow._src.runtime import session as session_impl
from jobflow._src.runtime import step_guard as step_guard_impl
from jobflow._src.runtime.definition import JobDefinition
from jobflow.errors import JobDefinitionError, JobInputError


def _train_job():
    cfg = flow.function_config().skip_nonfinite_steps(True)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((None, 3))) -> tp.Numpy:
        w = flow.get_variable("w", (1, 3), initializer=flow.ones_initializer())
        loss = flow.math.reduce_mean(flow.nn.dropout(x * w, rate=0.5))
        flow.optimizer.Adam(0.1).minimize(loss)
        return loss

    return train


def test_each_signature_is_planned_once_with_one_guard(monkeypatch):
    built = []
    for_job = step_guard_impl.StepGuard.for_job.__func__
    monkeypatch.setattr(
        step_guard_impl.StepGuard,
        "for_job",
        classmethod(lambda cls, *a: built.append(a[0]) or for_job(cls, *a)),
    )
    train = _train_job()
    x4, x2 = np.ones((4, 3), np.float32), np.ones((2, 3), np.float32)
    for _ in range(3):
        train(x4)
    train.run_steps(np.stack([x4, x4]))  # same per-step shapes: the same plan
    assert built == ["train"] and train.num_discovery_traces == 1
    train(x2)
    assert built == ["train", "train"] and train.num_discovery_traces == 2
    assert train.num_traces == 3  # (4, 3), run_steps K=2 on (4, 3), (2, 3)
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 6


def test_the_plan_names_the_state_the_step_writes_and_reads():
    train = _train_job()
    train.compile(np.ones((4, 3), np.float32))
    (plan,) = train._plans.values()
    writes = {
        "w",
        "w-m",
        "w-v",
        "System-RNG-train",
        "System-Train-TrainStep-train",
        "System-Train-SkippedSteps-train",
        "System-Train-ConsecutiveSkippedSteps-train",
    }
    assert set(plan.mutable) >= writes and plan.mutable == sorted(plan.mutable)
    assert set(plan.mutable).isdisjoint(plan.readonly)
    assert sorted(plan.mutable + plan.readonly) == train.variable_names
    assert set(plan.shardings) == set(train.variable_names)
    assert plan.guard is train._guard and plan.guard.skips


def test_a_predict_job_writes_only_its_rng_key():
    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((4, 3))) -> tp.Numpy:
        w = flow.get_variable("w", (1, 3), initializer=flow.ones_initializer())
        return flow.nn.dropout(x * w, rate=0.5)

    predict.compile()
    (plan,) = predict._plans.values()
    assert plan.mutable == ["System-RNG-predict"] and plan.readonly == ["w"]
    assert plan.guard is None and plan.optimizer_plans == []


def test_input_errors_are_job_input_errors_and_change_nothing():
    train = _train_job()
    train(np.ones((4, 3), np.float32))
    before = flow.get_all_variables()
    bad = [
        ((np.ones((4, 2), np.float32),), {}),  # shape
        ((np.ones((4, 3), np.int32),), {}),  # dtype kind
        (([1.0, 2.0, 3.0],), {}),  # type
        ((), {}),  # missing
        ((np.ones((4, 3), np.float32),), {"y": 1}),  # unknown name
    ]
    for args, kwargs in bad:
        with pytest.raises(JobInputError, match="job 'train'"):
            train(*args, **kwargs)
    with pytest.raises(JobInputError, match="run_steps"):
        train.run_steps(np.ones((0, 4, 3), np.float32))
    after = flow.get_all_variables()
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_definition_errors_are_job_definition_errors():
    with pytest.raises(JobDefinitionError, match="must be annotated"):

        @flow.global_function()
        def no_placeholder(x):
            return x

    with pytest.raises(JobDefinitionError, match="'train' or 'predict'"):
        flow.global_function(type="eval")

    @flow.global_function(type="train")
    def no_minimize(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x

    with pytest.raises(JobDefinitionError, match="does not call Optimizer.minimize"):
        no_minimize(np.ones(2, np.float32))
    assert dict(session_impl.default_session().store) == {}


def test_a_definition_reads_the_signature_once():
    def job(x: tp.Numpy.Placeholder((None, 2)), y: tp.Numpy.Placeholder((3,), dtype=flow.int32)) -> tp.Numpy:
        return x

    d = JobDefinition(job, "predict", flow.function_config())
    assert [name for name, _ in d.placeholders] == ["x", "y"]
    assert d.waits and not d.is_train and d.static_shapes() is None
    x, y = d.check_inputs((np.ones((5, 2), np.float64),), {"y": np.arange(3, dtype=np.int64)})
    assert (x.dtype, y.dtype) == (np.float32, np.int32)  # same-kind values are cast


def test_fresh_stacks_empties_and_restores_the_callers_scopes():
    with flow.scope.namespace("outer"), flow.scope.consistent_view():
        with scope_impl.fresh_stacks():
            assert flow.scope.current_namespace() == ""
            with flow.scope.namespace("inner"):
                assert flow.scope.current_namespace() == "inner"
        assert flow.scope.current_namespace() == "outer"
    assert flow.scope.current_namespace() == ""


def test_rng_key_data_is_a_pure_function_of_seed_and_job_name():
    a, b = plan_impl.rng_key_data(0, "train"), plan_impl.rng_key_data(0, "train")
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint32 and a.shape == (2,)
    assert not np.array_equal(a, plan_impl.rng_key_data(0, "predict"))
    assert not np.array_equal(a, plan_impl.rng_key_data(1, "train"))


def test_a_slot_that_conflicts_with_a_variable_creates_nothing():
    @flow.global_function(type="predict")
    def other(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x + flow.get_variable("w-m", (2,), initializer=flow.zeros_initializer())

    other(np.ones(2, np.float32))
    train = _train_job()  # Adam on w (1, 3): its slot w-m has shape (1, 3)
    with pytest.raises(ValueError, match="'w-m' is already defined"):
        train(np.ones((4, 3), np.float32))
    assert sorted(session_impl.default_session().store) == ["w-m"]  # not even w


def test_a_variable_named_like_its_own_slot_is_a_definition_error():
    @flow.global_function(type="train")
    def clash(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        m = flow.get_variable("w-m", (3,), initializer=flow.zeros_initializer(), trainable=False)
        loss = flow.math.reduce_sum(w * x) + flow.math.reduce_sum(m)
        flow.optimizer.Adam(0.1).minimize(loss)
        return loss

    with pytest.raises(JobDefinitionError, match="'w-m' is defined with shape"):
        clash(np.ones(2, np.float32))
    assert dict(session_impl.default_session().store) == {}

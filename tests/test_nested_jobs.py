"""A job defined, compiled or called inside another job's body raises ``JobDefinitionError``
before anything is stored; the session stays usable (docs/reliability.md, "Failed calls
change nothing")."""

import jax
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.errors import JobDefinitionError

X = np.ones((2,), np.float32)


def inner_job():
    @flow.global_function(type="train")
    def inner(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        v = flow.get_variable("v", (2,), initializer=flow.ones_initializer())
        flow.optimizer.SGD(0.1).minimize(flow.math.reduce_sum(v * x))
        return v

    return inner


@pytest.mark.parametrize("how", ["call", "call_numpy", "compile", "define"])
def test_jobs_inside_a_job_body_are_refused_and_nothing_is_stored(how, tmp_path):
    inner = inner_job()

    @flow.global_function(type="predict")
    def outer(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        if how == "call":
            inner(x)
        elif how == "call_numpy":
            inner(X)
        elif how == "compile":
            inner.compile()
        else:
            inner_job()
        return x * 2

    with pytest.raises(JobDefinitionError, match="inside the body of job 'outer'"):
        outer(X)
    # outer is still registered, broken: listing variables skips it and says why (it never
    # blocks the other jobs' state; tests/test_session_independence.py)
    with pytest.warns(UserWarning, match=r"job 'outer' was skipped: .*inside the body of job 'outer'"):
        flow.get_all_variables()

    @flow.global_function(type="predict")
    def outer(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:  # the fixed job replaces it
        return x * 2

    values = flow.get_all_variables()  # works: no tracers in the store
    flow.checkpoint.save(tmp_path / "ckpt")
    assert int(values["System-Train-TrainStep-inner"]) == 0
    inner(X)  # the inner job still runs on its own
    assert int(flow.get_all_variables()["System-Train-TrainStep-inner"]) == 1


def test_a_job_called_inside_jax_jit_is_refused():
    inner = inner_job()
    with pytest.raises(JobDefinitionError, match="traced JAX value"):
        jax.jit(lambda x: inner(x))(X)
    inner(X)
    assert int(flow.get_all_variables()["System-Train-TrainStep-inner"]) == 1

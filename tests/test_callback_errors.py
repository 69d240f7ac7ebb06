"""Result callbacks (``tp.Callback``, ``Future.async_get``): an exception a callback raises
is re-raised as ``CallbackError`` (chained, with its traceback) at the next job call or
``sync_default_session()``; ``checkpoint.save()`` and ``sync_default_session()`` inside a
callback work and never deadlock (docs/reliability.md, "Callbacks and errors")."""

import concurrent.futures
import os
import subprocess
import sys
import textwrap
import traceback

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.errors import CallbackError, JobflowError

X = np.ones((2,), np.float32)
STEP = "System-Train-TrainStep-train"


def callback_job():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Callback[tp.Numpy]:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        flow.optimizer.SGD(1.0, momentum=0.0).minimize(flow.math.reduce_sum(w * x))
        return w

    return train


def failing(value):
    raise KeyError("boom in the callback")


def within(seconds, fn):
    """``fn()``'s result, or a test failure if it does not return in ``seconds`` (a deadlock)."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(fn).result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"did not return within {seconds} s (deadlock)")
    finally:
        pool.shutdown(wait=False)


def test_an_exception_in_a_callback_is_raised_at_sync_with_its_traceback():
    train = callback_job()
    train(X)(failing)
    with pytest.raises(CallbackError, match="KeyError") as info:
        flow.sync_default_session()
    cause = info.value.__cause__
    assert isinstance(cause, KeyError) and info.value.errors == [cause]
    assert isinstance(info.value, (JobflowError, RuntimeError))
    frames = [f.name for f in traceback.extract_tb(cause.__traceback__)]
    assert "failing" in frames  # the callback's own frame is kept
    flow.sync_default_session()  # raised once


def test_an_exception_in_a_callback_is_raised_at_the_next_call_which_runs_nothing():
    train = callback_job()
    train(X)(failing)
    flow.get_all_variables()  # reads do not raise it
    _wait_for_callbacks()
    step = int(flow.get_all_variables()[STEP])
    with pytest.raises(CallbackError) as info:
        train(X)
    assert isinstance(info.value.__cause__, KeyError)
    assert int(flow.get_all_variables()[STEP]) == step  # the refused call did not run
    train(X)(lambda w: None)  # and the next one runs
    flow.sync_default_session()
    assert int(flow.get_all_variables()[STEP]) == step + 1


def _wait_for_callbacks():
    """Waits for the queued callbacks without re-raising (the session's own wait)."""
    from jobflow._src.runtime import session as _session

    _session.default_session().sync()


def test_nothing_is_lost_every_callback_runs_and_every_error_is_kept():
    train = callback_job()
    ran = []
    first, second, third = train(X), train(X), train(X)  # all calls before any callback
    first(failing)
    second(lambda w: ran.append(w.copy()))
    third(lambda w: 1 / 0)
    _wait_for_callbacks()
    with pytest.raises(CallbackError, match="and 1 more") as info:
        flow.sync_default_session()
    assert [type(e) for e in info.value.errors] == [KeyError, ZeroDivisionError]
    np.testing.assert_array_equal(ran[0], [-1.0, -1.0])  # the callback after the failing one ran


def test_future_async_get_errors_are_raised_too():
    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((2,))):
        return x * 2

    predict(X).async_get(failing)
    with pytest.raises(CallbackError):
        flow.sync_default_session()
    assert predict(X).get().tolist() == [2.0, 2.0]


def test_save_and_sync_inside_a_callback_work(tmp_path):
    train = callback_job()
    done = []

    def save_in_callback(w):
        flow.sync_default_session()
        flow.checkpoint.save(tmp_path / "ckpt")
        done.append(w.copy())

    def body():
        train(X)(save_in_callback)
        flow.sync_default_session()

    within(60, body)
    assert len(done) == 1
    saved = flow.checkpoint.get(tmp_path / "ckpt")
    assert int(saved[STEP]) == 1 and saved["w"].tolist() == [-1.0, -1.0]


def test_a_job_call_inside_a_callback_works():
    train = callback_job()

    @flow.global_function(type="predict")
    def read(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return flow.get_variable("w", (2,), initializer=flow.zeros_initializer()) * x

    got = []
    within(60, lambda: (train(X)(lambda w: got.append(read(X))), flow.sync_default_session()))
    assert got[0].tolist() == [-1.0, -1.0]
    first, second = train(X), train(X)
    first(failing)
    second(lambda w: got.append(read(X)))  # runs although an error is pending
    with pytest.raises(CallbackError) as info:
        within(60, flow.sync_default_session)
    assert [type(e) for e in info.value.errors] == [KeyError]  # the caller's thread gets it
    assert got[1].tolist() == [-3.0, -3.0]


def test_clear_default_session_raises_what_is_left_after_clearing():
    train = callback_job()
    train(X)(failing)
    with pytest.raises(CallbackError):
        flow.clear_default_session()
    assert flow.get_all_variables() == {}  # cleared all the same


def test_errors_never_re_raised_are_printed_at_exit():
    program = textwrap.dedent(
        """
        import numpy as np
        import jobflow as flow
        import jobflow.typing as tp

        @flow.global_function(type="predict")
        def job(x: tp.Numpy.Placeholder((2,))) -> tp.Callback[tp.Numpy]:
            return x

        def cb(value):
            raise ValueError("lost at exit")

        job(np.ones(2, np.float32))(cb)
        """
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120
    )
    assert "ValueError: lost at exit" in out.stderr and "result callbacks raised" in out.stderr

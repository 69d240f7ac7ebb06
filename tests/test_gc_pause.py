"""``core.gc_pause.paused``: the collector is off inside, back to its old state after,
also when pauses nest, overlap across threads or raise."""

import gc
import threading

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.core import gc_pause


@pytest.fixture(autouse=True)
def _restore_gc():
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_disables_and_restores():
    gc.enable()
    with gc_pause.paused():
        assert not gc.isenabled()
        with gc_pause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()


def test_a_collector_the_user_disabled_stays_disabled():
    gc.disable()
    with gc_pause.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_error_inside_still_restores():
    gc.enable()
    with pytest.raises(ValueError, match="inside"), gc_pause.paused():
        raise ValueError("inside")
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_enable_once_both_end():
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def other():
        with gc_pause.paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    with gc_pause.paused():
        pass
    assert not gc.isenabled()  # the other thread's pause is still running
    release.set()
    t.join(10)
    assert gc.isenabled()


def _job(name):
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((4, 3))) -> tp.Numpy:
        w = flow.get_variable(f"{name}_w", (1, 3), initializer=flow.ones_initializer())
        loss = flow.math.reduce_mean(x * w)
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
        return loss

    return train


def test_a_job_s_first_call_leaves_the_collector_as_it_was():
    gc.enable()
    _job("a")(np.ones((4, 3), np.float32))
    assert gc.isenabled()
    gc.disable()
    _job("b")(np.ones((4, 3), np.float32))
    assert not gc.isenabled()

"""Device memory of a job's state: the store holds the only copy of every variable and
optimizer slot (state is donated and updated in place, initial slot values are not kept,
and nothing survives clear_default_session). The expectation is jax.live_arrays()."""

import gc

import jax
import numpy as np

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime.session import default_session


def _adam_job():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((4, 64)), y: tp.Numpy.Placeholder((4,), dtype=flow.int32)) -> tp.Numpy:
        h = flow.layers.dense(
            x, 128, activation=flow.nn.relu, name="h", kernel_initializer=flow.xavier_uniform_initializer()
        )
        logits = flow.layers.dense(h, 3, name="o", kernel_initializer=flow.xavier_uniform_initializer())
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.Adam(0.01).minimize(loss)
        return loss

    return train


def _big_live_arrays(min_bytes=4096):
    gc.collect()
    return [a for a in jax.live_arrays() if a.nbytes >= min_bytes]


def test_the_store_holds_the_only_copy_of_variables_and_slots():
    before = {id(a) for a in _big_live_arrays()}
    job = _adam_job()
    x, y = np.ones((4, 64), np.float32), np.zeros(4, np.int32)
    for _ in range(3):
        job(x, y)
    store = default_session().store
    in_store = {id(a) for a in store.values()}
    extra = [(a.shape, a.dtype) for a in _big_live_arrays() if id(a) not in in_store and id(a) not in before]
    assert extra == []  # e.g. no second set of Adam moments from their initialization
    assert {n for n, a in store.items() if a.nbytes >= 4096} == {"h-weight", "h-weight-m", "h-weight-v"}


def test_clearing_the_session_frees_the_state_the_job_kept():
    before = {id(a) for a in _big_live_arrays()}
    job = _adam_job()
    job(np.ones((4, 64), np.float32), np.zeros(4, np.int32))
    flow.clear_default_session()
    assert [a.shape for a in _big_live_arrays() if id(a) not in before] == []
    job(np.ones((4, 64), np.float32), np.zeros(4, np.int32))  # the job still works in the new session
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 1

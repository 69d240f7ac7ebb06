"""Thread safety: calls of one job, of jobs sharing variables, and whole-store reads and
writes (``get_all_variables``, ``checkpoint.save`` / ``load``) from several threads run in
some serial order (docs/reliability.md, "Thread safety").

The train job's update is exact in float32 (integer values, lr 1): thread ``t`` only moves
``w[t]``, by -1 per call, so every call's output and the final state are known whatever
the interleaving, and a lost or doubled update, a read of a donated buffer or a torn
snapshot shows as a wrong number or an exception.
"""

import sys
import threading

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

THREADS, CALLS = 4, 300
STEP = "System-Train-TrainStep-train"


@pytest.fixture(autouse=True)
def fast_switching():
    """Switch threads often, so that calls interleave at many points."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def jobs():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((THREADS,))) -> tp.Numpy:
        w = flow.get_variable("w", (THREADS,), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_sum(w * x)  # d loss / d w = x
        flow.optimizer.SGD(1.0, momentum=0.0).minimize(loss)
        return loss  # w . x before the update

    @flow.global_function(type="predict")
    def read(x: tp.Numpy.Placeholder((THREADS,))) -> tp.Numpy:
        return flow.get_variable("w", (THREADS,), initializer=flow.zeros_initializer()) * x

    return train, read


def run_threads(target, n):
    errors, threads = [], []

    def guarded(i):
        try:
            target(i)
        except BaseException as e:  # reported by the test
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calls_from_four_threads_equal_a_serial_order(seed):
    train, read = jobs()
    train(np.zeros(THREADS, np.float32))  # compiled before the threads start
    outputs = {t: [] for t in range(THREADS)}
    seen = []
    rng = np.random.default_rng(seed)
    readers = set(rng.choice(THREADS, 1).tolist())  # this thread also reads between its calls

    def work(t):
        x = np.zeros(THREADS, np.float32)
        x[t] = 1.0
        for i in range(CALLS):
            outputs[t].append(float(train(x)))
            if t in readers and i % 10 == 0:
                seen.append(read(np.ones(THREADS, np.float32)))

    run_threads(work, THREADS)
    for t in range(THREADS):  # thread t saw w[t] = 0, -1, -2, ... in its own order
        assert outputs[t] == [-float(i) for i in range(CALLS)], t
    final = flow.get_all_variables()
    np.testing.assert_array_equal(final["w"], np.full(THREADS, -CALLS, np.float32))
    assert final[STEP] == THREADS * CALLS + 1
    for w in seen:  # every read saw a state between two calls: integers in range
        assert np.all((w <= 0) & (w >= -CALLS)) and np.array_equal(w, np.round(w))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_save_and_read_while_another_thread_trains(seed, tmp_path):
    train, _ = jobs()
    ones = np.ones(THREADS, np.float32)
    train(ones)
    stop = threading.Event()
    rng = np.random.default_rng(seed)

    def trainer(_):
        for _ in range(200):
            train(ones)
        stop.set()

    snapshots, saved = [], []

    def saver(_):
        i = 0
        while not stop.is_set() or i < 3:
            if rng.random() < 0.5:
                snapshots.append(flow.get_all_variables())
            else:
                path = tmp_path / f"ckpt-{i}"
                flow.checkpoint.save(path)
                saved.append(path)
            i += 1

    run_threads(lambda i: (trainer, saver)[i](i), 2)
    snapshots += [flow.checkpoint.get(p) for p in saved]
    assert len(snapshots) >= 3
    for values in snapshots:  # consistent: w = -(step counter) for every element
        step = int(np.asarray(values[STEP]))
        np.testing.assert_array_equal(np.asarray(values["w"]), np.full(THREADS, -step, np.float32))
    assert int(flow.get_all_variables()[STEP]) == 201


def test_load_while_another_thread_trains():
    train, _ = jobs()
    ones = np.ones(THREADS, np.float32)
    train(ones)
    state = {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}

    def work(i):
        for _ in range(100):
            if i == 0:
                train(ones)
            else:
                flow.load_variables(state)

    run_threads(work, 2)
    values = flow.get_all_variables()
    step = int(values[STEP])
    np.testing.assert_array_equal(values["w"], np.full(THREADS, -step, np.float32))


def test_first_calls_from_several_threads_compile_once():
    train, read = jobs()
    x = np.ones(THREADS, np.float32)
    run_threads(lambda i: [(train, read)[i % 2](x) for _ in range(5)], 4)
    assert (train.num_traces, read.num_traces) == (1, 1)
    assert train.num_discovery_traces == 1
    assert int(flow.get_all_variables()[STEP]) == 10

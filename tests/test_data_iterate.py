"""``flow.data.iterate``: the data ops outside a job, as an iterator of numpy batches for
users who feed placeholders (docs/data.md)."""

import numpy as np
import pytest

import jobflow as flow
from jobflow.errors import ArgumentError


def _normal(batch_size=4):
    return flow.data.decode_random(
        (3,), flow.float32, batch_size=batch_size, initializer=flow.random_normal_initializer(0.0, 1.0)
    )


def test_a_node_outside_a_job_describes_its_batches():
    node = _normal(batch_size=6)
    assert node.shape == (6, 3) and node.dtype == np.float32
    assert "decode_random" in repr(node)


def test_batches_are_the_seeded_streams():
    first = [next(it) for it in [flow.data.iterate(_normal(), seed=3)] for _ in range(1)][0]
    it = flow.data.iterate(_normal(), seed=3)
    a = [next(it) for _ in range(3)]
    np.testing.assert_array_equal(a[0], first)
    assert not np.array_equal(a[0], a[1])
    # batch i of node k draws from numpy's Philox keyed by (seed << 32 | k << 16 | rank, i)
    philox = np.random.Generator(np.random.Philox(key=[3 << 32, 2]))
    expected = philox.normal(0.0, 1.0, (4, 3)).astype(np.float32)
    np.testing.assert_array_equal(a[2], expected)
    b = next(flow.data.iterate(_normal(), seed=4))
    assert not np.array_equal(a[0], b)


def test_structures_tuples_and_dicts():
    x, flips = _normal(), flow.random.coin_flip(4, probability=1.0)
    batch = next(flow.data.iterate({"x": x, "pair": (x, flips)}))
    assert set(batch) == {"x", "pair"}
    np.testing.assert_array_equal(batch["x"], batch["pair"][0])  # one node, one value
    np.testing.assert_array_equal(batch["pair"][1], np.ones(4, np.int8))


def test_coin_flip_outside_a_job_is_a_data_node():
    it = flow.data.iterate(flow.random.coin_flip(10000, probability=0.3, seed=5))
    flips = next(it)
    assert flips.dtype == np.int8 and flips.shape == (10000,) and abs(flips.mean() - 0.3) < 0.02
    again = next(flow.data.iterate(flow.random.coin_flip(10000, probability=0.3, seed=5), seed=99))
    np.testing.assert_array_equal(flips, again)  # its own seed wins over iterate's


def test_state_and_restore_continue_exactly():
    with flow.data.iterate(_normal(), seed=1, prefetch=3) as it:
        next(it)
        state = it.state()
        ahead = [next(it) for _ in range(4)]
        assert state == {"batch": 1, "sources": []}
        it.restore(state)
        np.testing.assert_array_equal(np.stack([next(it) for _ in range(4)]), np.stack(ahead))


def test_processes_compute_their_share_of_rows():
    whole = flow.data.decode_random((2,), flow.float32, batch_size=8)
    shares = [next(flow.data.iterate(whole, rank=r, world_size=2)) for r in range(2)]
    assert [s.shape for s in shares] == [(4, 2), (4, 2)]
    assert not np.array_equal(shares[0], shares[1])
    with pytest.raises(ArgumentError, match="batch_size=8"):
        flow.data.iterate(whole, world_size=3)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros(3),), {}, r"data.iterate\(nodes\).*ndarray"),
        (((),), {}, r"data.iterate\(nodes\).*tuple"),
        ((None,), {"seed": "0"}, r"data.iterate\(nodes\)"),
        ((), {"seed": 1.5}, r"data.iterate\(seed\).*seed=1.5"),
        ((), {"prefetch": 0}, r"data.iterate\(prefetch\).*prefetch=0"),
        ((), {"rank": 2, "world_size": 2}, r"data.iterate\(rank\).*rank=2"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        flow.data.iterate(*(args or (_normal(),)), **kwargs)


def test_a_failed_read_is_retried_and_close_rewinds(tmp_path):
    import os

    from tests import data_fixtures as fx

    data_dir = fx.bert_dataset(tmp_path / "bert", records=8)
    ids, _ = fx.bert_inputs(data_dir, batch_size=4, shuffle=False)
    it = flow.data.iterate(ids, prefetch=1)
    first = next(it)
    os.rename(os.path.join(data_dir, "part-1"), os.path.join(data_dir, "moved"))
    with pytest.raises(Exception, match="part-1"):  # the reader reached the missing part
        for _ in range(3):
            next(it)
    os.rename(os.path.join(data_dir, "moved"), os.path.join(data_dir, "part-1"))
    state = it.state()
    later = [next(it) for _ in range(3)]  # read again: it goes on where it stopped
    it.close()  # threads stopped, read-ahead dropped; the position is kept
    after_close = next(it)
    it.restore(state)
    np.testing.assert_array_equal(np.stack([next(it) for _ in range(3)]), np.stack(later))
    np.testing.assert_array_equal(next(it), after_close)
    assert first.shape == (4, 8)


def test_taking_more_batches_than_are_prefetched_never_stalls():
    import threading

    it = flow.data.iterate(_normal(), prefetch=4)
    reference = flow.data.iterate(_normal(), prefetch=1)
    got = []

    def run():
        import time

        got.extend(it.pipeline.take(1))
        deadline = time.monotonic() + 20
        while len(it.pipeline._queue) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # the queue fills to 4 (3 after the take): the reader sleeps until 2
        time.sleep(0.1)
        got.extend(it.pipeline.take(4))  # more than are left: the reader must wake
        got.extend(it.pipeline.take(9))  # more than ever prefetched

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the pipeline stalled"
    want = [next(reference) for _ in range(14)]
    np.testing.assert_array_equal(np.stack([b[0] for b in got]), np.stack(want))

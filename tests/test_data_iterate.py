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
    # batch i of node k draws from numpy's default_rng((seed, k, i, rank)): an independent check
    expected = np.random.default_rng((3, 0, 2, 0)).normal(0.0, 1.0, (4, 3)).astype(np.float32)
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

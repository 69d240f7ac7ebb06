"""Random ops in jobs: flow.random.bernoulli / coin_flip / shuffle /
generate_random_batch_permutation_indices, nn.random_mask_like and the fused dropout ops:
their rates, a fresh draw per step, seeds, and predict-job behaviour."""

import numpy as np
import pytest

import jobflow as flow
from tests.ops_harness import run_body

P = np.linspace(0.0, 1.0, 11, dtype=np.float32)[None].repeat(2000, 0)


def test_bernoulli_draws_with_the_given_probabilities_fresh_each_step():
    a, b = run_body(lambda p: flow.random.bernoulli(p), P, steps=2)
    assert a.dtype == np.float32 and set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_allclose(a.mean(0), P[0], atol=0.04)
    assert a[:, 0].sum() == 0 and a[:, -1].sum() == 2000
    assert not np.array_equal(a, b)
    flow.clear_default_session()
    c = run_body(lambda p: flow.random.bernoulli(p, dtype=flow.int32), P)
    assert c.dtype == np.int32


def test_runs_are_reproducible_from_the_seed():
    first = run_body(lambda p: flow.random.bernoulli(p), P)
    flow.clear_default_session()
    flow.config.seed(0)
    np.testing.assert_array_equal(run_body(lambda p: flow.random.bernoulli(p), P), first)


def test_coin_flip():
    out = run_body(
        lambda x: flow.random.coin_flip(5000, probability=0.25) + 0 * flow.cast(x[0], flow.int8),
        np.zeros(1, np.float32),
    )
    assert out.dtype == np.int8 and out.shape == (5000,)
    assert abs(out.mean() - 0.25) < 0.03
    assert flow.random.CoinFlip is flow.random.coin_flip


def test_shuffle_permutes_the_first_axis():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    a, b = run_body(flow.random.shuffle, x, steps=2)
    assert sorted(a[:, 0].tolist()) == x[:, 0].tolist() and np.all(a[:, 1] == a[:, 0] + 1)
    assert not np.array_equal(a, b) and not np.array_equal(a, x)
    flow.clear_default_session()
    perm = run_body(flow.random.generate_random_batch_permutation_indices, x)
    assert perm.dtype == np.int32 and sorted(perm.tolist()) == list(range(20))


def test_random_mask_like_and_fused_dropouts():
    x = np.ones((400, 50), np.float32)
    mask = run_body(lambda x: flow.nn.random_mask_like(x, 0.3), x)
    assert mask.dtype == np.int8 and abs(mask.mean() - 0.7) < 0.02
    flow.clear_default_session()
    bias = np.arange(50, dtype=np.float32)
    out = run_body(lambda x: flow.nn.fused_bias_add_dropout(x, bias, "NHWC", rate=0.5), x, train=True)
    kept = out != 0
    assert abs(kept.mean() - 0.5) < 0.02
    np.testing.assert_allclose(out[kept], (2 * (1 + bias[None].repeat(400, 0)))[kept])
    flow.clear_default_session()
    np.testing.assert_allclose(
        run_body(lambda x: flow.nn.fused_bias_add_dropout(x, bias, "NHWC", rate=0.5), x), x + bias
    )
    flow.clear_default_session()
    sq = np.zeros((2, 4, 4), np.float32)
    y = run_body(lambda x: flow.math.fused_scale_tril_softmax_dropout(x, fill_value=-1e4, rate=0.0), sq)
    np.testing.assert_allclose(y[0], np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None], atol=1e-6)
    with pytest.raises(NotImplementedError, match="noise_shape"):
        run_body(lambda x: flow.nn.random_mask_like(x, 0.3, noise_shape=[1, 50]), x)

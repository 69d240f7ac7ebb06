"""Normalization: the functional nn.batch_normalization, nn.GroupNorm / InstanceNorm*d
against PyTorch, and the batch-norm layer variants (relu, add_relu, trainable=False,
explicit variable names) keeping the train / predict behaviour of layers.batch_normalization."""

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from tests.ops_harness import run_body

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)
X = RNG.normal(1.0, 2.0, size=(4, 6, 3, 5)).astype(np.float32)


def t(x):
    return torch.from_numpy(np.array(x))


def close(a, b, tol=1e-4):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def test_functional_batch_normalization():
    mean, var = RNG.normal(size=6).astype(np.float32), RNG.uniform(0.5, 2, size=6).astype(np.float32)
    scale, offset = RNG.normal(size=6).astype(np.float32), RNG.normal(size=6).astype(np.float32)
    ours = flow.nn.batch_normalization(
        jnp.asarray(X), jnp.asarray(mean), jnp.asarray(var), jnp.asarray(offset), jnp.asarray(scale), 1e-3
    )
    ref = F.batch_norm(t(X), t(mean), t(var), t(scale), t(offset), training=False, eps=1e-3)
    close(ours, ref.numpy())
    m4 = X.mean(axis=(1, 2, 3), keepdims=True)  # full-rank statistics, used as they are
    v4 = X.var(axis=(1, 2, 3), keepdims=True)
    close(
        flow.nn.batch_normalization(jnp.asarray(X), jnp.asarray(m4), jnp.asarray(v4), axis=0),
        (X - m4) / np.sqrt(v4 + 1e-5),
    )
    with pytest.raises(ValueError, match="mean"):
        flow.nn.batch_normalization(jnp.asarray(X), jnp.zeros(5), jnp.ones(6))


def test_group_and_instance_norm_against_torch_with_oneflow_variables():
    out = run_body(lambda x: flow.nn.GroupNorm(x, num_groups=3, eps=1e-5, name="gn"), X)
    close(out, F.group_norm(t(X), 3, eps=1e-5).numpy())
    v = flow.get_all_variables()
    assert v["gn_gamma"].shape == (1, 6, 1) and np.all(v["gn_beta"] == 0)
    flow.clear_default_session()
    out = run_body(lambda x: flow.nn.InstanceNorm2d(x, affine=False), X)
    close(out, F.instance_norm(t(X)).numpy())
    assert flow.get_all_variables() == {}
    flow.clear_default_session()
    x3 = X.reshape(4, 6, 15)
    close(run_body(lambda x: flow.nn.InstanceNorm1d(x, name="in1"), x3), F.instance_norm(t(x3)).numpy())
    x5 = X.reshape(4, 6, 3, 5, 1)
    close(run_body(lambda x: flow.nn.InstanceNorm3d(x, name="in3"), x5), F.instance_norm(t(x5)).numpy())
    with pytest.raises(ValueError, match="num_groups"):
        run_body(lambda x: flow.nn.GroupNorm(x, num_groups=4), X)


def _bn_ref(x, mean, var, eps=1e-3):
    return (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)


def test_batch_normalization_add_relu_trains_and_predicts_like_batch_normalization():
    addend = RNG.normal(size=X.shape).astype(np.float32)

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder(X.shape), a: tp.Numpy.Placeholder(X.shape)) -> tp.Numpy:
        out = flow.layers.batch_normalization_add_relu(x, a, axis=1, name="bn")
        loss = flow.math.reduce_mean(out) + flow.get_variable(
            "dummy", (), initializer=flow.zeros_initializer()
        )
        flow.optimizer.SGD(0.0, momentum=0.0).minimize(loss)
        return out

    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder(X.shape)) -> tp.Numpy:
        return flow.layers.batch_normalization_relu(x, axis=1, name="bn")

    mean, var = X.mean(axis=(0, 2, 3)), X.var(axis=(0, 2, 3))
    close(train(X, addend), np.maximum(_bn_ref(X, mean, var) + addend, 0))
    v = flow.get_all_variables()
    n = X.size // 6
    close(v["bn-moving_mean"], 0.01 * mean)
    close(v["bn-moving_variance"], 0.99 + 0.01 * var * n / (n - 1))
    mm, mv = v["bn-moving_mean"].numpy(), v["bn-moving_variance"].numpy()
    close(predict(X), np.maximum(_bn_ref(X, mm, mv), 0))
    np.testing.assert_array_equal(flow.get_all_variables()["bn-moving_mean"], mm)


def test_batch_normalization_not_trainable_uses_moving_statistics_and_names():
    out = run_body(
        lambda x: flow.layers.batch_normalization(
            x, axis=1, trainable=False, name="bn", gamma_name="g", moving_mean_name="mm"
        ),
        X,
        train=True,
    )
    close(out, _bn_ref(X, np.zeros(6), np.ones(6)))  # OneFlow: trainable=False -> training=False
    v = flow.get_all_variables()
    assert {"g", "bn-beta", "mm", "bn-moving_variance"} <= set(v)
    np.testing.assert_array_equal(v["mm"], np.zeros(6))

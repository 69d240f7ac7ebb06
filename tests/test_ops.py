"""Ops against PyTorch (CPU) and hand-written numpy references: OneFlow's layouts, SAME
padding (SAME_LOWER), pooling, normalization, losses, array ops, dropout."""

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)


def t(x):
    return torch.from_numpy(np.array(x))  # a writable copy


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "padding, pads",
    [
        ("SAME", (2, 1)),  # total 3, larger half before (OneFlow SAME_LOWER)
        ("SAME_LOWER", (2, 1)),
        ("SAME_UPPER", (1, 2)),  # TF's SAME
        ("VALID", (0, 0)),
        ([[0, 0], [0, 0], [1, 3], [1, 3]], (1, 3)),
    ],
)
def test_conv2d_padding_against_torch(padding, pads):
    x = RNG.normal(size=(2, 3, 7, 7)).astype(np.float32)
    w = RNG.normal(size=(5, 3, 4, 4)).astype(np.float32)
    ours = flow.nn.conv2d(jnp.asarray(x), jnp.asarray(w), strides=2, padding=padding)
    lo, hi = pads
    ref = F.conv2d(F.pad(t(x), (lo, hi, lo, hi)), t(w), stride=2)
    close(ours, ref.numpy(), 1e-4)


def test_conv2d_nhwc_groups_dilation():
    x = RNG.normal(size=(2, 4, 9, 9)).astype(np.float32)
    w = RNG.normal(size=(6, 2, 3, 3)).astype(np.float32)
    ref = F.conv2d(t(x), t(w), groups=2, dilation=2, padding=2).numpy()
    ours = flow.nn.conv2d(jnp.asarray(x), jnp.asarray(w), 1, "SAME", groups=2, dilations=2)
    close(ours, ref, 1e-4)
    nhwc = flow.nn.conv2d(
        jnp.asarray(x.transpose(0, 2, 3, 1)),
        jnp.asarray(w.transpose(0, 2, 3, 1)),
        1,
        "SAME",
        data_format="NHWC",
        groups=2,
        dilations=2,
    )
    close(np.asarray(nhwc).transpose(0, 3, 1, 2), ref, 1e-4)


def _pool_ref(x, k, s, pads, op):
    """Pooling over NCHW with explicit (before, after) padding; padding excluded."""
    n, c, h, w = x.shape
    (pt, pb), (pl, pr) = pads
    oh, ow = (h + pt + pb - k) // s + 1, (w + pl + pr - k) // s + 1
    out = np.zeros((n, c, oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - pt, j * s - pl
            win = x[:, :, max(r0, 0) : min(r0 + k, h), max(c0, 0) : min(c0 + k, w)]
            out[:, :, i, j] = win.max(axis=(2, 3)) if op == "max" else win.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize(
    "padding, pads",
    [("SAME", ((1, 0), (1, 0))), ("SAME_UPPER", ((0, 1), (0, 1))), ("VALID", ((0, 0), (0, 0)))],
)
@pytest.mark.parametrize("op", ["max", "avg"])
def test_pooling_same_lower(padding, pads, op):
    x = RNG.normal(size=(2, 3, 7, 7)).astype(np.float32)
    fn = flow.nn.max_pool2d if op == "max" else flow.nn.avg_pool2d
    ours = fn(jnp.asarray(x), ksize=2, strides=2, padding=padding)
    close(ours, _pool_ref(x, 2, 2, pads, op))


def test_pooling_ceil_mode_and_nhwc_against_torch():
    x = RNG.normal(size=(2, 3, 8, 8)).astype(np.float32)
    ours = flow.nn.max_pool2d(jnp.asarray(x), 3, 2, "VALID", ceil_mode=True)
    close(ours, F.max_pool2d(t(x), 3, 2, ceil_mode=True).numpy())
    ours = flow.nn.avg_pool2d(jnp.asarray(x.transpose(0, 2, 3, 1)), 2, 2, "VALID", data_format="NHWC")
    close(np.asarray(ours).transpose(0, 3, 1, 2), F.avg_pool2d(t(x), 2, 2).numpy())


def test_activations_and_losses_against_torch():
    logits = RNG.normal(size=(6, 5)).astype(np.float32)
    labels = RNG.integers(0, 5, 6).astype(np.int32)
    close(
        flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.asarray(labels), jnp.asarray(logits)),
        F.cross_entropy(t(logits), t(labels).long(), reduction="none").numpy(),
    )
    close(
        flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.asarray(labels[:, None]), jnp.asarray(logits)),
        F.cross_entropy(t(logits), t(labels).long(), reduction="none").numpy(),
    )
    soft = F.softmax(t(RNG.normal(size=(6, 5)).astype(np.float32)), -1).numpy()
    close(
        flow.nn.softmax_cross_entropy_with_logits(jnp.asarray(soft), jnp.asarray(logits)),
        F.cross_entropy(t(logits), t(soft), reduction="none").numpy(),
    )
    z = (RNG.random((6, 5)) > 0.5).astype(np.float32)
    close(
        flow.nn.sigmoid_cross_entropy_with_logits(jnp.asarray(z), jnp.asarray(logits)),
        F.binary_cross_entropy_with_logits(t(logits), t(z), reduction="none").numpy(),
    )
    close(flow.nn.softmax(jnp.asarray(logits)), F.softmax(t(logits), -1).numpy())
    close(flow.math.gelu(jnp.asarray(logits)), F.gelu(t(logits)).numpy())
    close(flow.nn.leaky_relu(jnp.asarray(logits), 0.1), F.leaky_relu(t(logits), 0.1).numpy())
    close(flow.math.rsqrt(jnp.asarray(np.abs(logits))), torch.rsqrt(t(np.abs(logits))).numpy())


def test_loss_errors():
    with pytest.raises(ValueError, match="labels shape"):
        flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.zeros(4, jnp.int32), jnp.zeros((3, 5)))
    with pytest.raises(TypeError, match="integer labels"):
        flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.zeros(3), jnp.zeros((3, 5)))


def test_layer_norm_against_torch():
    x = RNG.normal(size=(4, 3, 6)).astype(np.float32)
    g = RNG.normal(size=(6,)).astype(np.float32)
    b = RNG.normal(size=(6,)).astype(np.float32)
    ours = flow.nn.layer_norm(jnp.asarray(x), jnp.asarray(g), jnp.asarray(b), begin_norm_axis=-1)
    close(ours, F.layer_norm(t(x), (6,), t(g), t(b), eps=1e-5).numpy())
    ours = flow.nn.layer_norm(jnp.asarray(x), begin_norm_axis=1)
    close(ours, F.layer_norm(t(x), (3, 6), eps=1e-5).numpy())


def test_moments_bias_add_math():
    x = RNG.normal(size=(4, 3, 5)).astype(np.float32)
    mean, var = flow.nn.moments(jnp.asarray(x), [0, 2])
    close(mean, x.mean(axis=(0, 2)))
    close(var, x.var(axis=(0, 2)))
    b = np.arange(3, dtype=np.float32)
    close(flow.nn.bias_add(jnp.asarray(x), jnp.asarray(b)), x + b[None, :, None])
    b5 = np.arange(5, dtype=np.float32)
    close(flow.nn.bias_add(jnp.asarray(x), jnp.asarray(b5), data_format="NWC"), x + b5)
    v = jnp.asarray([[3.0, 1.0, 2.0, 3.0]])
    assert flow.math.top_k(v, k=2).tolist() == [[0, 3]]
    assert flow.math.argmax(v).tolist() == [0] and flow.math.argmax(v).dtype == jnp.int32
    close(
        flow.math.reduce_mean(jnp.asarray(x), axis=[1, 2], keepdims=True), x.mean(axis=(1, 2), keepdims=True)
    )
    close(flow.math.reduce_sum(jnp.asarray(x), axis=1), x.sum(axis=1))
    close(flow.math.add_n([jnp.asarray(x)] * 3), 3 * x)
    with pytest.raises(ValueError, match="top_k"):
        flow.math.top_k(v, k=5)


def test_array_ops():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    assert flow.slice(x, [None, 1, 0], [None, 2, -1]).shape == (2, 2, 4)
    close(flow.slice(x, [0, 1, 1], [1, 1, 2]), np.arange(24.0).reshape(2, 3, 4)[:1, 1:2, 1:3])
    with pytest.raises(ValueError, match="out of bounds"):
        flow.slice(x, [0, 2, 0], [1, 2, 1])
    assert flow.flatten(x, start_dim=1).shape == (2, 12)
    assert flow.flatten(x).shape == (24,)
    assert flow.reshape(x, [4, -1]).shape == (4, 6)
    assert flow.transpose(x, [2, 0, 1]).shape == (4, 2, 3)
    assert flow.concat([x, x], axis=1).shape == (2, 6, 4)
    assert flow.squeeze(flow.expand_dims(x, 0), [0]).shape == (2, 3, 4)
    close(flow.gather(x, jnp.asarray([2, 0]), axis=1), np.arange(24.0).reshape(2, 3, 4)[:, [2, 0]])
    close(flow.gather(jnp.arange(10.0).reshape(5, 2), jnp.asarray([[4], [1]])), [[[8.0, 9.0]], [[2.0, 3.0]]])
    assert flow.pad(x, [[0, 0], [1, 1], [0, 2]], constant_value=-1).shape == (2, 5, 6)
    assert flow.cast(x, flow.int32).dtype == jnp.int32
    assert flow.constant(2.0, dtype=flow.float, shape=[2, 2]).tolist() == [[2.0, 2.0], [2.0, 2.0]]
    close(flow.matmul(x, x, transpose_b=True), np.einsum("bij,bkj->bik", np.asarray(x), np.asarray(x)))


def _run(job_body, x, train=False, steps=1):
    @flow.global_function(type="train" if train else "predict")
    def job(x: tp.Numpy.Placeholder(x.shape)) -> tp.Numpy:
        out = job_body(x)
        if train:  # an lr-0 update of a dummy variable, so the job is a valid train job
            dummy = flow.get_variable("dummy", (), initializer=flow.zeros_initializer())
            flow.optimizer.SGD(0.0, momentum=0.0).minimize(flow.math.reduce_mean(out) + dummy)
        return out

    outs = [job(x) for _ in range(steps)]
    return outs[-1] if steps == 1 else outs


def test_dense_layout_and_rank3_inputs():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    out = _run(
        lambda x: flow.layers.dense(
            x,
            5,
            kernel_initializer=flow.random_normal_initializer(),
            name="fc",
            bias_initializer=flow.random_normal_initializer(),
        ),
        x,
    )
    v = flow.get_all_variables()
    assert v["fc-weight"].shape == (5, 4)
    close(out, x @ v["fc-weight"].numpy().T + v["fc-bias"].numpy())


def test_unnamed_layers_get_unique_names_and_named_layers_share():
    def body(x):
        h = flow.layers.dense(x, 4, kernel_initializer=flow.ones_initializer())
        h = flow.layers.dense(h, 4, kernel_initializer=flow.ones_initializer())
        h = flow.layers.dense(h, 4, kernel_initializer=flow.ones_initializer(), name="shared")
        return flow.layers.dense(h, 4, kernel_initializer=flow.ones_initializer(), name="shared")

    _run(body, np.ones((2, 4), np.float32))
    assert sorted(k for k in flow.get_all_variables() if k.endswith("weight")) == [
        "Dense-weight",
        "Dense_1-weight",
        "shared-weight",
    ]


def test_batch_normalization_train_and_predict():
    x = RNG.normal(2.0, 3.0, size=(8, 3, 4, 4)).astype(np.float32)
    out = _run(lambda x: flow.layers.batch_normalization(x, axis=1, name="bn"), x, train=True)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    close(out, (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-3), 1e-4)
    v = flow.get_all_variables()
    n = 8 * 4 * 4
    close(v["bn-moving_mean"], 0.01 * mean)
    close(v["bn-moving_variance"], 0.99 + 0.01 * var * n / (n - 1))
    assert {"bn-gamma", "bn-beta"} <= set(v)

    @flow.global_function()
    def predict(x: tp.Numpy.Placeholder(x.shape)) -> tp.Numpy:
        return flow.layers.batch_normalization(x, axis=1, name="bn")

    mm, mv = v["bn-moving_mean"].numpy(), v["bn-moving_variance"].numpy()
    close(predict(x), (x - mm[None, :, None, None]) / np.sqrt(mv[None, :, None, None] + 1e-3), 1e-4)
    np.testing.assert_array_equal(flow.get_all_variables()["bn-moving_mean"], mm)  # predict changes nothing


def test_layer_norm_layer_variables():
    x = RNG.normal(size=(4, 6)).astype(np.float32)
    out = _run(lambda x: flow.layers.layer_norm(x, name="ln"), x)
    close(out, F.layer_norm(t(x), (6,), eps=1e-5).numpy())
    assert flow.get_all_variables()["ln-gamma"].shape == (6,)


def test_dropout_train_predict_and_rate():
    x = np.ones((200, 50), np.float32)
    a, b = _run(lambda x: flow.nn.dropout(x, rate=0.3), x, train=True, steps=2)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((a == 0).mean() - 0.3) < 0.02
    assert not np.array_equal(a, b)  # a fresh mask every step
    flow.clear_default_session()
    np.testing.assert_array_equal(_run(lambda x: flow.nn.dropout(x, rate=0.3), x), x)
    with pytest.raises(ValueError, match="rate"):
        _run(lambda x: flow.nn.dropout(x, rate=1.0), x)


def test_conv2d_layer_defaults():
    x = RNG.normal(size=(2, 3, 8, 8)).astype(np.float32)
    out = _run(lambda x: flow.layers.conv2d(x, 4, 3, padding="SAME", name="c"), x)
    v = flow.get_all_variables()
    assert v["c-weight"].shape == (4, 3, 3, 3) and np.all(v["c-bias"] == 0)
    limit = np.sqrt(6 / (27 + 36))
    assert np.abs(v["c-weight"]).max() <= limit
    close(out, F.conv2d(t(x), t(v["c-weight"].numpy()), padding=1).numpy(), 1e-4)

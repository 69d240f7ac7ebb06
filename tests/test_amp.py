"""Automatic mixed precision: OneFlow's op lists, the compiled program (dots and
convolutions in the low dtype, the update in float32), Flax modules, and accuracy
against float32 training."""

import re

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.core import trace as _trace

BF16 = jnp.bfloat16


def amp_cfg(dtype=None):
    cfg = flow.function_config().enable_auto_mixed_precision(True)
    return cfg if dtype is None else cfg.amp_dtype(dtype)


# ------------------------------------------------------------------------------ op lists


def test_ops_follow_oneflows_lists():
    ctx = _trace.TraceContext("t", False, False, flow.function_config(), amp_dtype=BF16)
    x32 = jnp.ones((2, 3), jnp.float32)
    with _trace.active(ctx):
        low = flow.matmul(x32, jnp.ones((3, 3), jnp.float32))  # white
        assert low.dtype == BF16
        img = flow.nn.conv2d(jnp.ones((1, 1, 4, 4)), jnp.ones((2, 1, 3, 3)))  # white
        assert img.dtype == BF16
        gray = {
            "add": flow.math.add(low, x32),
            "add_n": flow.math.add_n([x32, low]),
            "subtract": flow.math.subtract(x32, low),
            "multiply": flow.math.multiply(low, x32),
            "divide": flow.math.divide(low, x32),
            "bias_add": flow.nn.bias_add(low, jnp.ones(3)),
            "softmax": flow.nn.softmax(low),
            "gelu": flow.math.gelu(low),
            "tanh": flow.math.tanh(low),
            "sigmoid": flow.math.sigmoid(low),
            "sqrt": flow.math.sqrt(low),
            "layer_norm": flow.nn.layer_norm(low, jnp.ones(3), jnp.zeros(3)),
            "avg_pool2d": flow.nn.avg_pool2d(img, 2, 2, "VALID"),
            "dropout": flow.nn.dropout(low, 0.5),
            "relu": flow.nn.relu(low),
            "max_pool2d": flow.nn.max_pool2d(img, 2, 2, "VALID"),
            "reshape": flow.reshape(low, (3, 2)),
            "transpose": flow.transpose(low),
            "concat": flow.concat([low, low]),
            "gather": flow.gather(low, jnp.array([1])),
        }
        assert {k: v.dtype for k, v in gray.items()} == {k: BF16 for k in gray}
        assert flow.math.add(x32, x32).dtype == jnp.float32  # gray fed by float32 only
        full = {
            "reduce_sum": flow.math.reduce_sum(low),
            "reduce_mean": flow.math.reduce_mean(low, axis=1),
            "reduce_max": flow.math.reduce_max(low),
            "exp": flow.math.exp(low),
            "log": flow.math.log(low),
            "square": flow.math.square(low),
            "rsqrt": flow.math.rsqrt(low),
            "pow": flow.math.pow(low, 2.0),
            "log_softmax": flow.nn.log_softmax(low),
            "moments": flow.nn.moments(low, [0])[1],
            "sparse_xent": flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.array([0, 1]), low),
            "xent": flow.nn.softmax_cross_entropy_with_logits(jnp.ones((2, 3)), low),
        }
        assert {k: v.dtype for k, v in full.items()} == {k: jnp.float32 for k in full}
    # the softmax of a low-precision input is accumulated in float32, then rounded
    logits = jnp.array([[0.1, 0.2, 8.0]], BF16)
    with _trace.active(ctx):
        got = flow.nn.softmax(logits)
    want = np.exp(np.float32(logits)) / np.exp(np.float32(logits)).sum()
    np.testing.assert_array_equal(np.float32(got), np.float32(want.astype(BF16)))


def test_amp_off_changes_nothing():
    ctx = _trace.TraceContext("t", False, False, flow.function_config())
    with _trace.active(ctx):
        assert flow.matmul(jnp.ones((2, 3)), jnp.ones((3, 3))).dtype == jnp.float32
        assert flow.math.reduce_sum(jnp.ones(2, BF16)).dtype == BF16


# ---------------------------------------------------------------------- the compiled program


def _conv_net_job(cfg, flax_model=None):
    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((8, 1, 8, 8)), y: tp.Numpy.Placeholder((8,), dtype=flow.int32)
    ) -> tp.Numpy:
        init = flow.random_normal_initializer(stddev=0.1)
        h = flow.layers.conv2d(
            x, 4, 3, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv"
        )
        h = flow.nn.max_pool2d(h, 2, 2, "VALID")
        h = flow.layers.dense(
            flow.reshape(h, (8, -1)), 16, activation=flow.nn.relu, kernel_initializer=init, name="fc1"
        )
        h = flow.layers.layer_norm(h, name="ln")
        if flax_model is not None:
            h = flow.layers.flax_module(flax_model, h, name="head")
        logits = flow.layers.dense(h, 10, kernel_initializer=init, name="fc2")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.AdamW(0.01, weight_decay=0.01).minimize(loss)
        return loss

    return train


def _dtypes(text, op):
    """The element types of every operand and result of each ``op`` in StableHLO text."""
    lines = [ln for ln in text.splitlines() if f"stablehlo.{op}" in ln]
    return [set(re.findall(r"tensor<(?:\d+x)*(bf16|f16|f32|f64)>", ln.split(":")[-1])) for ln in lines]


def _main_results(text):
    """``{store name: element type}`` of the variables the compiled step returns."""
    sig = next(ln for ln in text.splitlines() if "func.func public @main" in ln)
    return dict(
        (name, ty)
        for ty, name in re.findall(
            r"tensor<(?:\d+x)*(\w+)> \{jax\.result_info = \"result\[0\]\['([^']+)'\]\"", sig
        )
    )


@pytest.mark.parametrize("dtype, tag", [(None, "bf16"), (flow.float16, "f16")])
def test_compiled_step_runs_dots_and_convolutions_low_and_the_update_in_float32(dtype, tag):
    train = _conv_net_job(amp_cfg(dtype))  # None: the default on CPU is bfloat16
    rng = np.random.default_rng(0)
    train(rng.normal(size=(8, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8).astype(np.int32))
    text = train.lower_text()
    dots, convs = _dtypes(text, "dot_general"), _dtypes(text, "convolution")
    # dense layers: forward, input and weight gradients; conv: forward and weight gradient
    assert len(dots) == 6 and len(convs) == 2
    assert all(d == {tag} for d in dots + convs), dots + convs
    results = _main_results(text)
    assert {n for n in results if not n.startswith("System")} == {
        f"{v}{s}"
        for v in (
            "conv-weight",
            "conv-bias",
            "fc1-weight",
            "fc1-bias",
            "fc2-weight",
            "fc2-bias",
            "ln-gamma",
            "ln-beta",
        )
        for s in ("", "-m", "-v")
    }
    assert {t for n, t in results.items() if not n.startswith("System")} == {"f32"}  # master weights
    assert all(d == {"f32"} for d in _dtypes(text, "sqrt"))  # Adam's sqrt(v): the update is float32
    assert f"{tag}[" in train.compiled_text()  # XLA keeps the low-precision values
    floats = {v.dtype for v in flow.get_all_variables().values() if v.dtype.kind == "f"}
    assert floats == {np.dtype(np.float32)}


def test_a_predict_job_under_amp_returns_low_precision_logits():
    @flow.global_function(type="predict", function_config=amp_cfg())
    def predict(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:
        h = flow.layers.dense(x, 16, activation=flow.nn.relu, name="fc1")
        return flow.layers.dense(flow.layers.layer_norm(h, name="ln"), 10, name="fc2")

    out = predict(np.ones((8, 4), np.float32))
    assert out.dtype == BF16  # the logits of a white-list op (then a gray one)
    assert {v.dtype for v in flow.get_all_variables().values()} == {np.dtype(np.float32)}


# ------------------------------------------------------------------------------------ Flax


class Head(nn.Module):
    dtype: object = jnp.float32  # Flax's computation dtype, passed to every layer

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(16, dtype=self.dtype)(x)
        return nn.LayerNorm(dtype=self.dtype)(nn.gelu(h))


@pytest.mark.parametrize(
    "model, amp, want",
    [
        (Head(), True, "bf16"),
        (Head(), False, "f32"),
        (Head(dtype=jnp.float16), True, "f16"),  # a dtype set on purpose is kept
        (nn.Dense(16), True, "bf16"),  # Flax's dtype=None means "promote": AMP sets it
    ],
)
def test_flax_modules_compute_in_the_low_dtype_with_float32_params(model, amp, want):
    @flow.global_function(type="train", function_config=amp_cfg())
    def train(x: tp.Numpy.Placeholder((4, 8))) -> tp.Numpy:
        h = flow.layers.flax_module(model, x, name="head", amp=amp)
        loss = flow.math.reduce_mean(flow.math.square(flow.cast(h, flow.float32)), axis=1)
        flow.optimizer.Adam(0.01).minimize(loss)
        return loss

    train(np.ones((4, 8), np.float32))
    (dot_fwd, *_) = _dtypes(train.lower_text(), "dot_general")
    assert dot_fwd == {want}
    params = {k: v for k, v in flow.get_all_variables().items() if k.startswith("head-")}
    assert params and {v.dtype for v in params.values()} == {np.dtype(np.float32)}


# --------------------------------------------------------------- accuracy against float32


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int32)
    idx = np.random.default_rng(0).permutation(len(y))
    return x[idx[:1400]], y[idx[:1400]], x[idx[1400:1784]], y[idx[1400:1784]]


def _train_digits(cfg, policy):
    def net(x):
        init = flow.random_normal_initializer(stddev=0.1)
        h = flow.layers.conv2d(
            x, 8, 3, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv"
        )
        h = flow.nn.max_pool2d(h, 2, 2, "VALID")
        h = flow.layers.dense(
            flow.reshape(h, (h.shape[0], -1)),
            32,
            activation=flow.nn.relu,
            kernel_initializer=init,
            name="fc1",
        )
        return flow.layers.dense(h, 10, kernel_initializer=init, name="fc2")

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((100, 1, 8, 8)), y: tp.Numpy.Placeholder((100,), dtype=flow.int32)
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, net(x))
        flow.optimizer.Adam(0.01, loss_scale_policy=policy).minimize(loss)
        return loss

    @flow.global_function(type="predict", function_config=cfg)
    def predict(x: tp.Numpy.Placeholder((384, 1, 8, 8))) -> tp.Numpy:
        return net(x)

    xtr, ytr, xte, yte = _digits()
    for _ in range(4):
        for i in range(0, 1400, 100):
            train(xtr[i : i + 100], ytr[i : i + 100])
    return float(np.mean(np.argmax(np.float32(predict(xte)), axis=1) == yte)), train.last_info


def test_amp_training_reaches_float32_accuracy():
    """Stated tolerance: within 2 percentage points of float32 (4 epochs of sklearn digits,
    384 test images; float32 reaches about 95%)."""
    f32, _ = _train_digits(flow.function_config(), None)
    flow.clear_default_session()
    bf16, _ = _train_digits(amp_cfg(), None)
    flow.clear_default_session()
    fp16, info = _train_digits(amp_cfg(flow.float16), flow.optimizer.loss_scale.dynamic_loss_scale(2.0**16))
    assert f32 > 0.9
    assert abs(bf16 - f32) <= 0.02 and abs(fp16 - f32) <= 0.02, (f32, bf16, fp16)
    print(f"accuracy: float32 {f32:.4f}, bfloat16 AMP {bf16:.4f}, float16 AMP + dynamic scale {fp16:.4f}")
    assert info["skipped_steps"] <= 2 and info["loss_scale"] >= 2.0**14

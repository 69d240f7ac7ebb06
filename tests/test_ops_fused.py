"""OneFlow's fused ops written unfused: fused_bias_add_gelu and
fused_self_attention_query_mul_key_and_value against their unfused definitions (OneFlow's
own test builds the same reference), and amp_white_identity under mixed precision."""

import jax
import jax.numpy as jnp
import numpy as np

import jobflow as flow
import jobflow.typing as tp

RNG = np.random.default_rng(0)


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


def test_fused_bias_add_gelu():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    b = RNG.normal(size=(3,)).astype(np.float32)
    ref = np.asarray(jax.nn.gelu(jnp.asarray(x + b[None, :, None]), approximate=False))
    close(flow.nn.fused_bias_add_gelu(jnp.asarray(x), jnp.asarray(b)), ref)
    b4 = RNG.normal(size=(4,)).astype(np.float32)
    ref = np.asarray(jax.nn.gelu(jnp.asarray(x + b4), approximate=False))
    close(flow.nn.fused_bias_add_gelu(jnp.asarray(x), jnp.asarray(b4), data_format="NHC"), ref)


def test_fused_self_attention_query_mul_key_and_value():
    seq, batch, heads, size = 5, 2, 3, 4
    h = RNG.normal(size=(seq, batch, heads * 3 * size)).astype(np.float32)
    qmk, v = flow.nn.fused_self_attention_query_mul_key_and_value(jnp.asarray(h), size, alpha=0.5)
    r = h.reshape(seq, batch, heads, 3 * size)
    q, k, vv = (r[..., i * size : (i + 1) * size].transpose(1, 2, 0, 3) for i in range(3))
    close(qmk, 0.5 * q @ k.transpose(0, 1, 3, 2), 1e-4)
    close(v, vv)


def test_amp_white_identity_casts_to_the_low_dtype():
    cfg = flow.function_config()
    cfg.enable_auto_mixed_precision(True)

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.Numpy.Placeholder((2, 3))) -> tp.Numpy:
        return flow.amp_white_identity(x)

    out = job(np.ones((2, 3), np.float32))
    assert out.dtype != np.float32
    assert flow.amp_white_identity(jnp.ones(2)).dtype == jnp.float32  # AMP off: unchanged

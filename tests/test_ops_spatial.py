"""Paddings, resampling and PReLU against PyTorch: the *_pad2d family (OneFlow's
[left, right, top, bottom] order), same_padding, layers.upsample_2d (OneFlow's nearest and
bilinear source-index rules), PixelShuffle and layers.prelu."""

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
from tests.ops_harness import run_body

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)


def t(x):
    return torch.from_numpy(np.array(x))


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.mark.parametrize("padding, torch_pad", [(2, (2, 2, 2, 2)), ([1, 3, 2, 0], (1, 3, 2, 0))])
def test_pad2d_family(padding, torch_pad):
    x = jnp.asarray(X)
    close(flow.reflection_pad2d(x, padding), F.pad(t(X), torch_pad, mode="reflect").numpy())
    close(flow.replication_pad2d(x, padding), F.pad(t(X), torch_pad, mode="replicate").numpy())
    close(flow.constant_pad2d(x, padding, 1.5), F.pad(t(X), torch_pad, value=1.5).numpy())
    close(flow.zero_pad2d(x, padding), F.pad(t(X), torch_pad).numpy())


def test_pad2d_checks():
    with pytest.raises(ValueError, match="smaller"):
        flow.reflection_pad2d(jnp.asarray(X), [0, 0, 4, 0])
    with pytest.raises(ValueError, match="left, right, top, bottom"):
        flow.zero_pad2d(jnp.asarray(X), [1, 2])


@pytest.mark.parametrize("mode, w_pads", [("SAME_LOWER", (2, 1)), ("SAME_UPPER", (1, 2))])
def test_same_padding_then_valid_conv_is_same(mode, w_pads):
    x = jnp.asarray(X)
    padded = flow.same_padding(x, mode, "NCHW", [4, 4], [2, 2], [1, 1])  # H: total 2, W: total 3
    close(padded, np.pad(X, [(0, 0), (0, 0), (1, 1), w_pads]))
    w = RNG.normal(size=(2, 3, 4, 4)).astype(np.float32)
    close(
        flow.nn.conv2d(padded, jnp.asarray(w), 2, "VALID"), flow.nn.conv2d(x, jnp.asarray(w), 2, mode), 1e-4
    )


@pytest.mark.parametrize(
    "interpolation, align", [("nearest", False), ("bilinear", False), ("bilinear", True)]
)
@pytest.mark.parametrize("size", [2, (3, 2)])
def test_upsample_2d_against_torch(interpolation, align, size):
    out = run_body(lambda x: flow.layers.upsample_2d(x, size, align, interpolation=interpolation), X)
    kwargs = {} if interpolation == "nearest" else {"align_corners": align}
    scale = (size, size) if isinstance(size, int) else size
    ref = F.interpolate(t(X), scale_factor=scale, mode=interpolation, **kwargs).numpy()
    close(out, ref)
    nhwc = flow.layers.upsample_2d(jnp.asarray(X.transpose(0, 2, 3, 1)), size, align, "NHWC", interpolation)
    close(np.asarray(nhwc).transpose(0, 3, 1, 2), ref)


def test_upsample_2d_checks():
    with pytest.raises(ValueError, match="align_corners"):
        flow.layers.upsample_2d(jnp.asarray(X), align_corners=True)
    with pytest.raises(ValueError, match="interpolation"):
        flow.layers.upsample_2d(jnp.asarray(X), interpolation="bicubic")


def test_pixel_shuffle_against_torch():
    x = RNG.normal(size=(2, 12, 3, 4)).astype(np.float32)
    close(flow.nn.PixelShuffle(jnp.asarray(x), 2), F.pixel_shuffle(t(x), 2).numpy())
    out = flow.nn.PixelShufflev2(jnp.asarray(x), 3, 2)
    assert out.shape == (2, 2, 9, 8)
    ref = x.reshape(2, 2, 3, 2, 3, 4).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 9, 8)
    close(out, ref)
    with pytest.raises(ValueError, match="divisible"):
        flow.nn.PixelShuffle(jnp.asarray(x), 4)


def test_prelu_layer_against_torch():
    alpha = flow.random_uniform_initializer(0.1, 0.5)
    out = run_body(lambda x: flow.layers.prelu(x, alpha_initializer=alpha, shared_axes=[2, 3], name="p"), X)
    a = flow.get_all_variables()["p-alpha"].numpy()
    assert a.shape == (3, 1, 1)
    close(out, F.prelu(t(X), t(a.reshape(3))).numpy())
    flow.clear_default_session()
    out = run_body(lambda x: flow.layers.prelu(x, name="q"), X)
    close(out, np.maximum(X, 0))  # alpha starts at 0
    assert flow.get_all_variables()["q-alpha"].shape == (3, 4, 5)

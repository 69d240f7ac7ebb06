"""Convolutions beyond nn.conv2d against PyTorch: conv2d_transpose (OneFlow's TF-style
output_shape / padding rules), torch_conv2d_transpose, compat_conv2d (TF's SAME), conv1d,
conv3d, their layers, and the 3-D pools."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)


def t(x):
    return torch.from_numpy(np.array(x))


def close(a, b, tol=1e-4):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _xw(x_shape=(2, 3, 5, 5), w_shape=(3, 4, 3, 3)):
    return RNG.normal(size=x_shape).astype(np.float32), RNG.normal(size=w_shape).astype(np.float32)


@pytest.mark.parametrize("out", [11, 12])
def test_conv2d_transpose_valid_is_torch_with_output_padding(out):
    x, w = _xw()
    ours = flow.nn.conv2d_transpose(jnp.asarray(x), jnp.asarray(w), output_shape=(2, 4, out, out), strides=2)
    ref = F.conv_transpose2d(t(x), t(w), stride=2, output_padding=out - 11)
    close(ours, ref.numpy())


@pytest.mark.parametrize("out, stride", [(9, 2), (10, 2), (5, 1), (15, 3)])
def test_conv2d_transpose_same_crops_the_smaller_half_before(out, stride):
    """SAME: the full output (in-1)*s + k is cropped by need = full - out, need // 2 before
    (even need: PyTorch's padding = need/2; odd need: one more row cropped at the end)."""
    x, w = _xw()
    full = F.conv_transpose2d(t(x), t(w), stride=stride).numpy()
    need = max(0, full.shape[-1] - out)
    lo = need // 2
    ref = np.zeros((2, 4, out, out), np.float32)
    keep = min(out, full.shape[-1] - lo)
    ref[:, :, :keep, :keep] = full[:, :, lo : lo + keep, lo : lo + keep]
    ours = flow.nn.conv2d_transpose(
        input=jnp.asarray(x),
        filters=jnp.asarray(w),
        output_shape=(2, 4, out, out),
        strides=stride,
        padding="SAME",
    )
    close(ours, ref)


def test_conv2d_transpose_nhwc_and_dilation():
    x, w = _xw()
    ref = F.conv_transpose2d(t(x), t(w), stride=2, dilation=2).numpy()  # (2, 4, 13, 13)
    ours = flow.nn.conv2d_transpose(
        jnp.asarray(x), jnp.asarray(w), output_shape=(2, 4, 13, 13), strides=2, dilations=2
    )
    close(ours, ref)
    nhwc = flow.nn.conv2d_transpose(
        jnp.asarray(x.transpose(0, 2, 3, 1)),
        jnp.asarray(w.transpose(0, 2, 3, 1)),  # (in, kh, kw, out)
        output_shape=(2, 11, 11, 4),
        strides=2,
        data_format="NHWC",
    )
    close(np.asarray(nhwc).transpose(0, 3, 1, 2), F.conv_transpose2d(t(x), t(w), stride=2).numpy())


def test_conv2d_transpose_checks_its_arguments():
    x, w = (jnp.asarray(a) for a in _xw())
    with pytest.raises(ValueError, match="output_shape"):
        flow.nn.conv2d_transpose(x, w, output_shape=(2, 4, 20, 20), strides=2)
    with pytest.raises(ValueError, match="strides"):
        flow.nn.conv2d_transpose(x, w, output_shape=(2, 4, 11, 11))
    with pytest.raises(ValueError, match="exactly one"):
        flow.nn.conv2d_transpose(x, w, output_shape=(2, 4, 11, 11), strides=2, input=x)
    with pytest.raises(ValueError, match="channels"):
        flow.nn.conv2d_transpose(x, w, output_shape=(2, 3, 11, 11), strides=2)


def test_torch_conv2d_transpose_is_pytorch():
    x, w = _xw()
    ours = flow.nn.torch_conv2d_transpose(
        jnp.asarray(x), jnp.asarray(w), output_padding=(1, 0), strides=2, padding_needed=(2, 4)
    )
    ref = F.conv_transpose2d(t(x), t(w), stride=2, padding=(1, 2), output_padding=(1, 0))
    close(ours, ref.numpy())


def test_conv2d_transpose_gradient_matches_torch():
    x, w = _xw()
    f = lambda a, b: jnp.sum(
        flow.nn.conv2d_transpose(a, b, output_shape=(2, 4, 10, 10), strides=2, padding="SAME") ** 2
    )
    gx, gw = jax.grad(f, (0, 1))(jnp.asarray(x), jnp.asarray(w))
    tx, tw = t(x).requires_grad_(), t(w).requires_grad_()
    full = F.conv_transpose2d(tx, tw, stride=2)  # 11x11, need 1: crop 0 before, 1 after
    (full[:, :, :10, :10] ** 2).sum().backward()
    close(gx, tx.grad.numpy(), 1e-3)
    close(gw, tw.grad.numpy(), 1e-3)


def test_compat_conv2d_same_is_tensorflow_same_upper():
    x = RNG.normal(size=(2, 3, 7, 7)).astype(np.float32)
    w = RNG.normal(size=(5, 3, 4, 4)).astype(np.float32)
    ours = flow.nn.compat_conv2d(jnp.asarray(x), jnp.asarray(w), 2, "SAME")
    ref = F.conv2d(F.pad(t(x), (1, 2, 1, 2)), t(w), stride=2)  # total 3: smaller half before
    close(ours, ref.numpy())


@pytest.mark.parametrize(
    "padding, pads", [("SAME", (2, 1)), ("VALID", (0, 0)), ([[0, 0], [0, 0], [1, 2]], (1, 2))]
)
def test_conv1d_against_torch(padding, pads):
    x = RNG.normal(size=(2, 4, 9)).astype(np.float32)
    w = RNG.normal(size=(6, 2, 4)).astype(np.float32)
    ours = flow.nn.conv1d(jnp.asarray(x), jnp.asarray(w), 2, padding, groups=2)
    ref = F.conv1d(F.pad(t(x), pads), t(w), stride=2, groups=2)
    close(ours, ref.numpy())
    nwc_padding = [padding[0], padding[2], padding[1]] if isinstance(padding, list) else padding
    nwc = flow.nn.conv1d(
        jnp.asarray(x[:, :2].transpose(0, 2, 1)), jnp.asarray(w.transpose(0, 2, 1)), 2, nwc_padding, "NWC"
    )
    close(np.asarray(nwc).transpose(0, 2, 1), F.conv1d(F.pad(t(x[:, :2]), pads), t(w), stride=2).numpy())


def test_conv3d_against_torch():
    x = RNG.normal(size=(1, 2, 5, 6, 7)).astype(np.float32)
    w = RNG.normal(size=(3, 2, 3, 3, 3)).astype(np.float32)
    ours = flow.nn.conv3d(jnp.asarray(x), jnp.asarray(w), 1, "SAME", dilations=2)
    close(ours, F.conv3d(t(x), t(w), padding=2, dilation=2).numpy())
    ndhwc = flow.nn.conv3d(
        jnp.asarray(x.transpose(0, 2, 3, 4, 1)),
        jnp.asarray(w.transpose(0, 2, 3, 4, 1)),
        [1, 2, 1],
        "VALID",
        "NDHWC",
    )
    ref = F.conv3d(t(x), t(w), stride=(1, 2, 1)).numpy().transpose(0, 2, 3, 4, 1)
    close(ndhwc, ref)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_pool3d_against_torch(op):
    x = RNG.normal(size=(2, 3, 6, 7, 8)).astype(np.float32)
    ours = getattr(flow.nn, f"{op}_pool3d")(jnp.asarray(x), 3, 2, "VALID")
    ref = getattr(F, f"{op}_pool3d")(t(x), 3, 2).numpy()
    close(ours, ref)
    ceil = getattr(flow.nn, f"{op}_pool3d")(jnp.asarray(x), 2, 2, "VALID", ceil_mode=True)
    close(ceil, getattr(F, f"{op}_pool3d")(t(x), 2, 2, ceil_mode=True).numpy())


def test_conv1d_and_conv3d_layers_create_oneflow_variables():
    @flow.global_function(type="predict")
    def job(x: tp.Numpy.Placeholder((2, 4, 8)), v: tp.Numpy.Placeholder((1, 2, 4, 4, 4))) -> tp.Numpy:
        a = flow.layers.conv1d(x, 6, 3, padding="SAME", groups=2, name="c1")
        b = flow.layers.conv3d(v, 5, [1, 2, 3], name="c3", use_bias=False)
        return flow.math.reduce_sum(a) + flow.math.reduce_sum(b)

    job(np.ones((2, 4, 8), np.float32), np.ones((1, 2, 4, 4, 4), np.float32))
    shapes = {k: v.shape for k, v in flow.get_all_variables().items()}
    assert shapes == {"c1-weight": (6, 2, 3), "c1-bias": (6,), "c3-weight": (5, 2, 1, 2, 3)}
    w = flow.get_all_variables()["c1-weight"]
    assert 0 < np.abs(w).max() <= np.sqrt(6 / (2 * 3 + 6 * 3)) + 1e-6  # Xavier uniform

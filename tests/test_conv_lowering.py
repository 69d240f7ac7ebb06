"""The fast forms of convolutions and pools (jobflow/_src/ops/lowering.py) against PyTorch:
forward values and gradients, for the block (reshape + reduce) pools and the reduce_window
fallback, and for conv2d with the channels-last switch on and off."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow
from jobflow._src.ops import lowering

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)


@pytest.fixture
def switches():
    """Restores lowering.ENABLED after a test that flips it."""
    saved = dict(lowering.ENABLED)
    yield lowering.ENABLED
    lowering.ENABLED.clear()
    lowering.ENABLED.update(saved)


def _primitives(fn, *args):
    return {e.primitive.name for e in jax.make_jaxpr(fn)(*args).jaxpr.eqns}


def _weights(shape):
    """Distinct cotangent weights, so a gradient routed to the wrong element shows."""
    return np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape) / np.prod(shape)


def _pool_pair(op, x, k, s, padding, nhwc=False):
    """(value, gradient) of ours and of torch's pool of the NCHW ``x`` (ours fed NHWC when
    ``nhwc``), gradients of ``sum(out * weights)``."""
    fn = {"max": flow.nn.max_pool2d, "avg": flow.nn.avg_pool2d}[op]
    fmt = "NHWC" if nhwc else "NCHW"
    xin = x.transpose(0, 2, 3, 1) if nhwc else x
    tpad = 0 if padding == "VALID" else padding
    xt = torch.from_numpy(x).requires_grad_()
    if op == "max":
        yt = F.max_pool2d(xt, k, s, tpad)
    else:  # OneFlow (and TF) exclude padded positions from the count
        yt = F.avg_pool2d(xt, k, s, tpad, count_include_pad=False)
    wts = _weights(yt.shape)
    (yt * torch.from_numpy(wts)).sum().backward()

    def loss(a):
        out = fn(a, k, s, padding if padding == "VALID" else [(padding, padding)] * 2, data_format=fmt)
        out = jnp.transpose(out, (0, 3, 1, 2)) if nhwc else out
        return jnp.sum(out * wts), out

    (_, y), g = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(xin))
    g = np.asarray(g).transpose(0, 3, 1, 2) if nhwc else np.asarray(g)
    return (np.asarray(y), g), (yt.detach().numpy(), xt.grad.numpy())


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("nhwc", [False, True])
@pytest.mark.parametrize(
    "shape, k", [((2, 3, 6, 8), 2), ((3, 5, 6, 9), (2, 3)), ((1, 2, 9, 3), (3, 1)), ((2, 4, 4, 4), 4)]
)
def test_tiling_pools_take_the_block_path_and_match_torch(op, nhwc, shape, k):
    x = RNG.normal(size=shape).astype(np.float32)
    (y, g), (ty, tg) = _pool_pair(op, x, k, k, "VALID", nhwc)
    np.testing.assert_allclose(y, ty, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-7)
    fn = {"max": flow.nn.max_pool2d, "avg": flow.nn.avg_pool2d}[op]
    prims = _primitives(lambda a: fn(a, k, k, "VALID"), jnp.asarray(x))
    assert not any("reduce_window" in p for p in prims), prims


def test_max_pool_ties_and_nan_follow_torch():
    """Integer-valued inputs tie often: the gradient goes to the first maximum in row-major
    window order; a NaN wins its window (and takes the gradient), as in PyTorch."""
    x = RNG.integers(0, 3, size=(2, 3, 6, 8)).astype(np.float32)
    x[0, 0, 0, 1] = np.nan
    x[1, 2, 3, 2] = np.nan
    x[1, 2, 2, 3] = np.nan  # two NaNs in one window: the last one scanned wins
    (y, g), (ty, tg) = _pool_pair("max", x, 2, 2, "VALID")
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(g, tg)
    assert (g != 0).sum() == y.size  # exactly one element per window receives its gradient


def test_max_pool_all_negative_infinity_window():
    x = np.full((1, 1, 2, 4), -np.inf, np.float32)
    x[0, 0, 1, 3] = 1.0
    (y, g), (ty, tg) = _pool_pair("max", x, 2, 2, "VALID")
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(g, tg)


@pytest.mark.parametrize(
    "op, shape, k, s, padding",
    [
        ("max", (2, 3, 7, 7), 2, 2, "VALID"),  # 7 does not divide: the last row is dropped
        ("avg", (2, 3, 7, 7), 2, 2, "VALID"),
        ("max", (2, 3, 8, 8), 3, 2, "VALID"),  # overlapping windows
        ("avg", (2, 3, 8, 8), 3, 3, 1),  # padded
        ("max", (2, 3, 8, 8), 2, 2, 1),
        ("max", (2, 3, 10, 10), 5, 5, "VALID"),  # 25 elements: reduce_window
    ],
)
def test_other_pools_fall_back_to_reduce_window_and_match_torch(op, shape, k, s, padding):
    x = RNG.normal(size=shape).astype(np.float32)
    (y, g), (ty, tg) = _pool_pair(op, x, k, s, padding)
    np.testing.assert_allclose(y, ty, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-7)
    fn = {"max": flow.nn.max_pool2d, "avg": flow.nn.avg_pool2d}[op]
    pads = padding if padding == "VALID" else [(padding, padding)] * 2
    prims = _primitives(lambda a: fn(a, k, s, pads), jnp.asarray(x))
    assert any("reduce_window" in p for p in prims), prims


def test_block_pool_equals_reduce_window_path(switches):
    """The same pools with the block path switched off: equal values and gradients."""
    x = jnp.asarray(RNG.normal(size=(2, 3, 6, 8)).astype(np.float32))
    outs = []
    for on in (True, False):
        switches["block_pool"] = on
        for fn in (flow.nn.max_pool2d, flow.nn.avg_pool2d):
            outs.append(jax.value_and_grad(lambda a, fn=fn: jnp.sum(fn(a, 2, 2, "SAME") ** 2))(x))
    for (a, ga), (b, gb) in zip(outs[:2], outs[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(ga, gb, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_3d_block_pools_match_torch(op):
    x = RNG.normal(size=(2, 3, 4, 6, 2)).astype(np.float32)
    fn = flow.nn.max_pool3d if op == "max" else flow.nn.avg_pool3d
    k = (2, 3, 2)
    xt = torch.from_numpy(x).requires_grad_()
    yt = (F.max_pool3d if op == "max" else F.avg_pool3d)(xt, k, k)
    wts = _weights(yt.shape)
    (yt * torch.from_numpy(wts)).sum().backward()
    y, g = jax.value_and_grad(lambda a: jnp.sum(fn(a, k, k, "VALID") * wts))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(x), k, k, "VALID")), yt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g), xt.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_block_pools_keep_dtypes():
    xi = jnp.asarray(RNG.integers(-50, 50, size=(2, 3, 4, 4)).astype(np.int32))
    got = flow.nn.max_pool2d(xi, 2, 2, "VALID")
    want = xi.reshape(2, 3, 2, 2, 2, 2).max(axis=(3, 5))
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, want)
    xb = jnp.asarray(RNG.normal(size=(2, 3, 4, 4)).astype(np.float32)).astype(jnp.bfloat16)
    avg = flow.nn.avg_pool2d(xb, 2, 2, "VALID")
    assert avg.dtype == jnp.bfloat16
    want = xb.astype(jnp.float32).reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5)).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(avg, np.float32), np.asarray(want, np.float32))


def test_max_pool_forward_mode_picks_the_first_maximum():
    """jax.jvp works through the block max pool: the tangent of each window's output is
    the tangent of the element the forward pass chose."""
    x = jnp.asarray([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 1.0]]]])
    t = jnp.asarray([[[[10.0, 20.0, 30.0, 40.0], [50.0, 60.0, 70.0, 80.0]]]])
    y, ty = jax.jvp(lambda a: flow.nn.max_pool2d(a, 2, 2, "VALID"), (x,), (t,))
    np.testing.assert_array_equal(y, [[[[3.0, 2.0]]]])
    np.testing.assert_array_equal(ty, [[[[20.0, 30.0]]]])  # the first 3 (row 0), the first 2


def _conv_cases():
    shapes = [((2, 3, 9, 7), (4, 3, 3, 3), 1), ((2, 4, 8, 11), (6, 2, 3, 2), 2)]
    settings = [
        (1, 1, "VALID"),
        (2, 1, "SAME"),
        (1, 2, "SAME"),
        (2, 1, [(1, 2), (0, 1)]),
        ((2, 3), 2, "VALID"),
    ]
    return [(*a, *b) for a, b in itertools.product(shapes, settings)]


def _torch_conv(x, w, stride, dilation, pads, groups):
    """torch's conv2d with explicit (before, after) padding per axis."""
    (t, b), (lft, r) = pads
    xp = F.pad(x, (lft, r, t, b))
    return F.conv2d(xp, w, stride=stride, dilation=dilation, groups=groups)


def _oneflow_pads(padding, x, w, stride, dilation):
    """OneFlow's padding as pairs: SAME puts the larger half before (hand-derived)."""
    if not isinstance(padding, str):
        return padding
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    pairs = []
    for size, k, s, d in zip(x.shape[2:], w.shape[2:], stride, dilation):
        total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
        pairs.append((total - total // 2, total // 2))
    return pairs


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("nhwc", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, groups, stride, dilation, padding", _conv_cases())
def test_conv2d_matches_torch(
    switches, channels_last, nhwc, x_shape, w_shape, groups, stride, dilation, padding
):
    """Values and both gradients, NCHW and NHWC, with the channels-last switch on and off."""
    switches["channels_last_conv"] = channels_last
    x = RNG.normal(size=x_shape).astype(np.float32)
    w = RNG.normal(size=w_shape).astype(np.float32)
    st = (stride, stride) if isinstance(stride, int) else stride
    dl = (dilation, dilation)
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    yt = _torch_conv(xt, wt, st, dl, _oneflow_pads(padding, x, w, st, dl), groups)
    wts = _weights(yt.shape)
    (yt * torch.from_numpy(wts)).sum().backward()
    fmt = "NHWC" if nhwc else "NCHW"
    xin = x.transpose(0, 2, 3, 1) if nhwc else x
    win = w.transpose(0, 2, 3, 1) if nhwc else w

    def loss(a, b):
        out = flow.nn.conv2d(a, b, stride, padding, fmt, dilation, groups)
        out = jnp.transpose(out, (0, 3, 1, 2)) if nhwc else out
        return jnp.sum(out * wts), out

    (_, y), (gx, gw) = jax.value_and_grad(loss, (0, 1), has_aux=True)(jnp.asarray(xin), jnp.asarray(win))
    if nhwc:
        gx, gw = np.asarray(gx).transpose(0, 3, 1, 2), np.asarray(gw).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(np.asarray(y), yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(gx), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(gw), wt.grad.numpy(), rtol=1e-4, atol=1e-4)

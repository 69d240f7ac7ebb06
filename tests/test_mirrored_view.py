"""Mirrored view: ``tp.ListNumpy.Placeholder`` inputs, one array per device (OneFlow's).

The body runs once per device on that device's arrays; variables are replicated and the
gradients averaged across devices. With equal per-device batches this is the consistent
view on the concatenated batch, which is the independent expectation here (and a
single-device run of it).
"""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl

DEVICES, PER_DEVICE = 4, 3


def _mirrored_cfg(n=DEVICES):
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())
    return cfg.default_placement_scope(flow.scope.placement("cpu", f"0:0-{n - 1}"))


def _net(x):
    init = flow.xavier_uniform_initializer()
    h = flow.layers.dense(x, 8, activation=flow.nn.tanh, kernel_initializer=init, name="h")
    return flow.layers.dense(h, 3, kernel_initializer=init, name="o")


def _data(steps=3):
    rng = np.random.default_rng(5)
    return [
        (
            rng.normal(size=(DEVICES * PER_DEVICE, 4)).astype(np.float32),
            rng.integers(0, 3, DEVICES * PER_DEVICE).astype(np.int32),
        )
        for _ in range(steps)
    ]


def _split(a):
    return list(a.reshape(DEVICES, PER_DEVICE, *a.shape[1:]))


@pytest.mark.parametrize("sharded", [False, True], ids=["replicated", "sharded-state"])
def test_mirrored_training_equals_consistent_training_on_the_concatenated_batch(sharded):
    @flow.global_function(type="train")
    def consistent(
        x: tp.Numpy.Placeholder((DEVICES * PER_DEVICE, 4)),
        y: tp.Numpy.Placeholder((DEVICES * PER_DEVICE,), dtype=flow.int32),
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, _net(x))
        flow.optimizer.SGD(0.3, momentum=0.9).minimize(loss)
        return loss

    ref_losses = [consistent(x, y) for x, y in _data()]
    ref = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    flow.clear_default_session()

    cfg = _mirrored_cfg().shard_optimizer_state(sharded).shard_variables(sharded)

    @flow.global_function(type="train", function_config=cfg)
    def consistent(
        x: tp.ListNumpy.Placeholder((PER_DEVICE, 4)),
        y: tp.ListNumpy.Placeholder((PER_DEVICE,), dtype=flow.int32),
    ) -> tp.ListNumpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, _net(x))
        flow.optimizer.SGD(0.3, momentum=0.9).minimize(loss)
        return loss

    for (x, y), ref_loss in zip(_data(), ref_losses):
        losses = consistent(_split(x), _split(y))
        assert isinstance(losses, list) and len(losses) == DEVICES
        assert all(l.shape == (PER_DEVICE,) for l in losses)
        np.testing.assert_allclose(np.concatenate(losses), ref_loss, rtol=1e-5, atol=1e-6)
    got = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    assert sorted(got) == sorted(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert "all-reduce" in consistent.compiled_text()
    split = session_impl.default_session().store["h-weight-momentum"].sharding
    assert split.is_fully_replicated != sharded


def test_each_device_computes_on_its_own_array():
    @flow.global_function(type="predict", function_config=_mirrored_cfg())
    def centered(x: tp.ListNumpy.Placeholder((PER_DEVICE, 2))) -> tp.ListNumpy:
        return x - flow.math.reduce_mean(x, axis=0, keepdims=True)  # the per-device mean

    @flow.global_function(type="predict", function_config=_mirrored_cfg())
    def stats(x: tp.ListNumpy.Placeholder((PER_DEVICE, 2))) -> tuple[tp.Numpy, tp.Numpy]:
        return flow.math.reduce_sum(x), x * 2.0

    xs = [
        np.random.default_rng(i).normal(size=(PER_DEVICE, 2)).astype(np.float32) + 10 * i
        for i in range(DEVICES)
    ]
    out = centered(xs)
    assert len(out) == DEVICES
    for got, x in zip(out, xs):
        np.testing.assert_allclose(got, x - x.mean(0, keepdims=True), rtol=1e-5, atol=1e-5)
    sums, doubled = stats(xs)  # tp.Numpy: per-device scalars stacked, arrays concatenated on axis 0
    np.testing.assert_allclose(sums, [x.sum() for x in xs], rtol=1e-5)
    np.testing.assert_allclose(doubled, 2 * np.concatenate(xs), rtol=1e-6)


def test_dropout_draws_different_masks_on_each_device():
    @flow.global_function(type="train", function_config=_mirrored_cfg())
    def drop(x: tp.ListNumpy.Placeholder((64,))) -> tp.ListNumpy:
        w = flow.get_variable("w", (1,), initializer=flow.ones_initializer())
        y = flow.nn.dropout(x * w, rate=0.5)
        flow.optimizer.SGD(0.0).minimize(flow.math.reduce_mean(y))
        return y

    ones = [np.ones(64, np.float32)] * DEVICES
    masks = [tuple(m != 0) for m in drop(ones)]
    assert len(set(masks)) == DEVICES  # same input everywhere, four different masks
    for m in drop(ones):
        assert set(np.unique(m)) <= {0.0, 2.0}


def test_mirrored_input_errors():
    @flow.global_function(type="predict", function_config=_mirrored_cfg())
    def ident(x: tp.ListNumpy.Placeholder((None, 2))) -> tp.ListNumpy:
        return x

    good = np.zeros((2, 2), np.float32)
    with pytest.raises(TypeError, match=r"argument 'x': a tp.ListNumpy.Placeholder takes a non-empty list"):
        ident(good)
    with pytest.raises(
        ValueError,
        match=r"one array per device of the job's placement on this process "
        r"\(4: .*\); got a list of 3",
    ):
        ident([good] * 3)
    shapes = r"\[\(2, 2\), \(2, 2\), \(2, 2\), \(1, 2\)\]"
    with pytest.raises(ValueError, match=r"must all have one shape; got shapes " + shapes):
        ident([good] * 3 + [good[:1]])
    with pytest.raises(TypeError, match=r"argument 'x'\[1\]: expected dtype float32; got int32"):
        ident([good, good.astype(np.int32), good, good])
    with pytest.raises(ValueError, match=r"argument 'x'\[0\]: expected rank 2"):
        ident([good[0]] * 4)
    assert [a.shape for a in ident([good[:1]] * 4)] == [(1, 2)] * 4  # None dims vary per call


def test_views_must_match_the_placeholders():
    @flow.global_function(type="predict")
    def listy(x: tp.ListNumpy.Placeholder((2,))) -> tp.Numpy:
        return x

    with pytest.raises(
        TypeError, match=r"argument 'x' is a tp.ListNumpy.Placeholder .* needs the mirrored view"
    ):
        listy([np.zeros(2, np.float32)])

    @flow.global_function(type="predict", function_config=_mirrored_cfg())
    def plain(x: tp.Numpy.Placeholder((2,), batch_axis=None)) -> tp.Numpy:
        return x

    with pytest.raises(TypeError, match=r"tp.Numpy.Placeholder argument 'x' is split .* needs a batch_axis"):
        plain(np.zeros(2, np.float32))

    @flow.global_function(type="predict", function_config=_mirrored_cfg())
    def switches(x: tp.ListNumpy.Placeholder((2,))) -> tp.Numpy:
        with flow.scope.consistent_view():
            return x

    with pytest.raises(
        ValueError, match=r"runs in the mirrored view and cannot enter flow.scope.consistent_view"
    ):
        switches([np.zeros(2, np.float32)] * DEVICES)
    assert session_impl.default_session().store == {}

"""``function_config.train.gradient_accumulation_steps(n)``: each call's batch is split into
n micro-batches inside the compiled step and one optimizer update uses their mean gradient.

Independent expectations: the same job on the whole batch (for a mean loss the update is
the same up to float rounding), hand-computed SGD steps, and numpy for the chained
batch-norm statistics."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp

BATCH, DIM = 8, 3


def _config(n=None, **kwargs):
    cfg = flow.function_config()
    if n is not None:
        cfg.train.gradient_accumulation_steps(n, **kwargs)
    return cfg


def _mlp_job(cfg, opt=lambda: flow.optimizer.Adam(0.05), batch=BATCH):
    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((batch, DIM)), y: tp.Numpy.Placeholder((batch,), dtype=flow.int32)
    ) -> tp.Numpy:
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, 6, activation=flow.nn.tanh, kernel_initializer=init, name="h")
        logits = flow.layers.dense(h, 3, kernel_initializer=init, name="o")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        opt().minimize(loss)
        return loss

    return train


def _batches(steps=3, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(batch, DIM)).astype(np.float32), rng.integers(0, 3, batch).astype(np.int32))
        for _ in range(steps)
    ]


def _store():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


def _train(make_job, batches):
    """``(job, outputs, store)`` of a fresh session training ``make_job()`` on ``batches``."""
    flow.clear_default_session()
    flow.config.seed(0)
    job = make_job()
    outputs = [job(x, y) for x, y in batches]
    return job, outputs, _store()


def _assert_close_stores(got, ref):
    assert got.keys() == ref.keys()
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_accumulated_update_equals_the_whole_batch(n=4):
    batches = _batches()
    _, whole, ref = _train(lambda: _mlp_job(_config()), batches)
    job, parts, got = _train(lambda: _mlp_job(_config(n)), batches)
    _assert_close_stores(got, ref)
    # outputs: per micro-batch, stacked; in order they are the whole batch's outputs
    assert parts[0].shape == (n, BATCH // n)
    for w, p in zip(whole, parts):
        np.testing.assert_allclose(p.reshape(-1), w, rtol=1e-5)
    assert job.last_info["loss"] == pytest.approx(float(whole[-1].mean()), rel=1e-5)
    assert got["System-Train-TrainStep-train"] == len(batches)  # one optimizer step per call
    assert job.num_traces == 1


def test_loss_scaling_and_accumulation_give_the_unscaled_update():
    batches = _batches(steps=2)
    _, _, ref = _train(lambda: _mlp_job(_config()), batches)
    opt = lambda: flow.optimizer.Adam(0.05, loss_scale_factor=1024.0)
    job, _, got = _train(lambda: _mlp_job(_config(4), opt=opt), batches)
    _assert_close_stores(got, ref)
    assert job.last_info["loss_scale"] == 1024.0


def test_hand_computed_sgd_on_a_linear_model():
    """w -= lr * mean over micro-batches of the micro-batch gradients of mean((x.w - y)^2)."""

    @flow.global_function(type="train", function_config=_config(2))
    def train(x: tp.Numpy.Placeholder((4, 2)), y: tp.Numpy.Placeholder((4,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        loss = flow.math.square(flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y)
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
        return loss

    x = np.array([[1, 0], [0, 1], [1, 1], [2, 0]], np.float32)
    y = np.array([1, 2, 3, 4], np.float32)
    w = np.zeros(2)
    for _ in range(2):
        train(x, y)
        grads = [2 * xm.T @ (xm @ w - ym) / len(ym) for xm, ym in ((x[:2], y[:2]), (x[2:], y[2:]))]
        w = w - 0.1 * np.mean(grads, axis=0)
    np.testing.assert_allclose(flow.get_all_variables()["w"], w, rtol=1e-6)


def test_schedule_and_counter_count_optimizer_steps():
    sched = flow.optimizer.PiecewiseConstantScheduler([2, 4], [0.3, 0.2, 0.1])
    job = _mlp_job(_config(4), opt=lambda: flow.optimizer.SGD(sched))
    lrs = []
    for x, y in _batches(steps=5):
        job(x, y)
        lrs.append(job.last_lr)
    by_update = [float(sched(np.int32(t))) for t in range(5)]  # keyed on optimizer steps
    by_micro_batch = [float(sched(np.int32(4 * t))) for t in range(5)]
    assert lrs == pytest.approx(by_update) and by_update != pytest.approx(by_micro_batch)
    assert job.last_info["step"] == 4
    assert flow.get_all_variables()["System-Train-TrainStep-train"] == 5


def test_body_sees_micro_batches_and_unsplit_arguments_go_whole():
    seen = {}

    @flow.global_function(type="train", function_config=_config(4))
    def train(
        x: tp.Numpy.Placeholder((BATCH, DIM)), scale: tp.Numpy.Placeholder((2,), batch_axis=None)
    ) -> tp.Numpy:
        seen["x"], seen["scale"] = tuple(x.shape), tuple(scale.shape)
        w = flow.get_variable("w", (DIM,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(x * flow.reshape(w, (1, DIM)), axis=1) * scale[0] + scale[1]
        flow.optimizer.SGD(0.1).minimize(loss)
        return loss

    x = np.arange(BATCH * DIM, dtype=np.float32).reshape(BATCH, DIM)
    out = train(x, np.array([2.0, 1.0], np.float32))
    assert seen == {"x": (BATCH // 4, DIM), "scale": (2,)}
    np.testing.assert_allclose(out.reshape(-1), x.sum(1) * 2 + 1)


def test_batch_norm_statistics_chain_over_micro_batches():
    momentum = 0.9

    @flow.global_function(type="train", function_config=_config(2))
    def train(x: tp.Numpy.Placeholder((BATCH, 2))) -> tp.Numpy:
        h = flow.layers.batch_normalization(x, axis=1, momentum=momentum, name="bn")
        loss = flow.math.reduce_mean(flow.math.square(h))
        flow.optimizer.SGD(0.0).minimize(loss)
        return loss

    x = np.random.default_rng(3).normal(size=(BATCH, 2)).astype(np.float32)
    train(x)
    mean, var = np.zeros(2), np.ones(2)
    for part in (x[: BATCH // 2], x[BATCH // 2 :]):  # micro-batch 2 starts from micro-batch 1's values
        mean = momentum * mean + (1 - momentum) * part.mean(0)
        var = momentum * var + (1 - momentum) * part.var(0, ddof=1)
    stored = flow.get_all_variables()
    np.testing.assert_allclose(stored["bn-moving_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(stored["bn-moving_variance"], var, rtol=1e-5)


def test_each_micro_batch_draws_its_own_dropout_mask():
    @flow.global_function(type="train", function_config=_config(2))
    def train(x: tp.Numpy.Placeholder((4, 64))) -> tp.Numpy:
        w = flow.get_variable("w", (64,), initializer=flow.ones_initializer())
        h = flow.nn.dropout(x * flow.reshape(w, (1, 64)), rate=0.5)
        flow.optimizer.SGD(0.0).minimize(flow.math.reduce_mean(h))
        return h

    out = train(np.ones((4, 64), np.float32))  # both micro-batches are identical inputs
    assert out.shape == (2, 2, 64)
    assert not np.array_equal(out[0], out[1])
    assert set(np.unique(out)) <= {0.0, 2.0}


def _mirrored_job():
    cfg = _config(2).default_logical_view(flow.scope.mirrored_view())
    cfg.default_placement_scope(flow.scope.placement("cpu", "0:0-1"))

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.ListNumpy.Placeholder((BATCH // 2, DIM)),
        y: tp.ListNumpy.Placeholder((BATCH // 2,), dtype=flow.int32),
    ) -> tp.Numpy:
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, 6, activation=flow.nn.tanh, kernel_initializer=init, name="h")
        logits = flow.layers.dense(h, 3, kernel_initializer=init, name="o")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.Adam(0.05).minimize(loss)
        return loss

    return train


def test_mirrored_and_two_device_accumulation_equal_the_whole_batch():
    batches = _batches()
    _, _, ref = _train(lambda: _mlp_job(_config()), batches)
    two = flow.scope.placement("cpu", "0:0-1")
    _, _, got = _train(lambda: _mlp_job(_config(2).default_placement_scope(two)), batches)
    _assert_close_stores(got, ref)

    split = [(np.split(x, 2), np.split(y, 2)) for x, y in batches]
    _, outs, got = _train(_mirrored_job, split)
    assert outs[-1].shape == (2 * 2, BATCH // 4)  # per device (micro-batches, micro-batch), concatenated
    _assert_close_stores(got, ref)


def test_predict_jobs_ignore_the_setting():
    @flow.global_function(type="predict", function_config=_config(4))
    def predict(x: tp.Numpy.Placeholder((BATCH, DIM))) -> tp.Numpy:
        return x * 2

    x = np.ones((BATCH, DIM), np.float32)
    np.testing.assert_array_equal(predict(x), 2 * x)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (
            lambda c: c.train.gradient_accumulation_steps(0),
            ValueError,
            r"function_config.train.gradient_accumulation_steps expects an int >= 1; got 0",
        ),
        (lambda c: c.train.gradient_accumulation_steps(2.0), ValueError, r"expects an int >= 1; got 2.0"),
        (lambda c: c.train.gradient_accumulation_steps(True), ValueError, r"expects an int >= 1; got True"),
        (
            lambda c: c.train.gradient_accumulation_steps(2, accumulator_dtype=flow.int32),
            ValueError,
            r"accumulator_dtype\) expects a floating dtype; got int32",
        ),
    ],
)
def test_setting_errors(call, exc, pattern):
    cfg = flow.function_config()
    with pytest.raises(exc, match=pattern):
        call(cfg)
    assert cfg.settings["gradient_accumulation_steps"] == 1


@pytest.mark.parametrize(
    "devices, n, pattern",
    [
        (
            1,
            3,
            r"job 'train' argument 'x': gradient_accumulation_steps\(3\) splits the batch axis \(0\) into 3 "
            r"micro-batches, but its size 8 is not divisible",
        ),
        (
            4,
            4,
            r"micro-batches of 2 along the batch axis \(0\), which do not divide across the job's 4 devices",
        ),
    ],
)
def test_indivisible_batches_raise_before_anything_is_created(devices, n, pattern):
    from jobflow._src.runtime.session import default_session

    cfg = _config(n).default_placement_scope(flow.scope.placement("cpu", f"0:0-{devices - 1}"))
    job = _mlp_job(cfg)
    with pytest.raises(ValueError, match=pattern):
        job(*_batches(1)[0])
    assert default_session().store == {}

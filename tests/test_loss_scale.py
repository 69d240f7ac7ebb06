"""Loss scaling inside the compiled step: static scales, OneFlow's and MindSpore's dynamic
rules against hand-derived sequences and MindSpore's own cell, the skip guarantee, the
float16 underflow that scaling prevents, checkpoints of the scale state."""

import json
import pathlib

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.optimizer import loss_scale as LS

GOLDENS = json.loads((pathlib.Path(__file__).parent / "goldens" / "mindspore_loss_scale.json").read_text())
STEP = "System-Train-TrainStep-train"
SCALE = "System-Train-DynamicLossScale-train-LossScale"
OVERFLOW = np.array([np.inf, 1.0], np.float32)
CLEAN = np.array([1.0, 1.0], np.float32)


def scale_job(**opt_kwargs):
    """``loss = sum(w * x)``: the gradient is ``x``, so an inf in ``x`` overflows it."""

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(w * x)
        flow.optimizer.SGD(0.01, momentum=0.0, **opt_kwargs).minimize(loss)
        return loss

    return train


def run(job, steps, overflow):
    """Calls ``job`` for ``steps`` steps; returns (scales used, skipped flags)."""
    scales, skipped = [], []
    for i in range(steps):
        job(OVERFLOW if i in overflow else CLEAN)
        info = job.last_info
        scales.append(info["loss_scale"])
        skipped.append(info["skipped"])
    return scales, skipped


# -------------------------------------------------------------- dynamic rules, exact sequences

# Overflow at steps 3, 4 and 10, period / window 5, initial scale 1024. By hand:
# steps 0-2 clean (count 1..3); 3: overflow -> 512; 4: overflow -> 256; 5-9 clean, the 5th
# clean step (9) doubles -> 512; 10: overflow -> 256; 11-15 clean, 15 doubles -> 512.
HAND = [1024, 1024, 1024, 1024, 512, 256, 256, 256, 256, 256, 512, 256, 256, 256, 256, 256, 512]


def test_oneflow_dynamic_loss_scale_follows_the_hand_derived_sequence():
    train = scale_job(
        loss_scale_policy=flow.optimizer.loss_scale.dynamic_loss_scale(
            initial_loss_scale=1024, increment_period=5
        )
    )
    scales, skipped = run(train, 17, {3, 4, 10})
    assert scales == HAND
    assert skipped == [i in (3, 4, 10) for i in range(17)]
    v = flow.get_all_variables()
    assert v[STEP] == 17 - 3  # skipped steps do not advance the counter
    assert v[SCALE] == 512 and v["System-Train-DynamicLossScale-train-GoodStepCounter"] == 1
    assert train.last_info["skipped_steps"] == 3
    np.testing.assert_allclose(v["w"], [1.0 - 0.01 * 14, 1.0 - 0.01 * 14], rtol=1e-6)
    assert train.num_traces == 1  # the scale changed 6 times without a retrace


def test_mindspore_dynamic_loss_scale_manager_follows_the_hand_derived_sequence():
    # MindSpore: cur starts at 1, last at 0; grows when cur - last >= 5 (cur 5 = step 4 would
    # grow but step 3 overflowed: last = 4, 5); step 9 (cur 10): 10 - 5 = 5 -> x2.
    train = scale_job(loss_scale_policy=LS.DynamicLossScaleManager(init_loss_scale=1024, scale_window=5))
    scales, _ = run(train, 17, {3, 4, 10})
    assert scales == HAND
    v = flow.get_all_variables()
    assert v["System-Train-DynamicLossScale-train-CurrentIteratorStep"] == 18
    assert v["System-Train-DynamicLossScale-train-LastOverflowIteratorStep"] == 16
    assert v[STEP] == 14


@pytest.mark.parametrize("pattern", sorted(GOLDENS["patterns"]))
def test_mindspore_rule_matches_mindspores_update_cell(pattern):
    p = GOLDENS["patterns"][pattern]
    train = scale_job(loss_scale_policy=LS.DynamicLossScaleManager(p["init"], p["factor"], p["window"]))
    scales, _ = run(train, p["steps"], set(p["overflow"]))
    np.testing.assert_array_equal(np.float32(scales), np.float32(p["cell"]))


def test_oneflow_rule_backs_off_to_one_and_never_below():
    train = scale_job(loss_scale_policy=LS.dynamic_loss_scale(16, increment_period=3))
    scales, _ = run(train, 10, set(range(7)))
    # 7 overflows: 16 8 4 2 1 1 1, then 3 clean steps at 1; the third grows it to 2 (step 10)
    assert scales == [16, 8, 4, 2, 1, 1, 1, 1, 1, 1]
    assert flow.get_all_variables()[SCALE] == 2


def test_max_loss_scale_caps_both_rules():
    for policy in (
        LS.dynamic_loss_scale(4, increment_period=1, max_loss_scale=16),
        LS.DynamicLossScaleManager(4, 2, 1, max_loss_scale=16),
    ):
        flow.clear_default_session()
        scales, _ = run(scale_job(loss_scale_policy=policy), 6, set())
        assert scales == [4, 8, 16, 16, 16, 16]


def test_default_cap_keeps_the_scale_finite():
    train = scale_job(loss_scale_policy=LS.dynamic_loss_scale(2.0**126, increment_period=1))
    scales, _ = run(train, 4, set())
    assert scales == [2.0**126, 2.0**127, LS.FLT_MAX, LS.FLT_MAX]


def test_defaults_are_oneflows_and_mindspores():
    one = LS.dynamic_loss_scale()
    assert (one.initial_loss_scale, one.increment_period, one.multiplier) == (2.0**30, 2000, 2.0)
    ms = LS.DynamicLossScaleManager()
    assert (ms.init_loss_scale, ms.scale_factor, ms.scale_window) == (2.0**24, 2.0, 2000)
    fixed = LS.FixedLossScaleManager()
    assert (fixed.get_loss_scale(), fixed.get_drop_overflow_update()) == (128.0, True)


# -------------------------------------------------------------------------- static scales


def test_static_policies_scale_and_unscale():
    # The same step with or without a static scale; 2**10 keeps every value exact.
    results = []
    for kwargs in (
        {},
        {"loss_scale_factor": 1024.0},
        {"loss_scale_policy": LS.static_loss_scale(1024.0)},
        {"loss_scale_policy": LS.FixedLossScaleManager(1024.0)},
    ):
        flow.clear_default_session()
        train = scale_job(**kwargs)
        train(np.array([3.0, -2.0], np.float32))
        results.append((flow.get_all_variables()["w"].copy(), train.last_info["loss_scale"]))
    np.testing.assert_allclose(results[0][0], [0.97, 1.02], rtol=1e-6)
    for w, _ in results[1:]:
        assert w.tobytes() == results[0][0].tobytes()  # bitwise: scaling by 2**10 is exact
    assert [s for _, s in results] == [1.0, 1024.0, 1024.0, 1024.0]


@pytest.mark.parametrize(
    "kwargs, skips",
    [
        ({"loss_scale_policy": LS.static_loss_scale(8.0)}, False),  # OneFlow checks nothing
        ({"loss_scale_policy": LS.FixedLossScaleManager(8.0)}, True),
        ({"loss_scale_policy": LS.FixedLossScaleManager(8.0, drop_overflow_update=False)}, False),
    ],
)
def test_static_scales_skip_only_when_asked(kwargs, skips):
    train = scale_job(**kwargs)
    train(OVERFLOW)
    v = flow.get_all_variables()
    assert train.last_info["skipped"] is skips
    assert v[STEP] == (0 if skips else 1)
    assert bool(np.isfinite(v["w"]).all()) is skips


# ----------------------------------------------------------------- the skip guarantee


def _guarded_net(x, y):
    """BN + dropout + two optimizers (Adam with a stateful schedule; SGD with momentum
    and warmup) sharing one dynamic loss scale."""
    init = flow.random_normal_initializer(stddev=0.5)
    h = flow.layers.dense(x, 8, kernel_initializer=init, name="fc1")
    h = flow.layers.batch_normalization(h, axis=1, momentum=0.9, name="bn")
    h = flow.nn.dropout(flow.nn.relu(h), rate=0.25)
    logits = flow.layers.dense(h, 3, kernel_initializer=init, name="fc2")
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
    decay = flow.schedule.MultiplicativeLR(0.05, lambda t: 0.9)
    warm = flow.optimizer.PolynomialScheduler(0.1, 20, warmup=flow.optimizer.warmup.linear(3, 0.1))
    flow.optimizer.CombinedOptimizer(
        [
            flow.optimizer.Adam(decay, variables=r"^fc1|^bn"),
            flow.optimizer.SGD(warm, momentum=0.9, variables=r"^fc2"),
        ],
        loss_scale_policy=LS.dynamic_loss_scale(2.0**12, increment_period=2),
    ).minimize(loss)
    return loss


def _snapshot():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


def test_a_nan_batch_changes_no_variable_slot_statistic_schedule_state_or_counter():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((6, 4)), y: tp.Numpy.Placeholder((6,), dtype=flow.int32)) -> tp.Numpy:
        return _guarded_net(x, y)

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 4)).astype(np.float32), rng.integers(0, 3, 6).astype(np.int32)
    for _ in range(3):
        train(x, y)
    lr_before = (train.last_info["lr"], train.last_info["lr_1"])
    before = _snapshot()
    bad = x.copy()
    bad[2, 1] = np.nan  # one element: BN spreads it over the batch
    train(bad, y)
    info = train.last_info
    after = _snapshot()
    assert info["skipped"] is True and info["step"] == 3
    changed = {k for k in before if before[k].tobytes() != after[k].tobytes()}
    # what may change: the RNG key, the scale state and the skip counters; nothing else
    assert changed == {
        "System-RNG-train",
        SCALE,
        "System-Train-DynamicLossScale-train-GoodStepCounter",
        "System-Train-SkippedSteps-train",
        "System-Train-ConsecutiveSkippedSteps-train",
    }
    assert after[SCALE] == before[SCALE] / 2
    assert any(k.endswith("-lr-factor") for k in after)  # the schedule state is among the unchanged
    train(x, y)  # the next clean step uses the same step counter and learning rates
    assert train.last_info["step"] == 3
    assert (train.last_info["lr"], train.last_info["lr_1"]) != lr_before  # step 3 != step 2 ...
    nxt = train.last_info
    flow.clear_default_session()

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((6, 4)), y: tp.Numpy.Placeholder((6,), dtype=flow.int32)) -> tp.Numpy:
        return _guarded_net(x, y)

    for _ in range(4):  # ... and equal to step 3 of a run without the NaN batch
        train(x, y)
    assert (nxt["lr"], nxt["lr_1"]) == (train.last_info["lr"], train.last_info["lr_1"])


def test_combined_optimizer_shares_one_scale_and_skips_every_update():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        a = flow.get_variable("a", (2,), initializer=flow.ones_initializer())
        b = flow.get_variable("b", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(a * x) + flow.math.reduce_sum(b)  # only a's gradient overflows
        flow.optimizer.CombinedOptimizer(
            [
                flow.optimizer.SGD(0.1, momentum=0.0, variables=["a"]),
                flow.optimizer.SGD(0.1, momentum=0.0, variables=["b"]),
            ],
            loss_scale_policy=LS.DynamicLossScaleManager(64),
        ).minimize(loss)
        return loss

    train(OVERFLOW)
    v = flow.get_all_variables()
    assert np.all(v["a"] == 1.0) and np.all(v["b"] == 1.0)
    assert [n for n in v if n.endswith("LossScale")] == [SCALE]
    assert v[SCALE] == 32


def test_mirrored_view_agrees_on_a_step_skipped_on_one_device():
    cfg = flow.function_config()
    cfg.default_logical_view(flow.scope.mirrored_view())
    cfg.default_placement_scope(flow.scope.placement("cpu", "0:0-1"))

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.ListNumpy.Placeholder((1, 2))) -> tp.ListNumpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(flow.reshape(w, (1, 2)) * x, axis=1)
        flow.optimizer.SGD(
            0.1, momentum=0.0, loss_scale_policy=LS.dynamic_loss_scale(8, increment_period=10)
        ).minimize(loss)
        return loss

    train([CLEAN[None], OVERFLOW[None]])  # only device 1 sees the inf
    assert train.last_info["skipped"] is True
    v = flow.get_all_variables()
    assert np.all(v["w"] == 1.0) and v[SCALE] == 4 and v[STEP] == 0
    train([CLEAN[None], CLEAN[None]])
    np.testing.assert_allclose(flow.get_all_variables()["w"], [0.9, 0.9], rtol=1e-6)


# ---------------------------------------------------------- float16: underflow and overflow


def _fp16_job(**opt_kwargs):
    cfg = flow.function_config().enable_auto_mixed_precision(True).amp_dtype(flow.float16)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((4, 8)), y: tp.Numpy.Placeholder((4, 1))) -> tp.Numpy:
        w = flow.get_variable("w", (8, 1), initializer=flow.constant_initializer(0.5))
        err = flow.math.subtract(flow.cast(flow.matmul(x, w), flow.float32), y)
        # A tiny loss: d loss / d pred ~ 1e-8, below float16's smallest subnormal (6e-8).
        loss = flow.math.multiply(flow.math.square(err), 1e-8)
        flow.optimizer.SGD(1e6, momentum=0.0, **opt_kwargs).minimize(loss)
        return loss

    return train


def _fp16_data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(4, 1)).astype(np.float32)


def test_float16_gradients_underflow_without_loss_scaling_and_not_with_it():
    x, y = _fp16_data()
    # float32 expectation: g = 2e-8 / 4 * x^T (x w - y); w -= 1e6 g
    w0 = np.full((8, 1), 0.5, np.float64)
    want = w0 - 1e6 * (2e-8 / 4) * x.T.astype(np.float64) @ (x.astype(np.float64) @ w0 - y)

    train = _fp16_job()
    train(x, y)
    assert train.last_info["global_grad_norm"] == 0.0  # every gradient element underflowed
    np.testing.assert_array_equal(flow.get_all_variables()["w"], w0)

    flow.clear_default_session()
    train = _fp16_job(loss_scale_policy=LS.dynamic_loss_scale())  # OneFlow's 2**30
    train(x, y)
    assert train.last_info["skipped"] is False and train.last_info["loss_scale"] == 2.0**30
    np.testing.assert_allclose(flow.get_all_variables()["w"], want, rtol=2e-3)


def test_float16_overflow_at_a_large_scale_backs_off_until_the_step_fits():
    x, y = _fp16_data()
    # Gradients ~1e-8 times 2**45 ~ 3e5: beyond float16's 65504, so the scaled backward
    # pass overflows until the scale has come down a few times.
    train = _fp16_job(loss_scale_policy=LS.dynamic_loss_scale(2.0**45, increment_period=1000))
    scales, skipped = [], []
    for _ in range(8):
        train(x, y)
        scales.append(train.last_info["loss_scale"])
        skipped.append(train.last_info["skipped"])
    first = skipped.index(False)
    assert first >= 1 and not any(skipped[first:])  # skipped until the scale fits, then applied
    assert scales[: first + 1] == [2.0**45 / 2**i for i in range(first + 1)]
    assert flow.get_all_variables()[STEP] == 8 - first


# ----------------------------------------------------------------- checkpoints, observability


@pytest.mark.parametrize("fmt", ["jobflow", "oneflow"])
def test_checkpoint_round_trips_the_loss_scale_state(tmp_path, fmt):
    pattern = {1, 2, 5}
    policy = LS.DynamicLossScaleManager(256, 2, 3)
    train = scale_job(loss_scale_policy=policy)
    run(train, 4, pattern)
    flow.checkpoint.save(tmp_path / "ckpt", format=fmt)
    saved = _snapshot()
    rest = run(train, 6, {i - 4 for i in pattern if i >= 4})
    expected = _snapshot()

    flow.clear_default_session()
    train = scale_job(loss_scale_policy=policy)
    flow.checkpoint.load(tmp_path / "ckpt")
    assert _snapshot()[SCALE] == saved[SCALE] == 64
    assert run(train, 6, {i - 4 for i in pattern if i >= 4}) == rest
    got = _snapshot()
    for k in expected:
        assert got[k].tobytes() == expected[k].tobytes(), k


def test_observability_fields_of_every_train_call():
    train = scale_job(
        loss_scale_policy=LS.dynamic_loss_scale(4, increment_period=100),
        grad_clipping=flow.optimizer.grad_clipping.by_global_norm(1.0),
    )
    train(np.array([3.0, 4.0], np.float32))
    info = train.last_info
    assert info["loss_scale"] == 4.0 and info["skipped"] is False and info["skipped_steps"] == 0
    assert info["global_grad_norm"] == pytest.approx(5.0) and info["grad_norm"] == pytest.approx(5.0)
    assert info["lr"] == pytest.approx(0.01) and info["step"] == 0


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LS.dynamic_loss_scale(increment_period=0), r"increment_period.*got increment_period=0"),
        (lambda: LS.dynamic_loss_scale(multiplier=1.0), r"multiplier.*> 1.*got multiplier=1.0"),
        (lambda: LS.dynamic_loss_scale(initial_loss_scale=0.5), r"initial_loss_scale.*>= 1"),
        (lambda: LS.dynamic_loss_scale(64, max_loss_scale=32), r"initial_loss_scale.*<= 32"),
        (lambda: LS.dynamic_loss_scale(float("inf")), r"initial_loss_scale.*finite"),
        (lambda: LS.static_loss_scale(0), r"loss_scale_factor.*> 0.*got loss_scale_factor=0"),
        (lambda: LS.FixedLossScaleManager(0.5), r"loss_scale.*>= 1.*got loss_scale=0.5"),
        (lambda: LS.DynamicLossScaleManager(scale_window=1.5), r"scale_window.*int.*got scale_window=1.5"),
        (lambda: LS.DynamicLossScaleManager(scale_factor=0.5), r"scale_factor.*got scale_factor=0.5"),
    ],
)
def test_bad_policy_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_policy_on_an_optimizer():
    with pytest.raises(TypeError, match=r"loss_scale_policy.*dynamic_loss_scale.*got 'dynamic'"):
        flow.optimizer.Adam(0.1, loss_scale_policy="dynamic")
    with pytest.raises(ValueError, match="mutually exclusive"):
        flow.optimizer.SGD(0.1, loss_scale_factor=2.0, loss_scale_policy=LS.dynamic_loss_scale())
    with pytest.raises(TypeError, match="drop_overflow_update"):
        LS.FixedLossScaleManager(8.0, drop_overflow_update="yes")
    with pytest.raises(ValueError, match="set it on the CombinedOptimizer"):
        flow.optimizer.CombinedOptimizer([flow.optimizer.SGD(0.1, loss_scale_policy=LS.dynamic_loss_scale())])

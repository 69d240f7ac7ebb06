"""The OneFlow 0.7 names at jobflow.schedule: OneFlow's semantics against hand-derived values
(where they differ from PyTorch: PolynomialLR, SequentialLR, WarmupLR, warm-restart decay
and limit, CosineDecayLR)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import jobflow.schedule as S
from jobflow._src.schedule.oneflow import restart_cycle


def _close(sched, want, rtol=1e-6):
    np.testing.assert_allclose(sched.values(len(want)), want, rtol=rtol, atol=1e-9)


def test_polynomial_lr_oneflow_end_and_cycle():
    # (b - end) (1 - c/D')^p + end; end defaults to an absolute 1e-4
    _close(S.PolynomialLR(0.1, 4), [0.1 - 0.0999 * t / 4 if t < 4 else 1e-4 for t in range(7)])
    # cycle: c = max(t, 1), D' = D * ceil(c / D)
    want = []
    for t in range(10):
        c = max(t, 1)
        d = 3 * math.ceil(c / 3)
        want.append((1.0 - 0.01) * (1 - c / d) ** 2 + 0.01)
    _close(S.PolynomialLR(1.0, 3, end_learning_rate=0.01, power=2.0, cycle=True), want)


def test_cosine_decay_lr_clamps_and_cosine_annealing_does_not():
    _close(
        S.CosineDecayLR(1.0, 10, alpha=0.2),
        [0.8 * 0.5 * (1 + math.cos(math.pi * min(t, 10) / 10)) + 0.2 for t in range(15)],
    )
    _close(
        S.CosineAnnealingLR(1.0, 10, eta_min=0.1),
        [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(35)],
    )


def test_sequential_lr_global_step_by_default_and_interval_rescaling():
    a, b = S.ConstantLR(1.0, 0.5, 100), S.StepLR(1.0, 3, 0.5)
    _close(S.SequentialLR([a, b], [4]), [0.5] * 4 + [0.5 ** (t // 3) for t in range(4, 10)])
    _close(
        S.SequentialLR([a, b], [4], interval_rescaling=True),
        [0.5] * 4 + [0.5 ** ((t - 4) // 3) for t in range(4, 10)],
    )


def test_warmup_lr_reference_example():
    # reference B: base 1e-3, wf .5, W 2, CosineDecayLR(5, alpha=.1) (global step after the warmup)
    sched = S.WarmupLR(S.CosineDecayLR(1e-3, 5, alpha=0.1), warmup_factor=0.5, warmup_iters=2)
    _close(sched, [5e-4, 5.945e-4, 6.891e-4, 4.109e-4, 1.859e-4, 1e-4], rtol=3e-4)  # 4 digits
    # prefix: ramp to base, then the schedule from its own step 0; constant method
    pre = S.WarmupLR(S.CosineDecayLR(1.0, 4), warmup_factor=0.5, warmup_iters=2, warmup_prefix=True)
    _close(pre, [0.5, 0.75] + [0.5 * (1 + math.cos(math.pi * min(t, 4) / 4)) for t in range(5)])
    const = S.WarmUpLR(0.2, warmup_factor=0.25, warmup_iters=3, warmup_method="constant")
    _close(const, [0.05, 0.05, 0.05, 0.2, 0.2])


def test_warm_restarts_decay_rate_and_restart_limit():
    # T_0=2, T_mult=2: cycles start at 0, 2, 6, 14; peak b * 0.5^k; after 2 restarts: eta_min
    sched = S.CosineAnnealingWarmRestarts(1.0, 2, T_mult=2, eta_min=0.01, decay_rate=0.5, restart_limit=2)
    want = []
    for t in range(10):
        k, start, length = (0, 0, 2) if t < 2 else (1, 2, 4) if t < 6 else (2, 6, 8)
        want.append(
            0.01 + (0.5**k - 0.01) * 0.5 * (1 + math.cos(math.pi * (t - start) / length)) if k < 2 else 0.01
        )
    _close(sched, want)


def test_exact_cycles_where_the_float_log_misfires():
    # OneFlow/PyTorch step(epoch): k = int(log(1 + t (m - 1) / T0, m)). Every cycle start for
    # T0 <= 20, m in {2, 3, 4, 5, 10} below 20000 must land in cycle k exactly; the float log
    # puts some of them one cycle early (reference: 40 misfires, e.g. T0=1, m=3, t=121).
    misfires = 0
    for m in (2, 3, 4, 5, 10):
        for t0 in range(1, 21):
            starts, s, length = [], 0, t0
            while s < 20000:
                starts.append(s)
                s, length = s + length, length * m
            n = len(starts)
            k, pos, length = restart_cycle(jnp.asarray(starts + [0] * (16 - n), jnp.int32), t0, m)
            np.testing.assert_array_equal(k[:n], np.arange(n), err_msg=f"T0={t0} T_mult={m}")
            np.testing.assert_array_equal(pos[:n], 0)
            np.testing.assert_array_equal(length[:n], t0 * m ** np.arange(n))
            misfires += sum(int(math.log(1 + s * (m - 1) / t0, m)) != k for k, s in enumerate(starts))
    assert misfires == 40
    # and the rate: exactly b * decay_rate**k at every restart, eta_min-free cosine in between
    vals = S.CosineAnnealingWarmRestarts(1.0, 1, 3, decay_rate=0.5).values(365)
    np.testing.assert_array_equal(vals[[0, 1, 4, 13, 40, 121, 364]], 0.5 ** np.arange(7, dtype=np.float32))
    assert vals[120] < 1e-4 and vals[122] == pytest.approx(
        0.5**5 * 0.5 * (1 + math.cos(math.pi / 243)), rel=1e-6
    )


def test_cyclic_and_one_cycle_shapes():
    _close(S.CyclicLR(0.0, 1.0, 2, 2), [0, 0.5, 1, 0.5, 0, 0.5, 1, 0.5])
    _close(S.CyclicLR(0.0, 1.0, 2, mode="triangular2"), [0, 0.5, 1, 0.5, 0, 0.25, 0.5, 0.25, 0])
    one = S.OneCycleLR(
        1.0, total_steps=11, pct_start=0.5, anneal_strategy="linear", div_factor=4, final_div_factor=5
    )
    # phases: 0.25 -> 1 over steps 0..4.5, then 1 -> 0.05 until step 10; held after
    want = [0.25 + 0.75 * t / 4.5 for t in range(5)] + [1 - 0.95 * (t - 4.5) / 5.5 for t in range(5, 11)]
    _close(one, want + [0.05, 0.05])


def test_chained_scheduler_rebases_each_schedule():
    # OneFlow: f2(f1(b, t), t); CosineAnnealingLR with eta_min is affine in its base
    c = S.ChainedScheduler([S.StepLR(1.0, 2, 0.5), S.CosineAnnealingLR(1.0, 4, eta_min=0.1)])
    want = [0.1 + (0.5 ** (t // 2) - 0.1) * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(8)]
    _close(c, want)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: S.StepLR(0.1, 0), r"StepLR\(step_size\) must be an int >= 1; got step_size=0"),
        (lambda: S.StepLR(-0.1, 3), r"StepLR\(base_lr\) must be >= 0; got base_lr=-0.1"),
        (
            lambda: S.MultiStepLR(0.1, [5, 5]),
            r"MultiStepLR\(milestones\) must be strictly increasing; got milestones=\[5, 5\]",
        ),
        (lambda: S.MultiStepLR(0.1, [-1]), r"milestones\) must hold ints >= 0; got milestones\[0\]=-1"),
        (
            lambda: S.ConstantLR(0.1, factor=1.5),
            r"ConstantLR\(factor\) must be >= 0 and <= 1; got factor=1.5",
        ),
        (lambda: S.LinearLR(0.1, total_iters=0), r"total_iters\) must be an int >= 1; got total_iters=0"),
        (lambda: S.CosineAnnealingLR(0.1, 2.5), r"T_max\) must be an int; got T_max=2.5"),
        (
            lambda: S.CosineAnnealingWarmRestarts(0.1, 10, T_mult=0),
            r"T_mult\) must be an int >= 1; got T_mult=0",
        ),
        (
            lambda: S.SequentialLR([S.StepLR(0.1, 3)], [5]),
            r"SequentialLR needs len\(milestones\) == len\(schedulers\) - 1",
        ),
        (
            lambda: S.SequentialLR([0.1, 0.2, 0.3], [5, 2]),
            r"SequentialLR\(milestones\) must be strictly increasing; got milestones=\[5, 2\]",
        ),
        (lambda: S.SequentialLR([0.1, 0.2], [5], interval_rescaling=[True, False]), "one bool per milestone"),
        (
            lambda: S.WarmupLR(0.1, warmup_method="exp"),
            r"warmup_method\) must be one of \['linear', 'constant'\]",
        ),
        (lambda: S.CyclicLR(0.1, 1.0, mode="sine"), r"CyclicLR\(mode\) must be one of"),
        (lambda: S.OneCycleLR(0.1), "needs total_steps, or epochs and steps_per_epoch"),
        (lambda: S.OneCycleLR(0.1, total_steps=3, pct_start=0.2), "gives an empty phase"),
        (lambda: S.ReduceLROnPlateau(0.1, factor=1.0), r"factor\) must be >= 0 and < 1; got factor=1.0"),
        (
            lambda: S.ReduceLROnPlateau(0.1, mode="up"),
            r"mode\) must be one of \['min', 'max'\]; got mode='up'",
        ),
        (lambda: S.LambdaLR(0.1, 0.5), r"lr_lambda\) must be a callable"),
        (lambda: S.PolynomialLR(0.1, 10, power=-1.0), r"power\) must be > 0; got power=-1.0"),
        (lambda: S.ExponentialLR(0.1, float("nan")), r"gamma\) must be a finite number; got gamma=nan"),
    ],
)
def test_invalid_arguments_raise_at_construction(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()

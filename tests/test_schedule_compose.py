"""Composition: join (offset vs global step), product, chain, warmup over any schedule,
optax schedules as they are."""

import numpy as np
import optax
import pytest

import jobflow.schedule as S


def test_join_offset_and_global_step():
    a, b = 1.0, S.StepLR(1.0, 2, 0.5)
    np.testing.assert_allclose(S.join([a, b], [3], step="offset").values(7), [1, 1, 1, 1, 1, 0.5, 0.5])
    np.testing.assert_allclose(
        S.join([a, b], [3], step="global").values(7), [1, 1, 1, 0.5, 0.25, 0.25, 0.125]
    )
    mixed = S.join([0.3, b, b], [2, 4], step=["global", "offset"])
    np.testing.assert_allclose(mixed.values(7), [0.3, 0.3, 0.5, 0.5, 1, 1, 0.5])
    with pytest.raises(TypeError):
        S.join([a, b], [3])  # the step mode is required
    with pytest.raises(
        ValueError, match=r"join\(step\) must be one of \['offset', 'global'\]; got step='local'"
    ):
        S.join([a, b], [3], step="local")


def test_join_matches_optax_join_schedules():
    parts = [optax.linear_schedule(0.0, 1.0, 10), optax.cosine_decay_schedule(1.0, 30)]
    ours = S.join(parts, [10], step="offset").values(50)
    np.testing.assert_allclose(
        ours, [optax.join_schedules(parts, [10])(t) for t in range(50)], rtol=1e-6, atol=1e-7
    )


def test_product_and_chain():
    p = S.product(S.ExponentialLR(1.0, 0.5), 0.1, S.ConstantLR(1.0, 0.5, 2))
    np.testing.assert_allclose(p.values(4), [0.05, 0.025, 0.025, 0.0125], rtol=1e-6)
    c = S.chain(S.StepLR(0.2, 2, 0.5), S.LinearLR(1.0, 0.5, 1.0, 4))
    np.testing.assert_allclose(c.values(6), [0.1, 0.125, 0.075, 0.0875, 0.05, 0.05], rtol=1e-6)
    with pytest.raises(TypeError, match="has no base_lr"):
        S.chain(S.StepLR(0.2, 2), lambda t: 0.1 * t).values(2)


def test_with_warmup_over_any_schedule():
    cos = optax.cosine_decay_schedule(1.0, 10)
    w = S.with_warmup(cos, 4).values(8)  # offset: ramp 0 -> cos(0), then cos(t - 4)
    np.testing.assert_allclose(
        w, [0, 0.25, 0.5, 0.75] + [float(cos(t)) for t in range(4)], rtol=1e-6, atol=1e-7
    )
    g = S.with_warmup(S.StepLR(1.0, 2, 0.5), 3, start_factor=0.5, step="global").values(5)
    target = 0.5  # StepLR at step 3
    np.testing.assert_allclose(g, [target * (0.5 + 0.5 * t / 3) for t in range(3)] + [0.5, 0.25], rtol=1e-6)
    c = S.with_warmup([0.4, 0.3, 0.2], 2, start_factor=0.25, mode="constant").values(5)
    np.testing.assert_allclose(c, [0.1, 0.1, 0.4, 0.3, 0.2], rtol=1e-6)
    with pytest.raises(ValueError, match=r"with_warmup\(steps\) must be an int >= 1; got steps=0"):
        S.with_warmup(0.1, 0)


def test_values_of_every_kind_of_schedule_is_one_program():
    # values(n) compiles one vmap (stateless) or one scan (stateful)
    m = S.MultiplicativeLR(1.0, lambda t: 0.5)
    np.testing.assert_allclose(m.values(4), [1, 0.5, 0.25, 0.125])
    np.testing.assert_allclose(S.ReduceLROnPlateau(0.3).values(3), [0.3, 0.3, 0.3])
    np.testing.assert_allclose(S.with_warmup(m, 2).values(4), [0, 0.5, 1, 0.5])

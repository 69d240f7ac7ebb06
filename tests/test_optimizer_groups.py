"""Weight-decay rules, MindSpore-style parameter groups and CombinedOptimizer."""

import numpy as np
import pytest

import jobflow as flow
from jobflow._src.runtime import session as session_impl
from tests.optimizer_harness import fixed_grad_job, run_fixed_grads

O = flow.optimizer


def _zeros_like(w0):
    return {n: np.zeros_like(v) for n, v in w0.items()}


# ----------------------------------------------------------------------------- weight decay

NAMES = [
    "dense1-weight",
    "dense1-bias",
    "bn-gamma",
    "bn-beta",
    "enc-LayerNorm_0-scale",
    "enc-Dense_0-kernel",
    "enc-Dense_0-bias",
    "alphabeta-weight",
]


def _decay_run(make_optimizer, steps=2):
    # With zero gradients Adam's direction is 0, so only the decoupled decay moves a
    # weight: w <- w - lr * wd * w per step.
    w0 = {n: np.full((2,), 2.0, np.float32) for n in NAMES}
    traj, _ = run_fixed_grads(make_optimizer, w0, [_zeros_like(w0)] * steps)
    return {n: float(traj[-1][n][0]) for n in NAMES}


def test_bias_and_norm_excluded_in_one_line():
    out = _decay_run(lambda: O.AdamW(0.1, weight_decay=0.5, weight_decay_excludes=O.BIAS_AND_NORM))
    decayed = 2.0 * (1 - 0.1 * 0.5) ** 2  # two steps of w <- w (1 - lr wd)
    assert out == pytest.approx(
        {
            "dense1-weight": decayed,
            "dense1-bias": 2.0,
            "bn-gamma": 2.0,
            "bn-beta": 2.0,
            "enc-LayerNorm_0-scale": 2.0,
            "enc-Dense_0-kernel": decayed,
            "enc-Dense_0-bias": 2.0,
            "alphabeta-weight": decayed,
        },
        rel=1e-6,
    )


def test_weight_decay_includes_are_searched_in_full_names():
    out = _decay_run(
        lambda: O.SGDW(0.1, momentum=0.0, weight_decay=0.5, weight_decay_includes=["weight", "kernel$"])
    )
    decayed = 2.0 * 0.95**2
    assert {n for n, v in out.items() if v == pytest.approx(decayed, rel=1e-6)} == {
        "dense1-weight",
        "enc-Dense_0-kernel",
        "alphabeta-weight",
    }
    assert {n for n, v in out.items() if v == 2.0} == set(NAMES) - {
        "dense1-weight",
        "enc-Dense_0-kernel",
        "alphabeta-weight",
    }


def test_weight_decay_none_means_no_decay():
    assert set(_decay_run(lambda: O.AdamW(0.1)).values()) == {2.0}


def test_weight_decay_argument_errors():
    with pytest.raises(
        ValueError, match=r"AdamW: set weight_decay_includes or weight_decay_excludes, not both"
    ):
        O.AdamW(0.1, weight_decay=0.1, weight_decay_includes="weight", weight_decay_excludes="bias")
    with pytest.raises(ValueError, match=r"LAMB\(weight_decay_excludes\) has an invalid regex '\(bias'"):
        O.LAMB(0.1, weight_decay=0.1, weight_decay_excludes=["(bias"])
    with pytest.raises(TypeError, match=r"SGDW\(weight_decay_includes\) must be a regex string or a list"):
        O.SGDW(0.1, weight_decay=0.1, weight_decay_includes=[3])
    with pytest.raises(ValueError, match=r"LARS\(weight_decay\) must be >= 0; got weight_decay=-1"):
        O.LARS(0.1, weight_decay=-1)


def test_coupled_weight_decay_enters_the_gradient():
    # Momentum (MindSpore): g' = g + wd w = 0 + 0.5 * 2 = 1, v = 1, w = 2 - 0.1 = 1.9 (then the
    # excluded bias stays at 2).
    w0 = {"a-weight": np.full((2,), 2.0, np.float32), "a-bias": np.full((2,), 2.0, np.float32)}
    traj, _ = run_fixed_grads(
        lambda: O.Momentum(0.1, 0.9, weight_decay=0.5, weight_decay_excludes="bias"), w0, [_zeros_like(w0)]
    )
    np.testing.assert_allclose(traj[0]["a-weight"], [1.9, 1.9], rtol=1e-6)
    np.testing.assert_array_equal(traj[0]["a-bias"], [2.0, 2.0])


# ----------------------------------------------------------------------------- parameter groups


def _ab():
    return {"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)}


def test_groups_have_their_own_learning_rates_and_schedules():
    w0 = _ab()
    ones = {n: np.ones(2, np.float32) for n in w0}
    traj, job = run_fixed_grads(
        lambda: O.SGD(0.1, momentum=0.0, variables=[{"params": ["a"]}, {"params": "^b$", "lr": [0.5, 0.25]}]),
        w0,
        [ones, ones],
    )
    np.testing.assert_allclose([t["a"][0] for t in traj], [0.9, 0.8], rtol=1e-6)
    np.testing.assert_allclose([t["b"][0] for t in traj], [0.5, 0.25], rtol=1e-6)
    assert job.last_info["lr"] == pytest.approx(0.1) and job.last_info["lr_1"] == pytest.approx(0.25)


def test_groups_override_weight_decay():
    w0 = _ab()
    traj, _ = run_fixed_grads(
        lambda: O.SGDW(
            0.1,
            momentum=0.0,
            weight_decay=0.1,
            variables=[{"params": ["a"], "weight_decay": 0.5}, {"params": ["b"]}],
        ),
        w0,
        [_zeros_like(w0)],
    )
    np.testing.assert_allclose(traj[0]["a"], [0.95, 0.95], rtol=1e-6)  # 1 - 0.1 * 0.5
    np.testing.assert_allclose(traj[0]["b"], [0.99, 0.99], rtol=1e-6)  # 1 - 0.1 * 0.1


def test_group_gradient_centralization_follows_mindspore_shapes():
    # g - mean(g, axes 1..) only where ndim >= 2 and shape[1] % 16 == 0 (MindSpore's rule).
    rng = np.random.default_rng(0)
    w0 = {
        "k": np.zeros((2, 16), np.float32),
        "s": np.zeros((2, 3), np.float32),
        "v": np.zeros(16, np.float32),
    }
    g = {n: rng.normal(size=v.shape).astype(np.float32) for n, v in w0.items()}
    traj, _ = run_fixed_grads(
        lambda: O.SGD(
            1.0, momentum=0.0, variables=[{"params": ["k", "s", "v"], "grad_centralization": True}]
        ),
        w0,
        [g],
    )
    np.testing.assert_allclose(
        traj[0]["k"], -(g["k"] - g["k"].mean(axis=1, keepdims=True)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(traj[0]["s"], -g["s"], rtol=1e-6)
    np.testing.assert_allclose(traj[0]["v"], -g["v"], rtol=1e-6)


def test_clipping_covers_all_groups_together():
    # ||(g_a, g_b)|| = ||([3, 0], [0, 4])|| = 5 -> both scaled by 1/5 (not 1/3 and 1/4 per group)
    w0 = _ab()
    grads = [{"a": np.array([3.0, 0.0], np.float32), "b": np.array([0.0, 4.0], np.float32)}]
    traj, job = run_fixed_grads(
        lambda: O.SGD(
            1.0,
            momentum=0.0,
            grad_clipping=O.grad_clipping.by_global_norm(1.0),
            variables=[{"params": ["a"]}, {"params": ["b"], "lr": 0.5}],
        ),
        w0,
        grads,
    )
    np.testing.assert_allclose(traj[0]["a"], [1 - 0.6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(traj[0]["b"], [1.0, 1 - 0.5 * 0.8], rtol=1e-6)
    assert job.last_info["grad_norm"] == pytest.approx(5.0)
    assert "grad_norm_1" not in job.last_info


def test_order_params_is_accepted_and_ignored():
    traj, _ = run_fixed_grads(
        lambda: O.SGD(0.1, momentum=0.0, variables=[{"params": ["a", "b"]}, {"order_params": ["b", "a"]}]),
        _ab(),
        [{"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)}],
    )
    np.testing.assert_allclose(traj[0]["a"], [0.9, 0.9], rtol=1e-6)


def test_group_errors_at_construction():
    with pytest.raises(ValueError, match=r"SGD\(variables\[0\]\): unknown key\(s\) \['learning_rate'\]"):
        O.SGD(0.1, variables=[{"params": ["a"], "learning_rate": 0.1}])
    with pytest.raises(ValueError, match=r"Adam\(variables\[1\]\): Adam has no weight decay"):
        O.Adam(0.1, variables=[{"params": ["a"]}, {"params": ["b"], "weight_decay": 0.1}])
    with pytest.raises(ValueError, match=r"needs 'params'"):
        O.SGD(0.1, variables=[{"lr": 0.1}])
    with pytest.raises(ValueError, match=r"'order_params' must be alone"):
        O.SGD(0.1, variables=[{"params": ["a"], "order_params": ["a"]}])
    with pytest.raises(TypeError, match=r"parameter groups must all be dicts; got 'b'"):
        O.SGD(0.1, variables=[{"params": ["a"]}, "b"])
    with pytest.raises(
        TypeError, match=r"grad_centralization\) must be True or False; got grad_centralization=1"
    ):
        O.SGD(0.1, variables=[{"params": ["a"], "grad_centralization": 1}])
    with pytest.raises(TypeError, match=r"SGD\(variables\[0\]\['lr'\]\) must be a number, a schedule"):
        O.SGD(0.1, variables=[{"params": ["a"], "lr": "fast"}])


def test_overlapping_groups_raise_naming_both():
    job = fixed_grad_job(
        lambda: O.SGD(0.1, variables=[{"params": ["a"]}, {"params": "a|b"}]), {"a": (2,), "b": (2,)}
    )
    with pytest.raises(
        ValueError,
        match=r"variable 'a' is selected by two optimizers \(SGD parameter group 0 and "
        r"SGD parameter group 1\)",
    ):
        job.compile()
    assert session_impl.default_session().store == {}


def test_empty_group_raises_naming_the_group():
    job = fixed_grad_job(lambda: O.SGD(0.1, variables=[{"params": ["a"]}, {"params": "^zzz"}]), {"a": (2,)})
    with pytest.raises(
        ValueError, match=r"SGD parameter group 1\(variables='\^zzz'\) in job 'fixed' selects no variable"
    ):
        job.compile()


# ----------------------------------------------------------------------------- CombinedOptimizer


def test_combined_optimizer_equals_each_optimizer_alone():
    rng = np.random.default_rng(0)
    w0 = {"a": rng.normal(size=3).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)}
    grads = [{n: rng.normal(size=3).astype(np.float32) for n in w0} for _ in range(4)]
    sgd = lambda **kw: O.SGD(0.1, momentum=0.9, **kw)
    adam = lambda **kw: O.Adam([0.01, 0.02], **kw)
    traj, job = run_fixed_grads(
        lambda: O.CombinedOptimizer([sgd(variables=["a"]), adam(variables="^b")]), w0, grads
    )
    assert job.last_info["lr"] == pytest.approx(0.1) and job.last_info["lr_1"] == pytest.approx(0.02)
    flow.clear_default_session()
    alone_a, _ = run_fixed_grads(sgd, {"a": w0["a"]}, [{"a": g["a"]} for g in grads])
    flow.clear_default_session()
    alone_b, _ = run_fixed_grads(adam, {"b": w0["b"]}, [{"b": g["b"]} for g in grads])
    np.testing.assert_array_equal(traj[-1]["a"], alone_a[-1]["a"])
    np.testing.assert_array_equal(traj[-1]["b"], alone_b[-1]["b"])


def test_combined_optimizers_clip_separately():
    grads = [{"a": np.array([3.0, 0.0], np.float32), "b": np.array([0.0, 4.0], np.float32)}]
    clip = O.grad_clipping.by_global_norm(1.0)
    traj, job = run_fixed_grads(
        lambda: O.CombinedOptimizer(
            [
                O.SGD(1.0, momentum=0.0, grad_clipping=clip, variables=["a"]),
                O.SGD(1.0, momentum=0.0, grad_clipping=clip, variables=["b"]),
            ]
        ),
        _ab(),
        grads,
    )
    np.testing.assert_allclose(traj[0]["a"], [0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(traj[0]["b"], [1.0, 0.0], atol=1e-7)
    assert (job.last_info["grad_norm"], job.last_info["grad_norm_1"]) == pytest.approx((3.0, 4.0))


def test_combined_optimizer_overlap_raises():
    job = fixed_grad_job(
        lambda: O.CombinedOptimizer([O.SGD(0.1), O.Adam(0.1, variables=["b"])]), {"a": (2,), "b": (2,)}
    )
    with pytest.raises(ValueError, match=r"variable 'b' is selected by two optimizers \(SGD and Adam\)"):
        job.compile()


def test_combined_optimizer_argument_errors():
    with pytest.raises(TypeError, match=r"non-empty list of optimizers; got \[\]"):
        O.CombinedOptimizer([])
    with pytest.raises(TypeError, match=r"optimizers\[0\]\) is itself a CombinedOptimizer"):
        O.CombinedOptimizer([O.CombinedOptimizer([O.SGD(0.1)])])
    with pytest.raises(ValueError, match=r"optimizers\[1\]\): Adam sets a loss scale"):
        O.CombinedOptimizer([O.SGD(0.1), O.Adam(0.1, loss_scale_factor=8.0)])

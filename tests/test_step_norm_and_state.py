"""The global gradient norm, the non-finite check and the optimizer's initial state, in
the forms that keep a deep model's first call cheap (``optimizer/base.global_norm``,
``runtime/step_guard.all_finite``, ``optimizer/host_init``)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.optimizer import host_init
from jobflow._src.optimizer.base import SMALL_COUNT, SMALL_GRADIENT, global_norm
from jobflow._src.optimizer.plans import build_plan
from jobflow._src.runtime import plan as plan_impl
from jobflow._src.runtime.step_guard import all_finite
from tests.optimizer_harness import random_problem, run_fixed_grads

_BIG = {"big": (150, 120), "long": (SMALL_GRADIENT + 1,)}
# FEW: every gradient reduced on its own; MANY: the small ones reduced together
FEW = {**_BIG, "edge": (SMALL_GRADIENT,), "s": ()}
MANY = {**FEW, **{f"b{i}": (i + 1, 3) for i in range(SMALL_COUNT - 2)}}
SHAPES = MANY


def _norm64(grads: dict) -> float:
    return float(np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads.values())))


def _small(shapes: dict) -> int:
    return sum(int(np.prod(s)) <= SMALL_GRADIENT for s in shapes.values())


def test_the_shapes_cover_both_forms():
    assert _small(FEW) < SMALL_COUNT <= _small(MANY)
    assert all(int(np.prod(_BIG[n])) > SMALL_GRADIENT for n in _BIG)


@pytest.mark.parametrize("shapes", [FEW, MANY], ids=["few_small", "many_small"])
def test_global_grad_norm_and_the_clip_norm_equal_a_float64_norm(shapes):
    w0, grads = random_problem(shapes, steps=2, seed=3)
    clip = flow.optimizer.grad_clipping.by_global_norm(1.0)
    _, job = run_fixed_grads(lambda: flow.optimizer.SGD(0.1, momentum=0.0, grad_clipping=clip), w0, grads)
    expected = _norm64(grads[-1])
    assert job.last_info["global_grad_norm"] == pytest.approx(expected, rel=2e-6)
    assert job.last_info["grad_norm"] == pytest.approx(expected, rel=2e-6)


@pytest.mark.parametrize("shapes", [FEW, MANY], ids=["few_small", "many_small"])
def test_global_norm_propagates_inf_and_nan_from_any_gradient(shapes):
    grads = {n: np.ones(s, np.float32) for n, s in shapes.items()}
    for name in shapes:
        for bad, check in ((np.inf, np.isposinf), (np.nan, np.isnan)):
            g = dict(grads)
            g[name] = np.full(shapes[name], bad, np.float32)
            assert check(float(global_norm(g))), (name, bad)


def test_all_finite_catches_inf_and_nan_in_any_gradient_and_in_the_loss():
    grads = {n: np.ones(s, np.float32) for n, s in SHAPES.items()}
    assert bool(all_finite(jnp.float32(1.0), grads))
    for name, shape in SHAPES.items():
        for bad in (np.inf, -np.inf, np.nan):
            g = np.ones(shape, np.float32).ravel()
            g[-1] = bad
            assert not bool(all_finite(jnp.float32(1.0), {**grads, name: g.reshape(shape)})), (name, bad)
    for bad in (np.inf, np.nan):
        assert not bool(all_finite(jnp.float32(bad), grads))


def test_a_huge_finite_gradient_is_applied_and_its_norm_overflows():
    # every gradient element is 1e30: finite, but its square overflows float32
    cfg = flow.function_config().skip_nonfinite_steps(True)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((SMALL_GRADIENT + 1,))) -> tp.Numpy:
        w = flow.get_variable("w", (SMALL_GRADIENT + 1,), initializer=flow.zeros_initializer())
        b = flow.get_variable("b", (3,), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_sum(w * x) + flow.math.reduce_sum(b * x[:3])
        flow.optimizer.SGD(1e-30, momentum=0.0).minimize(loss)
        return loss

    train(np.full(SMALL_GRADIENT + 1, 1e30, np.float32))
    info = train.last_info
    assert info["skipped"] is False and np.isposinf(info["global_grad_norm"])
    values = flow.get_all_variables()
    np.testing.assert_allclose(values["w"], -1.0, rtol=1e-6)
    np.testing.assert_allclose(values["b"], -1.0, rtol=1e-6)
    x = np.full(SMALL_GRADIENT + 1, 1.0, np.float32)
    x[1] = np.inf  # reaches w's gradient only
    train(x)
    assert train.last_info["skipped"] is True
    np.testing.assert_allclose(flow.get_all_variables()["w"], -1.0, rtol=1e-6)


def _traced_init(init, params):
    return jax.make_jaxpr(init)(params)


def test_host_init_fills_casts_and_passes_variables_through():
    params = {"a": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), "b": jnp.ones(4, jnp.bfloat16)}

    def init(p):
        unused = jnp.expm1(jnp.float32(2.0))  # traced, not needed by any output
        del unused
        return {
            "zeros": jnp.zeros_like(p["a"]),
            "half": jnp.full_like(p["b"], 0.5),
            "count": jnp.zeros([], jnp.int32),
            "cast": p["a"].astype(jnp.float16),
            "same": p["b"],
        }

    jaxpr = _traced_init(init, params)
    out = host_init.evaluate(jaxpr, jax.tree_util.tree_leaves(params))
    expected = jax.tree_util.tree_leaves(init(params))
    assert out is not None and len(out) == len(expected)
    for got, want in zip(out, expected):
        assert np.asarray(got).dtype == want.dtype and np.shape(got) == want.shape
        np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64))


def test_host_init_declines_anything_else():
    params = {"a": jnp.ones((2, 3), jnp.float32)}
    jaxpr = _traced_init(lambda p: {"twice": p["a"] * 2}, params)
    assert host_init.evaluate(jaxpr, jax.tree_util.tree_leaves(params)) is None


def _copy_and_double():
    init = lambda p: (dict(p), {n: v * 2 for n, v in p.items()})  # the second needs XLA
    return optax.GradientTransformation(init, lambda u, s, p=None: (u, s))


@pytest.mark.parametrize(
    ("make", "on_host"),
    [
        (lambda: flow.optimizer.pytorch.Adam(0.1, amsgrad=True), True),
        (lambda: flow.optimizer.SGD(0.1, momentum=0.9), True),
        (lambda: flow.optimizer.Optax(optax.adam(1e-3)), True),
        (lambda: flow.optimizer.Optax(_copy_and_double()), False),
    ],
    ids=["adam", "sgd", "optax_adam", "copy_and_double"],
)
def test_init_slots_equals_the_rule_s_own_init(make, on_host):
    params = {"w": jnp.full((3, 2), 2.0, jnp.float32), "b": jnp.full(2, -1.0, jnp.bfloat16)}
    avals = {n: jax.ShapeDtypeStruct(v.shape, v.dtype) for n, v in params.items()}
    opt = make()
    plan = build_plan(opt, sorted(params), avals, "System-Optimizer-test-0")
    host = host_init.evaluate(plan.init_jaxpr, jax.tree_util.tree_leaves(params))
    assert (host is not None) == on_host
    got = plan.init_slots(params)
    state = opt._build_tx(jnp.float32(0), jnp.int32(0)).init(params)
    want = dict(zip(plan.tx_slot_names, jax.tree_util.tree_leaves(state)))
    assert got.keys() == want.keys() and want
    for name, value in want.items():
        assert np.asarray(got[name]).dtype == value.dtype and np.shape(got[name]) == value.shape, name
        np.testing.assert_array_equal(np.asarray(got[name], np.float64), np.asarray(value, np.float64))


def test_a_slot_belongs_to_the_longest_variable_name_it_starts_with():
    owners = {"dense", "dense-weight", "dense-weight-m"}
    assert plan_impl._slot_owner("dense-weight-m-v", owners) == "dense-weight-m"
    assert plan_impl._slot_owner("dense-weight-v", owners) == "dense-weight"
    assert plan_impl._slot_owner("dense-bias-m", owners) == "dense"
    assert plan_impl._slot_owner("densex-m", owners) is None
    assert plan_impl._slot_owner("dense", owners) is None


def _deep_job(shard: bool):
    # 6 dense layers: 12 small gradients (the concatenated form), split across 8 devices
    cfg = flow.function_config().default_placement_scope(flow.scope.placement("cpu", "0:0-7"))
    cfg.shard_variables(shard).shard_optimizer_state(shard)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((16, 16)), y: tp.Numpy.Placeholder((16,), dtype=flow.int32)
    ) -> tp.Numpy:
        h = x
        for i in range(5):
            h = flow.layers.dense(h, 16, activation=flow.nn.relu, name=f"d{i}")
        logits = flow.layers.dense(h, 8, name="head")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        clip = flow.optimizer.grad_clipping.by_global_norm(0.5)
        flow.optimizer.pytorch.Adam(0.01, grad_clipping=clip).minimize(loss)
        return loss

    return train


def test_the_concatenated_norm_of_split_variables_equals_the_replicated_one():
    rng = np.random.default_rng(5)
    batches = [
        (rng.normal(size=(16, 16)).astype(np.float32), rng.integers(0, 8, 16).astype(np.int32))
        for _ in range(2)
    ]
    runs = []
    for shard in (False, True):
        flow.clear_default_session()
        flow.config.seed(0)
        job = _deep_job(shard)
        for x, y in batches:
            job(x, y)
        split = [n for n, sh in job.state_shardings.items() if any(a is not None for a in sh.spec)]
        runs.append((dict(job.last_info), {k: v.numpy() for k, v in flow.get_all_variables().items()}, split))
    (info_r, vars_r, split_r), (info_s, vars_s, split_s) = runs
    params = {n: v.shape for n, v in vars_r.items() if n.endswith(("-weight", "-bias"))}
    assert _small(params) >= SMALL_COUNT and len(params) == 12
    assert not split_r and set(params) <= set(split_s)
    assert info_s["global_grad_norm"] == pytest.approx(info_r["global_grad_norm"], rel=1e-5)
    assert info_s["grad_norm"] == pytest.approx(info_r["grad_norm"], rel=1e-5)
    for k in vars_r:
        np.testing.assert_allclose(vars_s[k], vars_r[k], rtol=1e-5, atol=1e-6, err_msg=k)

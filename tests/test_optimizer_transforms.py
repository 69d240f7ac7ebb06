"""The optax transformations a train step chains around the rules (regularizers, clipping,
partition by variable name), and bias corrections at the largest step counter."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jobflow as flow
from jobflow._src.optimizer import transforms
from tests.optimizer_harness import fixed_grad_job

G = {"a": jnp.array([3.0, -4.0]), "b": jnp.array([[1.0, 2.0]]), "c": jnp.array(2.0)}
W = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([[0.5, -0.5]]), "c": jnp.array(0.0)}


def test_partition_runs_each_transformation_on_its_own_variables():
    tx = transforms.partition(
        {"x": optax.sgd(0.1, momentum=0.9), "y": optax.scale(-2.0)}, {"a": "x", "b": "y", "c": "x"}
    )
    state = tx.init(W)
    assert set(state) == {"x", "y"}
    ref = optax.sgd(0.1, momentum=0.9)
    ref_state = ref.init({"a": W["a"], "c": W["c"]})
    for _ in range(2):
        updates, state = tx.update(G, state, W)
        ref_updates, ref_state = ref.update({"a": G["a"], "c": G["c"]}, ref_state)
    assert list(updates) == ["a", "b", "c"]  # the order of the gradients
    np.testing.assert_allclose(updates["a"], ref_updates["a"], rtol=1e-6)
    np.testing.assert_allclose(updates["c"], ref_updates["c"], rtol=1e-6)
    np.testing.assert_allclose(updates["b"], -2.0 * G["b"])
    assert set(state["x"][0].trace) == {"a", "c"}  # the sgd state holds only its variables


def test_partition_needs_a_label_for_every_variable():
    tx = transforms.partition({"x": optax.identity()}, {"a": "x"})
    with pytest.raises(ValueError, match=r"\['b'\] have no label"):
        tx.update({"a": G["a"], "b": G["b"]}, tx.init({"a": W["a"]}))


def test_clip_state_reports_the_norm_before_clipping():
    tx = transforms.clip(flow.optimizer.grad_clipping.by_global_norm(1.0))
    clipped, state = tx.update(G, tx.init(W), W)
    norm = np.sqrt(9 + 16 + 1 + 4 + 4)
    assert float(state.grad_norm) == pytest.approx(norm, rel=1e-6)
    np.testing.assert_allclose(clipped["a"], np.array([3.0, -4.0]) / norm, rtol=1e-6)


def test_add_regularization_is_oneflows_rule():
    regs = {"a": flow.regularizers.l1_l2(0.1, 0.01), "c": flow.regularizers.l1(0.5)}
    out, _ = transforms.add_regularization(regs).update(G, optax.EmptyState(), W)
    np.testing.assert_allclose(out["a"], [3.0 + 0.1 + 0.01, -4.0 - 0.1 - 0.02], rtol=1e-6)
    np.testing.assert_allclose(out["b"], G["b"])
    assert float(out["c"]) == pytest.approx(2.5)  # sign(0) = +1


# ------------------------------------------------------------- the largest counter

COUNTER_MAX = np.int32(2**31 - 1)
W0 = np.array([0.5, -1.0, 2.0], np.float32)
GRAD = np.array([0.3, -0.2, 1.0], np.float32)


def _step_at_counter_max(make_optimizer):
    job = fixed_grad_job(make_optimizer, {"w": (3,)})
    flow.load_variables({"w": W0, "System-Train-TrainStep-fixed": COUNTER_MAX})
    job(GRAD)
    values = flow.get_all_variables()
    assert values["System-Train-TrainStep-fixed"] == COUNTER_MAX  # saturates
    return np.asarray(values["w"], np.float64)


def _adam_direction(eps):
    # t = 2**31: beta**t underflows to 0, so both bias corrections are exactly 1
    g = GRAD.astype(np.float64)
    m, v = 0.1 * g, 0.001 * g * g
    return m / (np.sqrt(v) + eps)


def test_adam_step_at_the_largest_counter_is_finite_and_exact():
    w = _step_at_counter_max(lambda: flow.optimizer.Adam(0.01, do_bias_correction=True))
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w, W0 - 0.01 * _adam_direction(1e-8), rtol=1e-6)


def test_lamb_step_at_the_largest_counter_is_finite_and_exact():
    w = _step_at_counter_max(lambda: flow.optimizer.LAMB(0.01))
    u = _adam_direction(1e-6)
    trust = np.linalg.norm(W0.astype(np.float64)) / np.linalg.norm(u)
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w, W0 - 0.01 * trust * u, rtol=1e-6)


def test_adafactor_step_at_the_largest_counter_is_finite():
    w = _step_at_counter_max(lambda: flow.optimizer.Adafactor())
    assert np.all(np.isfinite(w)) and not np.array_equal(w, W0)

"""flow.optimizer.Adam / AdamW / LazyAdam compute OneFlow legacy's kernel; the PyTorch
form is flow.optimizer.pytorch.Adam / AdamW.

Expected values come from the formulas written out in numpy (float64) below:

OneFlow (``AdamUpdateFunctor``, v0.2 to v0.4), t = step + 1::

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)  if do_bias_correction  else lr
    w -= lr_t * (m / (sqrt(v) + eps) + wd * w)

PyTorch::

    w -= lr * (m / bc1) / (sqrt(v / bc2) + eps) + lr * wd * w
"""

import inspect

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from tests.optimizer_harness import run_fixed_grads

O = flow.optimizer
W0 = np.array([1.0, -2.0, 0.5], np.float32)
GRADS = [np.array(g, np.float32) for g in ([1.0, 2.0, -0.5], [-2.0, 0.0, 1.0], [0.5, 1.0, 3.0])]
LRS = [0.1, 0.2, 0.05]


def _reference(form, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, lrs=LRS):
    """The weights after each of the three steps, by the formulas in the module docstring."""
    w, m, v, out = W0.astype(np.float64), 0.0, 0.0, []
    for step, (g, lr) in enumerate(zip(GRADS, lrs)):
        g, t = g.astype(np.float64), step + 1
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        if form == "oneflow":
            lr_t = lr * np.sqrt(bc2) / bc1
            w = w - lr_t * (m / (np.sqrt(v) + eps) + wd * w)
        elif form == "none":
            w = w - lr * (m / (np.sqrt(v) + eps) + wd * w)
        else:  # pytorch
            w = w - lr * (m / bc1) / (np.sqrt(v / bc2) + eps) - lr * wd * w
        out.append(w)
    return out


def _run(make):
    traj, _ = run_fixed_grads(make, {"w": W0}, [{"w": g} for g in GRADS])
    return [s["w"] for s in traj]


CASES = {
    "adam_default_no_correction": (lambda: O.Adam(LRS), dict(form="none")),
    "adam_oneflow_correction": (
        lambda: O.Adam(LRS, beta1=0.8, beta2=0.9, epsilon=1e-2, do_bias_correction=True),
        dict(form="oneflow", b1=0.8, b2=0.9, eps=1e-2),
    ),
    "adamw_default_no_correction": (lambda: O.AdamW(LRS, weight_decay=0.5), dict(form="none", wd=0.5)),
    "adamw_oneflow_correction_decays_by_lr_t": (
        lambda: O.AdamW(LRS, beta2=0.99, epsilon=1e-3, do_bias_correction=True, weight_decay=0.5),
        dict(form="oneflow", b2=0.99, eps=1e-3, wd=0.5),
    ),
    "pytorch_adam": (
        lambda: O.pytorch.Adam(LRS, beta1=0.8, beta2=0.9, epsilon=1e-2),
        dict(form="pytorch", b1=0.8, b2=0.9, eps=1e-2),
    ),
    "pytorch_adamw_decays_by_lr": (
        lambda: O.pytorch.AdamW(LRS, beta2=0.99, epsilon=1e-3, weight_decay=0.5),
        dict(form="pytorch", b2=0.99, eps=1e-3, wd=0.5),
    ),
    "pytorch_adam_without_correction_is_oneflow_default": (
        lambda: O.pytorch.Adam(LRS, do_bias_correction=False),
        dict(form="none"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_three_steps_match_the_formula(case):
    make, kwargs = CASES[case]
    np.testing.assert_allclose(_run(make), _reference(**kwargs), rtol=2e-6, atol=1e-7)


def test_the_conventions_really_differ():
    # the formulas are far enough apart that the tests above tell them apart
    for a, b, kw in [
        ("oneflow", "pytorch", dict(b1=0.8, b2=0.9, eps=1e-2)),
        ("none", "oneflow", {}),
        ("oneflow", "pytorch", dict(b2=0.99, eps=1e-3, wd=0.5)),
    ]:
        assert np.max(np.abs(_reference(a, **kw)[-1] - _reference(b, **kw)[-1])) > 1e-3


def test_one_step_numbers_in_the_docs():
    # lr 0.1, g = 1 from w = 0: m = 0.1, v = 0.001.
    # OneFlow's default: 0.1 * 0.1 / (sqrt(0.001) + 1e-8) = 0.3162277; PyTorch: 0.1 / (1 + 1e-8)
    g = [{"w": np.ones(1, np.float32)}]
    w0 = {"w": np.zeros(1, np.float32)}
    oneflow, _ = run_fixed_grads(lambda: O.Adam(0.1), w0, g)
    flow.clear_default_session()
    torch_form, _ = run_fixed_grads(lambda: O.pytorch.Adam(0.1), w0, g)
    np.testing.assert_allclose(oneflow[0]["w"], [-0.31622776], rtol=1e-6)
    np.testing.assert_allclose(torch_form[0]["w"], [-0.1], rtol=1e-6)


def test_adamw_decay_with_correction_uses_lr_t():
    # zero gradient: only the decay moves w. t = 1: lr_t = 0.1 * sqrt(0.001) / 0.1 = 0.0316228
    # OneFlow: w = 1 - 0.0316228 * 0.01 = 0.99968377; PyTorch: w = 1 - 0.1 * 0.01 = 0.999
    g = [{"w": np.zeros(1, np.float32)}]
    w0 = {"w": np.ones(1, np.float32)}
    oneflow, _ = run_fixed_grads(lambda: O.AdamW(0.1, do_bias_correction=True, weight_decay=0.01), w0, g)
    flow.clear_default_session()
    torch_form, _ = run_fixed_grads(lambda: O.pytorch.AdamW(0.1, weight_decay=0.01), w0, g)
    np.testing.assert_allclose(oneflow[0]["w"], [0.99968377], rtol=1e-7)
    np.testing.assert_allclose(torch_form[0]["w"], [0.999], rtol=1e-7)


@pytest.mark.parametrize(
    "cls, defaults",
    [
        (O.Adam, dict(beta1=0.9, beta2=0.999, epsilon=1e-8, do_bias_correction=False)),
        (O.AdamW, dict(beta1=0.9, beta2=0.999, epsilon=1e-8, do_bias_correction=False, weight_decay=None)),
        (O.LazyAdam, dict(beta1=0.9, beta2=0.999, epsilon=1e-8)),
        (O.pytorch.Adam, dict(do_bias_correction=True)),
        (O.pytorch.AdamW, dict(do_bias_correction=True, weight_decay=None)),
        (O.SGDW, dict(momentum=0.9, weight_decay=None)),
    ],
)
def test_oneflow_argument_order_and_defaults(cls, defaults):
    params = inspect.signature(cls).parameters
    for name, value in defaults.items():
        assert params[name].default == value, name
    positional = [p for p in params if params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional[0] == "lr_scheduler" and positional[-1] == "variables"
    if cls in (O.Adam, O.pytorch.Adam):
        assert positional[:5] == ["lr_scheduler", "beta1", "beta2", "epsilon", "do_bias_correction"]


def test_lazy_adam_oneflow_form_and_untouched_rows():
    # LazyAdam = OneFlow's Adam with correction forced on, rows with zero gradient untouched.
    # emb (3, 1); step 0 touches rows 0, 1; step 1 row 1; step 2 rows 0, 2. lr 0.1, b1 .5, b2 .75
    @flow.global_function(type="train")
    def train(g: tp.Numpy.Placeholder((3, 1))) -> tp.Numpy:
        emb = flow.get_variable("emb", (3, 1), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_sum(emb * g)
        O.LazyAdam(0.1, beta1=0.5, beta2=0.75, epsilon=0.1).minimize(loss)
        return loss

    grads = np.array([[[1.0], [2.0], [0.0]], [[0.0], [-1.0], [0.0]], [[3.0], [0.0], [0.5]]], np.float32)
    w = np.zeros((3, 1))
    m, v = np.zeros((3, 1)), np.zeros((3, 1))
    for step, g in enumerate(grads.astype(np.float64)):
        t = step + 1
        lr_t = 0.1 * np.sqrt(1 - 0.75**t) / (1 - 0.5**t)
        rows = np.any(g != 0, axis=1, keepdims=True)
        m_new, v_new = 0.5 * m + 0.5 * g, 0.75 * v + 0.25 * g * g
        w = np.where(rows, w - lr_t * m_new / (np.sqrt(v_new) + 0.1), w)
        m, v = np.where(rows, m_new, m), np.where(rows, v_new, v)
        before = {k: np.array(a) for k, a in flow.get_all_variables().items() if k.startswith("emb")}
        train(grads[step])
        after = {k: np.array(a) for k, a in flow.get_all_variables().items()}
        np.testing.assert_allclose(after["emb"], w, rtol=2e-6)
        np.testing.assert_allclose(after["emb-m"], m, rtol=2e-6)
        np.testing.assert_allclose(after["emb-v"], v, rtol=2e-6)
        for r in np.flatnonzero(~rows[:, 0]):
            if before:  # untouched rows: bitwise unchanged
                for k in ("emb", "emb-m", "emb-v"):
                    assert np.array_equal(after[k][r], before[k][r]), (k, r)

"""Optimizer parity with reference frameworks, run through real compiled train jobs.

Every jobflow run feeds fixed gradients through a train job (tests/optimizer_harness.py)
and compares the weights after the steps with the reference framework run on the same
initial weights and gradients. The difference measure is, per variable,
``max|jobflow - reference| / max|reference|``.

* PyTorch (installed as a test extra): run live, 200 steps, <= 1e-5.
* optax: run live, 100 steps, where the conventions match (documented per case).
* MindSpore 2.10: goldens from tests/goldens/make_mindspore_optimizer_goldens.py.
* transformers' Adafactor: goldens from tests/goldens/make_adafactor_goldens.py.
"""

import json
import pathlib

import jax
import numpy as np
import optax
import pytest

import jobflow as flow
from tests.optimizer_harness import max_rel_diff, random_problem, run_fixed_grads

O = flow.optimizer
GOLDENS = pathlib.Path(__file__).parent / "goldens"
SHAPES = {"w": (3, 4), "b": (4,)}
TORCH_STEPS = 200
LR_LIST = [0.02 * (0.99**i) for i in range(TORCH_STEPS)]


def _assert_close_trajectory(traj, ref, tol):
    worst = max(max_rel_diff(a, b) for a, b in zip(traj, ref, strict=True))
    assert worst <= tol, f"max relative difference {worst:.3g} > {tol}"


# ----------------------------------------------------------------------------- PyTorch


def _torch_cases():
    return {
        # name: (jobflow optimizer, torch optimizer, L2 regularizer on every variable, per-step lr)
        "sgd": (lambda: O.SGD(0.05, momentum=0.0), lambda t, p: t.optim.SGD(p, lr=0.05), None, None),
        "sgd_momentum": (
            lambda: O.SGD(0.05, momentum=0.9),
            lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9),
            None,
            None,
        ),
        "sgd_nesterov_weight_decay": (
            lambda: O.SGD(0.05, momentum=0.9, nesterov=True),
            lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
            0.01,
            None,
        ),
        "momentum_nesterov_lr_schedule": (
            lambda: O.Momentum(LR_LIST, 0.9, use_nesterov=True),
            lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
            None,
            LR_LIST,
        ),
        "adam": (lambda: O.pytorch.Adam(1e-2), lambda t, p: t.optim.Adam(p, lr=1e-2), None, None),
        "adam_amsgrad_lr_schedule": (
            lambda: O.pytorch.Adam(LR_LIST, beta1=0.8, beta2=0.99, amsgrad=True),
            lambda t, p: t.optim.Adam(p, lr=0.0, betas=(0.8, 0.99), amsgrad=True),
            None,
            LR_LIST,
        ),
        "adamw": (
            lambda: O.pytorch.AdamW(1e-2, weight_decay=0.1),
            lambda t, p: t.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
            None,
            None,
        ),
        "adamw_amsgrad_lr_schedule": (
            lambda: O.pytorch.AdamW(LR_LIST, weight_decay=0.05, amsgrad=True),
            lambda t, p: t.optim.AdamW(p, lr=0.0, weight_decay=0.05, amsgrad=True),
            None,
            LR_LIST,
        ),
        "rmsprop_pytorch": (
            lambda: O.RMSProp(1e-2, epsilon_inside_sqrt=False),
            lambda t, p: t.optim.RMSprop(p, lr=1e-2),
            None,
            None,
        ),
        "rmsprop_pytorch_centered_momentum": (
            lambda: O.RMSProp(
                1e-2, decay_rate=0.9, epsilon=1e-6, centered=True, momentum=0.5, epsilon_inside_sqrt=False
            ),
            lambda t, p: t.optim.RMSprop(p, lr=1e-2, alpha=0.9, eps=1e-6, centered=True, momentum=0.5),
            None,
            None,
        ),
        "adagrad": (
            lambda: O.Adagrad(0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1),
            lambda t, p: t.optim.Adagrad(
                p, lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1
            ),
            None,
            None,
        ),
    }


def _torch_run(torch, make, w0, grads, lrs, every):
    params = {n: torch.nn.Parameter(torch.tensor(v)) for n, v in w0.items()}
    opt = make(torch, list(params.values()))
    traj = []
    for i, g in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[i]
        for n, p in params.items():
            p.grad = torch.tensor(g[n])
        opt.step()
        if (i + 1) % every == 0 or i + 1 == len(grads):
            traj.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return traj


@pytest.mark.parametrize("case", list(_torch_cases()))
def test_matches_pytorch_over_200_steps(case):
    torch = pytest.importorskip("torch")
    make_flow, make_torch, l2, lrs = _torch_cases()[case]
    w0, grads = random_problem(SHAPES, TORCH_STEPS, seed=1)
    regs = {n: flow.regularizers.l2(l2) for n in SHAPES} if l2 else None
    traj, job = run_fixed_grads(make_flow, w0, grads, regs, every=20)
    _assert_close_trajectory(traj, _torch_run(torch, make_torch, w0, grads, lrs, every=20), 1e-5)
    assert job.num_traces == 1


# ----------------------------------------------------------------------------- optax


def _optax_run(tx, w0, grads):
    params = {n: jax.numpy.asarray(v) for n, v in w0.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    traj = []
    for g in grads:
        params, state = step(params, state, g)
        traj.append({n: np.asarray(v) for n, v in params.items()})
    return traj


OPTAX_CASES = {
    # LARS: OneFlow's ratio equals optax's when weight decay is 0 (optax puts wd*w into the
    # gradient, OneFlow into the ratio's denominator and outside the momentum).
    "lars": (
        lambda: O.LARS(0.5, momentum_beta=0.9, epsilon=1e-9, lars_coefficient=0.01),
        lambda: optax.lars(0.5, trust_coefficient=0.01, eps=1e-9, momentum=0.9),
    ),
    # LAMB: OneFlow's ratio leaves the decay out; equal to optax's when weight decay is 0.
    "lamb_oneflow_no_decay": (lambda: O.LAMB(0.01), lambda: optax.lamb(0.01)),
    # trust_ratio="optax" is optax.lamb (the paper's) with weight decay.
    "lamb_optax_weight_decay": (
        lambda: O.LAMB(0.01, weight_decay=0.1, trust_ratio="optax"),
        lambda: optax.lamb(0.01, weight_decay=0.1),
    ),
}


@pytest.mark.parametrize("case", list(OPTAX_CASES))
def test_matches_optax(case):
    make_flow, make_optax = OPTAX_CASES[case]
    w0, grads = random_problem(SHAPES, 100, seed=2)
    traj, job = run_fixed_grads(make_flow, w0, grads)
    _assert_close_trajectory(traj, _optax_run(make_optax(), w0, grads), 1e-5)
    assert job.num_traces == 1


def test_lamb_oneflow_ratio_differs_from_optax_with_weight_decay():
    # The negative control of the cases above: the forms really are different.
    w0, grads = random_problem(SHAPES, 5, seed=2)
    traj, _ = run_fixed_grads(lambda: O.LAMB(0.01, weight_decay=0.1), w0, grads)
    ref = _optax_run(optax.lamb(0.01, weight_decay=0.1), w0, grads)
    assert max_rel_diff(traj[-1], ref[-1]) > 1e-4


# ----------------------------------------------------------------------------- goldens


def _load(name):
    data = json.loads((GOLDENS / name).read_text())
    w0 = {n: np.array(v, np.float32) for n, v in data["w0"].items()}
    grads = [{n: np.array(v, np.float32) for n, v in g.items()} for g in data["grads"]]
    cases = {
        k: [{n: np.array(v, np.float32) for n, v in s.items()} for s in traj]
        for k, traj in data["cases"].items()
    }
    return data, w0, grads, cases


MS_LR = json.loads((GOLDENS / "mindspore_optimizers.json").read_text())["lr_list"]
MINDSPORE_CASES = {
    "momentum_lr_list": lambda: O.Momentum(MS_LR, 0.9),
    "momentum_weight_decay": lambda: O.Momentum(0.05, 0.9, weight_decay=0.01),
    "adam_tf_epsilon": lambda: O.Adam(0.01, epsilon=1e-2, do_bias_correction=True),
    "rmsprop_centered_momentum_lr_list": lambda: O.RMSProp(
        MS_LR, decay_rate=0.9, epsilon=1e-10, centered=True, momentum=0.5, initial_mean_square=1.0
    ),
    "rmsprop_epsilon_inside_sqrt": lambda: O.RMSProp(
        0.01, decay_rate=0.8, epsilon=1e-2, initial_mean_square=1.0
    ),
    "ftrl": lambda: O.Ftrl(0.1, initial_accum=0.1, l2=0.02),
    "ftrl_lr_power": lambda: O.Ftrl(0.2, initial_accum=0.5, lr_power=-0.3),
    "proximal_adagrad": lambda: O.ProximalAdagrad(0.1, accum=0.1, l1=0.01, l2=0.02),
    "lamb_weight_decay": lambda: O.LAMB(0.01, weight_decay=0.1, trust_ratio="mindspore"),
}


@pytest.mark.parametrize("case", list(MINDSPORE_CASES))
def test_matches_mindspore_goldens(case):
    _, w0, grads, cases = _load("mindspore_optimizers.json")
    traj, _ = run_fixed_grads(MINDSPORE_CASES[case], w0, grads)
    _assert_close_trajectory(traj, cases[case], 1e-5)


def test_pytorch_adam_epsilon_differs_from_mindspore_tf_form():
    _, w0, grads, cases = _load("mindspore_optimizers.json")
    traj, _ = run_fixed_grads(lambda: O.pytorch.Adam(0.01, epsilon=1e-2), w0, grads)
    assert max_rel_diff(traj[-1], cases["adam_tf_epsilon"][-1]) > 1e-3


@pytest.mark.parametrize("case", ["relative_step", "warmup_init_beta1_weight_decay", "external_lr_no_scale"])
def test_matches_transformers_adafactor_goldens(case):
    data, w0, grads, cases = _load("adafactor.json")
    kwargs = dict(data["kwargs"][case])
    lr = kwargs.pop("lr", None)
    traj, job = run_fixed_grads(lambda: O.Adafactor(lr, **kwargs), w0, grads)
    _assert_close_trajectory(traj, cases[case], 1e-5)
    if lr is None:  # the relative step is what the job reports as its lr
        t = len(grads)
        expected = min(1e-6 * t if kwargs.get("warmup_init") else 1e-2, t**-0.5)
        assert job.last_info["lr"] == pytest.approx(expected, rel=1e-6)

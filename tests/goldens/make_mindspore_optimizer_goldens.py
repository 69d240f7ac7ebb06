"""Writes tests/goldens/mindspore_optimizers.json: MindSpore optimizers on fixed gradients.

Run with a Python that has MindSpore (2.10 produced the committed file)::

    /work/msvenv/bin/python tests/goldens/make_mindspore_optimizer_goldens.py

Each case starts from the same weights, feeds the same per-step gradients to a MindSpore
optimizer (``optimizer(grads)`` in PyNative mode on CPU) and records the weights after
every step. tests/test_optimizer_parity.py replays the gradients through jobflow jobs.

Choices forced by MindSpore 2.10's CPU kernels (each reproduced, then worked around):

* every variable has fewer than 8 elements: the non-centered ``ApplyRMSProp`` kernel
  uses an approximate AVX ``rsqrt`` on full 8-element lanes (errors near 1e-4);
* ``ApplyMomentum`` ignores ``use_nesterov``, so no Nesterov case is recorded;
* ``ApplyFtrl`` computes ``sign(linear) * l1`` as ``l1 if linear != 0 else -l1`` (always
  ``+l1``), so the FTRL cases use ``l1 = 0``; jobflow's l1 branch follows TensorFlow's
  ``ApplyFtrl`` (and MindSpore's documented formula) and is checked by hand instead.

``nn.Lamb`` calls the fused ``Lamb`` kernel, which has no CPU implementation; for it the
script evaluates, with MindSpore ops on CPU, the composite graph MindSpore's own test
``tests/st/ops/gpu/test_lamb_op.py::LambGPUOrigin`` asserts the fused kernel equals
(``global_step`` is the step after its increment, 1 for the first update, as
``nn.Lamb.construct`` passes it).
"""

import json
import os

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")

SHAPES = {"w": (2, 3), "b": (4,)}
STEPS = 12
LR_LIST = [0.05 * 0.9**i for i in range(STEPS)]


def problem(seed=0):
    rng = np.random.default_rng(seed)
    w0 = {n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    grads = [{n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()} for _ in range(STEPS)]
    return w0, grads


def run_optimizer(make, w0, grads):
    params = [Parameter(Tensor(w0[n].copy()), name=n) for n in SHAPES]
    opt = make(params)
    traj = []
    for g in grads:
        opt(tuple(Tensor(g[n]) for n in SHAPES))
        traj.append({p.name: p.asnumpy().tolist() for p in params})
    return traj


def lamb_composite(param, m, v, grad, beta1, beta2, eps, global_step, lr, weight_decay):
    """MindSpore's reference Lamb graph (LambGPUOrigin), one variable, in MindSpore ops."""
    c = lambda x: Tensor(x, ms.float32)
    one, b1, b2, e, wd = c(1.0), c(beta1), c(beta2), c(eps), c(weight_decay)
    next_m = ops.mul(b1, m) + ops.mul(one - b1, grad)
    next_v = ops.mul(b2, v) + ops.mul(one - b2, ops.square(grad))
    step = c(float(global_step))
    next_mm = next_m / (one - ops.pow(b1, step))
    next_vv = next_v / (one - ops.pow(b2, step))
    norm = nn.Norm()
    w_norm, g_norm = norm(param), norm(grad)
    g_norm_hat = norm(ops.mul(next_mm, ops.rsqrt(next_vv + e)) + ops.mul(wd, param))
    zeros, ones = ops.zeros_like(w_norm), ops.ones_like(w_norm)
    trust = ops.select(w_norm > zeros, ops.select(g_norm > zeros, w_norm / g_norm_hat, ones), ones)
    trust = ops.clip_by_value(trust, zeros, ones * c(10.0))
    update = next_mm / (ops.sqrt(next_vv) + e) + ops.mul(wd, param)
    return param - ops.mul(ops.mul(trust, c(lr)), update), next_m, next_v


def run_lamb(w0, grads, lr, beta1, beta2, eps, weight_decay):
    state = {n: (Tensor(w0[n]), ops.zeros_like(Tensor(w0[n])), ops.zeros_like(Tensor(w0[n]))) for n in SHAPES}
    traj = []
    for t, g in enumerate(grads, start=1):
        state = {
            n: lamb_composite(*state[n], Tensor(g[n]), beta1, beta2, eps, t, lr, weight_decay) for n in SHAPES
        }
        traj.append({n: state[n][0].asnumpy().tolist() for n in SHAPES})
    return traj


CASES = {
    "momentum_lr_list": lambda p: nn.Momentum(p, LR_LIST, 0.9),
    "momentum_weight_decay": lambda p: nn.Momentum(p, 0.05, 0.9, weight_decay=0.01),
    "adam_tf_epsilon": lambda p: nn.Adam(p, 0.01, eps=1e-2),
    "rmsprop_centered_momentum_lr_list": lambda p: nn.RMSProp(
        p, LR_LIST, decay=0.9, momentum=0.5, centered=True
    ),
    "rmsprop_epsilon_inside_sqrt": lambda p: nn.RMSProp(p, 0.01, decay=0.8, epsilon=1e-2),
    "ftrl": lambda p: nn.FTRL(p, initial_accum=0.1, learning_rate=0.1, l2=0.02),
    "ftrl_lr_power": lambda p: nn.FTRL(p, initial_accum=0.5, learning_rate=0.2, lr_power=-0.3),
    "proximal_adagrad": lambda p: nn.ProximalAdagrad(p, accum=0.1, learning_rate=0.1, l1=0.01, l2=0.02),
}


def main():
    w0, grads = problem()
    out = {
        "mindspore_version": ms.__version__,
        "shapes": SHAPES,
        "lr_list": LR_LIST,
        "w0": {n: v.tolist() for n, v in w0.items()},
        "grads": [{n: v.tolist() for n, v in g.items()} for g in grads],
        "cases": {name: run_optimizer(make, w0, grads) for name, make in CASES.items()},
    }
    out["cases"]["lamb_weight_decay"] = run_lamb(w0, grads, 0.01, 0.9, 0.999, 1e-6, 0.1)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mindspore_optimizers.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path)


if __name__ == "__main__":
    main()

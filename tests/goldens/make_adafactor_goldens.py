"""Writes tests/goldens/adafactor.json: ``transformers.Adafactor`` on fixed gradients.

Run with a Python that has torch and transformers (transformers 5.23.0 with torch 2.13
produced the committed file)::

    python -m venv --system-site-packages /tmp/hf && /tmp/hf/bin/pip install transformers
    /tmp/hf/bin/python tests/goldens/make_adafactor_goldens.py

Each case starts from the same weights, sets the same per-step gradients and calls
``optimizer.step()``, recording the weights after every step.
tests/test_optimizer_parity.py replays the gradients through jobflow jobs.
"""

import json
import os

import numpy as np
import torch
import transformers
from transformers.optimization import Adafactor

SHAPES = {"w": (3, 4), "k": (2, 3, 5), "b": (4,)}
STEPS = 12

CASES = {
    "relative_step": {},
    "warmup_init_beta1_weight_decay": {"warmup_init": True, "beta1": 0.9, "weight_decay": 0.01},
    "external_lr_no_scale": {
        "lr": 0.05,
        "relative_step": False,
        "scale_parameter": False,
        "clip_threshold": 0.5,
    },
}


def problem(seed=0):
    rng = np.random.default_rng(seed)
    w0 = {n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    grads = [{n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()} for _ in range(STEPS)]
    return w0, grads


def run(kwargs, w0, grads):
    params = {n: torch.nn.Parameter(torch.tensor(w0[n])) for n in SHAPES}
    opt = Adafactor(list(params.values()), **kwargs)
    traj = []
    for g in grads:
        for n, p in params.items():
            p.grad = torch.tensor(g[n])
        opt.step()
        traj.append({n: p.detach().numpy().tolist() for n, p in params.items()})
    return traj


def main():
    w0, grads = problem()
    out = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "shapes": SHAPES,
        "kwargs": CASES,
        "w0": {n: v.tolist() for n, v in w0.items()},
        "grads": [{n: v.tolist() for n, v in g.items()} for g in grads],
        "cases": {name: run(kwargs, w0, grads) for name, kwargs in CASES.items()},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adafactor.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path)


if __name__ == "__main__":
    main()

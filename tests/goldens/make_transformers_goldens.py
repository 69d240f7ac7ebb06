"""Writes transformers_schedules.json: transformers' own learning rates, for
tests/test_schedule_transformers.py. Never imported by the tests or by jobflow.

Run with a Python that has transformers and torch (e.g. a separate virtual environment;
transformers is no dependency of jobflow)::

    python tests/goldens/make_transformers_goldens.py
"""

import json
import pathlib

import torch
import transformers
from transformers import get_scheduler

STEPS = 600
BASE = 0.1

CASES = {
    "linear": dict(num_warmup_steps=50, num_training_steps=500),
    "linear-nowarmup": dict(num_warmup_steps=0, num_training_steps=400),
    "cosine": dict(num_warmup_steps=60, num_training_steps=450),
    "cosine-cycles": dict(
        num_warmup_steps=10, num_training_steps=510, scheduler_specific_kwargs={"num_cycles": 1.7}
    ),
    "cosine_with_restarts": dict(
        num_warmup_steps=40, num_training_steps=540, scheduler_specific_kwargs={"num_cycles": 4}
    ),
    "cosine_with_restarts-frac": dict(
        num_warmup_steps=0, num_training_steps=500, scheduler_specific_kwargs={"num_cycles": 2.5}
    ),
    "polynomial": dict(
        num_warmup_steps=30, num_training_steps=480, scheduler_specific_kwargs={"lr_end": 1e-4, "power": 2.0}
    ),
    "constant": dict(),
    "constant_with_warmup": dict(num_warmup_steps=77),
    "inverse_sqrt": dict(num_warmup_steps=100),
    "inverse_sqrt-timescale": dict(num_warmup_steps=20, scheduler_specific_kwargs={"timescale": 300}),
    "cosine_with_min_lr": dict(
        num_warmup_steps=25, num_training_steps=500, scheduler_specific_kwargs={"min_lr": 0.01}
    ),
    "cosine_with_min_lr-rate": dict(
        num_warmup_steps=0,
        num_training_steps=450,
        scheduler_specific_kwargs={"min_lr_rate": 0.05, "num_cycles": 0.75},
    ),
    "warmup_stable_decay": dict(
        num_warmup_steps=50,
        num_training_steps=550,
        scheduler_specific_kwargs={"num_decay_steps": 200, "min_lr_ratio": 0.1},
    ),
    "warmup_stable_decay-shapes": dict(
        num_warmup_steps=80,
        scheduler_specific_kwargs={
            "num_decay_steps": 150,
            "num_stable_steps": 250,
            "warmup_type": "cosine",
            "decay_type": "1-sqrt",
        },
    ),
    "warmup_stable_decay-linear": dict(
        num_warmup_steps=64,
        scheduler_specific_kwargs={
            "num_decay_steps": 300,
            "num_stable_steps": 100,
            "warmup_type": "1-sqrt",
            "decay_type": "linear",
            "min_lr_ratio": 0.02,
        },
    ),
}


def lrs(name, kwargs):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=BASE)
    sched = get_scheduler(name.split("-")[0], opt, **kwargs)
    out = []
    for _ in range(STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def main():
    out = {"transformers_version": transformers.__version__, "steps": STEPS, "base_lr": BASE, "cases": {}}
    for key, kwargs in CASES.items():
        out["cases"][key] = {"kwargs": kwargs, "values": lrs(key, kwargs)}
    path = pathlib.Path(__file__).with_name("transformers_schedules.json")
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

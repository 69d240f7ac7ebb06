"""Writes mindspore_schedules.json: MindSpore's own learning rates, for
tests/test_schedule_mindspore.py. Never imported by the tests or by jobflow.

Run with a Python that has MindSpore (2.x; its CPU wheels need numpy < 2)::

    python tests/goldens/make_mindspore_schedule_goldens.py

The file records the MindSpore version. The classes are evaluated on a vector of
``global_step`` values (int32), as an optimizer would call them, in float32.
"""

import json
import pathlib

import mindspore as ms
import numpy as np
from mindspore import nn

STEPS = 200

LISTS = {
    "piecewise_constant_lr": ([2, 5, 10], [0.1, 0.05, 0.01]),
    "exponential_decay_lr": (0.1, 0.9, 50, 3, 2),
    "exponential_decay_lr-stair": (0.1, 0.9, 50, 3, 2, True),
    "natural_exp_decay_lr": (0.1, 0.3, 50, 2, 3),
    "natural_exp_decay_lr-stair": (0.1, 0.3, 50, 2, 3, True),
    "inverse_decay_lr": (0.1, 0.5, 50, 4, 2),
    "inverse_decay_lr-stair": (0.1, 0.5, 50, 4, 2, True),
    "cosine_decay_lr": (0.01, 0.1, 60, 3, 10),
    "polynomial_decay_lr": (0.1, 0.01, 60, 2, 10, 0.5),
    "polynomial_decay_lr-update": (0.1, 0.01, 60, 2, 10, 2.0, True),
    "warmup_lr": (0.1, 40, 3, 5),
}

CLASSES = {
    "ExponentialDecayLR": (0.1, 0.9, 10),
    "ExponentialDecayLR-stair": (0.1, 0.9, 10, True),
    "NaturalExpDecayLR": (0.1, 0.05, 10),
    "NaturalExpDecayLR-stair": (0.1, 0.05, 10, True),
    "InverseDecayLR": (0.1, 0.5, 10),
    "InverseDecayLR-stair": (0.1, 0.5, 10, True),
    "CosineDecayLR": (0.01, 0.1, 100),
    "PolynomialDecayLR": (0.1, 0.01, 50, 0.5),
    "PolynomialDecayLR-update": (0.1, 0.01, 50, 2.0, True),
    "WarmUpLR": (0.1, 30),
}


def main():
    out = {"mindspore_version": ms.__version__, "steps": STEPS, "lists": {}, "classes": {}}
    for key, args in LISTS.items():
        out["lists"][key] = {"args": list(args), "values": getattr(nn, key.split("-")[0])(*args)}
    steps = ms.Tensor(np.arange(STEPS, dtype=np.int32))
    for key, args in CLASSES.items():
        cell = getattr(nn, key.split("-")[0])(*args)
        values = cell(steps).asnumpy().astype(np.float64).tolist()
        out["classes"][key] = {"args": list(args), "values": values}
    path = pathlib.Path(__file__).with_name("mindspore_schedules.json")
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

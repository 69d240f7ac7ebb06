"""Writes mindspore_loss_scale.json: the loss scales MindSpore's dynamic loss scale gives
for fixed overflow patterns, for tests/test_loss_scale.py. Never imported by the tests
or by jobflow.

Run with a Python that has MindSpore (2.x)::

    python tests/goldens/make_mindspore_loss_scale_goldens.py

Each pattern runs ``nn.DynamicLossScaleUpdateCell`` (what ``TrainOneStepWithLossScaleCell``
calls in graph and PyNative mode) and the host-side
``DynamicLossScaleManager.update_loss_scale``; ``scales[i]`` is the scale step ``i``
uses (read before that step's update), ``overflow`` lists the overflowing steps.
"""

import json
import pathlib

import mindspore as ms
from mindspore import Parameter, Tensor, nn
from mindspore.train.loss_scale_manager import DynamicLossScaleManager

PATTERNS = {
    "window5": dict(init=1024.0, factor=2, window=5, steps=17, overflow=[3, 4, 10]),
    "floor": dict(init=16.0, factor=2, window=3, steps=16, overflow=list(range(8))),
    "factor3": dict(init=5.0, factor=3, window=2, steps=14, overflow=[1, 4, 5, 9]),
    "defaults": dict(init=2.0**24, factor=2, window=2000, steps=30, overflow=list(range(26))),
}


def cell_scales(p):
    cell = nn.DynamicLossScaleUpdateCell(p["init"], p["factor"], p["window"])
    scale = Parameter(Tensor(p["init"], ms.float32), name="scale_sense")
    out = []
    for i in range(p["steps"]):
        out.append(float(scale.asnumpy()))
        cell(scale, Tensor(i in p["overflow"], ms.bool_))
    return out


def manager_scales(p):
    manager = DynamicLossScaleManager(p["init"], p["factor"], p["window"])
    out = []
    for i in range(p["steps"]):
        out.append(float(manager.get_loss_scale()))
        manager.update_loss_scale(i in p["overflow"])
    return out


def main():
    out = {"mindspore_version": ms.__version__, "patterns": {}}
    for key, p in PATTERNS.items():
        out["patterns"][key] = {**p, "cell": cell_scales(p), "manager": manager_scales(p)}
    path = pathlib.Path(__file__).with_name("mindspore_loss_scale.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

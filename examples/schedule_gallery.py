"""Draws every schedule family jobflow offers into one image (schedule_gallery.png).

    python examples/schedule_gallery.py [--steps 600] [--out schedule_gallery.png]

One panel per family: OneFlow's legacy schedulers, the OneFlow 0.7 / PyTorch names,
MindSpore's functions and classes, transformers' schedules and the compositions. Each
curve is ``schedule.values(steps)``: one compiled program per schedule.
"""

from __future__ import annotations

import argparse

import jobflow as flow
from jobflow import schedule as S
from jobflow.schedule import mindspore as M
from jobflow.schedule import pytorch as P
from jobflow.schedule import transformers as T


def families(n: int) -> dict[str, dict[str, object]]:
    """``{panel title: {label: schedule}}`` for ``n`` steps (base rate 1)."""
    opt, w = flow.optimizer, flow.optimizer.warmup
    q = n // 4
    return {
        "OneFlow legacy (flow.optimizer)": {
            "PiecewiseConstant": opt.PiecewiseConstantScheduler([q, 2 * q], [1.0, 0.5, 0.1]),
            "PiecewiseScaling": opt.PiecewiseScalingScheduler(1.0, [q, 3 * q], [0.3, 0.05]),
            "Cosine+warmup": opt.CosineScheduler(1.0, n, 0.1, warmup=w.linear(n // 10, 0)),
            "Polynomial cycle": opt.PolynomialScheduler(1.0, q, 0.05, 2.0, cycle=True),
            "LinearCosine": opt.LinearCosineScheduler(1.0, n, num_periods=2.0),
            "Exponential": opt.ExponentialScheduler(1.0, q, 0.5, staircase=True),
            "InverseTime": opt.InverseTimeScheduler(1.0, q // 4, 0.5),
            "NaturalExp": opt.NaturalExpScheduler(1.0, q, 0.7, warmup=w.constant(n // 10, 0.3)),
        },
        "OneFlow 0.7 names (flow.schedule)": {
            "ConstantLR": S.ConstantLR(1.0, 0.5, q),
            "LinearLR": S.LinearLR(1.0, 0.1, 1.0, q),
            "ExponentialLR": S.ExponentialLR(1.0, 0.01 ** (1 / n)),
            "StepLR": S.StepLR(1.0, q, 0.5),
            "MultiStepLR": S.MultiStepLR(1.0, [q, 3 * q], 0.3),
            "PolynomialLR": S.PolynomialLR(1.0, 2 * q, 0.1, 2.0),
            "CosineDecayLR": S.CosineDecayLR(1.0, 3 * q, 0.2),
            "WarmupLR(Cosine)": S.WarmupLR(S.CosineDecayLR(1.0, n), 0.1, n // 8),
        },
        "cosine & cyclic families": {
            "CosineAnnealingLR": S.CosineAnnealingLR(1.0, q),
            "WarmRestarts": S.CosineAnnealingWarmRestarts(1.0, n // 15, 2, 0.05, decay_rate=0.7),
            "CyclicLR": S.CyclicLR(0.1, 1.0, n // 10, mode="triangular2"),
            "OneCycleLR": S.OneCycleLR(1.0, total_steps=n),
            "SequentialLR": S.SequentialLR([S.LinearLR(1.0, 0.1, 1.0, q), S.ExponentialLR(1.0, 0.995)], [q]),
            "ChainedScheduler": S.ChainedScheduler([S.StepLR(1.0, q, 0.5), S.CosineAnnealingLR(1.0, q // 2)]),
            "MultiplicativeLR": S.MultiplicativeLR(1.0, lambda t: 0.997),
        },
        "PyTorch semantics (flow.schedule.pytorch)": {
            "PolynomialLR": P.PolynomialLR(1.0, 3 * q, 2.0),
            "SequentialLR": P.SequentialLR([P.ConstantLR(1.0, 0.3, q), P.CosineAnnealingLR(1.0, 3 * q)], [q]),
            "WarmRestarts": P.CosineAnnealingWarmRestarts(1.0, q // 2, 2),
            "LambdaLR": P.LambdaLR(1.0, lambda t: 1.0 / (1.0 + 0.01 * t)),
        },
        "MindSpore (flow.schedule.mindspore)": {
            "exponential_decay_lr": S.Table(M.exponential_decay_lr(1.0, 0.8, n, n // 20, 2, True)),
            "cosine_decay_lr": S.Table(M.cosine_decay_lr(0.05, 1.0, n, n // 20, 15)),
            "polynomial_decay_lr": S.Table(M.polynomial_decay_lr(1.0, 0.1, n, n // 20, 5, 2.0, True)),
            "warmup_lr": S.Table(M.warmup_lr(1.0, n, n // 20, 10)),
            "NaturalExpDecayLR": M.NaturalExpDecayLR(1.0, 0.01, q, True),
            "InverseDecayLR": M.InverseDecayLR(1.0, 0.5, q // 2),
            "CosineDecayLR": M.CosineDecayLR(0.1, 1.0, 2 * q),
            "WarmUpLR": M.WarmUpLR(1.0, q),
        },
        "transformers (flow.schedule.transformers)": {
            name: T.get_scheduler(name, 1.0, n // 10, 4 * q, **kw)
            for name, kw in [
                ("linear", {}),
                ("cosine", {}),
                ("cosine_with_restarts", {"num_cycles": 3}),
                ("polynomial", {"power": 2.0, "lr_end": 0.05}),
                ("constant_with_warmup", {}),
                ("inverse_sqrt", {}),
                ("cosine_with_min_lr", {"min_lr_rate": 0.2}),
                ("warmup_stable_decay", {"num_decay_steps": q, "min_lr_ratio": 0.1}),
            ]
        },
        "composition (join / product / with_warmup)": {
            "join offset": S.join(
                [S.LinearLR(1.0, 0.2, 1.0, q), S.StepLR(1.0, q // 2, 0.5)], [q], step="offset"
            ),
            "join global": S.join(
                [S.LinearLR(1.0, 0.2, 1.0, q), S.StepLR(1.0, q // 2, 0.5)], [q], step="global"
            ),
            "product": S.product(S.CosineAnnealingLR(1.0, q // 2), S.ExponentialLR(1.0, 0.995)),
            "with_warmup(optax)": S.with_warmup(_optax_cosine(3 * q), q),
        },
    }


def _optax_cosine(steps):
    import optax

    return optax.cosine_decay_schedule(1.0, steps)


def draw(path: str, n: int = 600) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = families(n)
    cols = 2
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.2 * rows), squeeze=False)
    for ax, (title, scheds) in zip(axes.flat, panels.items()):
        for label, sched in scheds.items():
            sched.plot(n, ax=ax, label=label)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=6, ncol=2, loc="upper right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="schedule_gallery.png")
    args = parser.parse_args(argv)
    print("wrote", draw(args.out, args.steps))


if __name__ == "__main__":
    main()

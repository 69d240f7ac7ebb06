"""Runs a jobflow optimizer on given gradients through a real compiled train job.

The job's loss is ``sum_v sum(v * g_v)`` with the gradients ``g_v`` fed as one flat
placeholder, so the gradient of each variable ``v`` is exactly ``g_v`` (plus its
regularizer, if any) and the optimizer's rule is all that moves the weights.
"""

import math

import numpy as np

import jobflow as flow
import jobflow.typing as tp


def fixed_grad_job(make_optimizer, shapes: dict, regularizers=None, dtype=np.float32):
    sizes = [math.prod(s) for s in shapes.values()]
    total = sum(sizes)
    regularizers = regularizers or {}

    @flow.global_function(type="train")
    def fixed(g: tp.Numpy.Placeholder((total,), dtype=dtype)) -> tp.Numpy:
        loss, off = None, 0
        for (name, shape), n in zip(shapes.items(), sizes):
            w = flow.get_variable(
                name,
                shape,
                dtype=dtype,
                initializer=flow.zeros_initializer(),
                regularizer=regularizers.get(name),
            )
            term = flow.math.reduce_sum(w * flow.reshape(g[off : off + n], shape))
            loss, off = term if loss is None else loss + term, off + n
        make_optimizer().minimize(loss)
        return loss

    return fixed


def run_fixed_grads(make_optimizer, w0: dict, grads: list, regularizers=None, every: int = 1):
    """Returns (the weights after every ``every``-th step and after the last, the job)."""
    shapes = {n: np.shape(v) for n, v in w0.items()}
    job = fixed_grad_job(make_optimizer, shapes, regularizers, dtype=next(iter(w0.values())).dtype)
    flow.load_variables(w0)
    traj = []
    for i, g in enumerate(grads):
        job(np.concatenate([np.ravel(g[n]) for n in shapes]))
        if (i + 1) % every == 0 or i + 1 == len(grads):
            values = flow.get_all_variables()
            traj.append({n: np.array(values[n]) for n in shapes})
    return traj, job


def random_problem(shapes: dict, steps: int, seed: int = 0, scale: float = 1.0):
    """Initial weights and per-step gradients (float32, standard normal times ``scale``)."""
    rng = np.random.default_rng(seed)
    w0 = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
    grads = [
        {n: (scale * rng.normal(size=s)).astype(np.float32) for n, s in shapes.items()} for _ in range(steps)
    ]
    return w0, grads


def max_rel_diff(a: dict, b: dict) -> float:
    """max over variables of max|a - b| / max|b| (relative to the variable's scale)."""
    return max(float(np.max(np.abs(a[n] - b[n])) / max(np.max(np.abs(b[n])), 1e-30)) for n in b)

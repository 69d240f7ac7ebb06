"""Per-call overhead as the number of variables grows (the section ``overhead`` of
``python -m benchmarks``): a trivial train step over N small variables, jobflow vs the
same pure step as a hand-written ``jax.jit`` call with the state as a pytree (donated).

The step: ``loss = sum_i sum(v_i * x)`` over N float32 variables of shape (4,), plain
SGD (lr 0.01), the loss read on the host each call. The hand-written step is the same
function of a ``{name: array}`` dict, differentiated, ``optax.sgd`` applied, params
donated. The XLA work is a few microseconds; what grows with N is each side's per-leaf
cost: flattening the state, XLA's per-buffer dispatch, and (jobflow) the store.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jobflow as flow
import jobflow.typing as tp
from benchmarks import _harness as h
from benchmarks import models

DIM, LR = 4, 0.01
COUNTS = {"full": (10, 100, 1000), "quick": (10, 100)}
# (variable-calls per round, rounds): a round makes max(5, budget // N) calls of each contender
CALLS = {"full": (4000, 11), "quick": (500, 3)}
HAND = "jax.jit by hand (pytree state, donated)"
DIRECT = "jobflow's compiled step, called directly"


def _names(n: int) -> list[str]:
    return [f"ovh{n}-v{i:04d}" for i in range(n)]


def overhead_job(n: int):
    """A train job over ``n`` variables of shape (DIM,): ``loss = sum_i sum(v_i * x)``."""
    names = _names(n)

    @flow.global_function(type="train")
    def body(x: tp.Numpy.Placeholder((DIM,)), y: tp.Numpy.Placeholder((1,))) -> tp.Numpy:
        loss = flow.math.reduce_sum(y)
        for name in names:
            v = flow.get_variable(name, shape=(DIM,), initializer=flow.constant_initializer(0.5))
            loss = loss + flow.math.reduce_sum(v * x)
        flow.optimizer.SGD(LR, momentum=0.0).minimize(loss)  # OneFlow's default is 0.9
        return loss

    body.__name__ = f"overhead_{n}"
    return body


class HandStep:
    """The same step by hand: ``{name: array}`` params donated to a ``jax.jit`` step."""

    def __init__(self, n: int):
        self.params = {name: jnp.full((DIM,), 0.5, jnp.float32) for name in _names(n)}
        tx = optax.sgd(LR)
        self.opt = tx.init(self.params)

        def loss_fn(params, x, y):
            loss = jnp.sum(y)
            for v in params.values():
                loss = loss + jnp.sum(v * x)
            return loss

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(params, opt, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt = tx.update(grads, opt, params)
            return optax.apply_updates(params, updates), opt, loss

        self._step = step

    def step(self, x, y):
        self.params, self.opt, loss = self._step(self.params, self.opt, x, y)
        return np.asarray(loss)

    def sync(self):
        jax.block_until_ready(self.params)


def measure(n: int, calls: int, rounds: int) -> dict:
    """``{implementation: [seconds per call, one per round]}`` for ``n`` variables, and the
    largest difference of the first losses (the same model on both sides)."""
    flow.clear_default_session()
    rng = np.random.default_rng(0)
    batches = [
        (rng.normal(size=DIM).astype(np.float32), rng.normal(size=1).astype(np.float32)) for _ in range(4)
    ]
    job = overhead_job(n)
    loops = {"jobflow": models.JobLoop(job), HAND: HandStep(n)}
    first = {k: [float(loop.step(*batches[i])) for i in range(3)] for k, loop in loops.items()}
    check = max(abs(a - b) for a, b in zip(first["jobflow"], first[HAND]))
    loops[DIRECT] = models.CompiledStep(job, batches[0])
    times = h.interleaved(loops, calls, rounds, batches, warmup=10)
    return {"times": times, "check": check}


def run(counts, budget: int, rounds: int) -> dict:
    rows, medians = [], {}
    for n in counts:
        result = measure(n, max(5, budget // n), rounds)
        t = result["times"]
        medians[n] = {k: h.median(v) for k, v in t.items()}
        for name, values in t.items():
            rows.append(
                {
                    "variables": n,
                    "implementation": name,
                    "us/call": h.median(values) * 1e6,
                    "vs hand-written": h.ratio(t, name, HAND),
                    "jobflow - hand (us)": (h.median(t["jobflow"]) - h.median(t[HAND])) * 1e6
                    if name == "jobflow"
                    else None,
                    "spread": h.spread(values),
                    "first losses": result["check"] if name == "jobflow" else None,
                }
            )
    notes = [
        f"Train step over N float32 variables of shape ({DIM},), plain SGD, the loss read each call; "
        f"{rounds} interleaved rounds of max(5, {budget} // N) calls; 'vs hand-written': median of "
        "per-round ratios. 'called directly': jobflow's XLA program without jobflow's Python call path.",
    ]
    lo, hi = min(counts), max(counts)
    if hi > lo:
        slope = {k: (medians[hi][k] - medians[lo][k]) / (hi - lo) * 1e9 for k in medians[hi]}
        notes.append(
            "per added variable: "
            + ", ".join(f"{k} {v:.0f} ns" for k, v in slope.items())
            + f" (difference of the medians at {hi} and {lo} variables)"
        )
    flow.clear_default_session()
    return {
        "title": "Per-call overhead by number of variables",
        "columns": [
            "variables",
            "implementation",
            "us/call",
            "vs hand-written",
            "jobflow - hand (us)",
            "spread",
            "first losses",
        ],
        "rows": rows,
        "notes": notes,
    }


def section(scale) -> dict:
    """``python -m benchmarks --only overhead``."""
    mode = "quick" if scale.get("quick") else "full"
    return run(COUNTS[mode], *CALLS[mode])

"""First-call time of deep MLPs (the section ``first_call`` of ``python -m benchmarks``):
from building the job (hand-written: its parameters and jitted step) to the first loss on
the host, in a fresh process per measurement, jobflow vs hand-written JAX + optax.

The MLP: ``layers`` dense layers of width 256 (ReLU between them), input 256, 10 classes,
batch 64, softmax cross-entropy, Adam in PyTorch's form (``flow.optimizer.pytorch.Adam``,
the math of ``optax.adam``). Each process measures one implementation and reports where
the time went:

* jobflow: ``discovery`` (the body run once abstractly, ``plan.discover``), ``trace +
  lower`` (the step traced inside ``jax.jit`` and lowered to StableHLO), ``XLA compile``,
  and the rest (variable and optimizer-state initialization, the call, the first step).
* hand-written: ``trace + lower`` (``jax.jit(step).lower``), ``XLA compile``, the rest
  (parameters, optimizer state, the first step).

Run alone: ``python -m benchmarks.first_call '{"impl": "jobflow", "layers": 32}'``
prints the measurement as JSON.
"""

import contextlib
import functools
import json
import resource
import sys
import time

import jobflow as flow
import jobflow.typing as tp
from benchmarks import _harness as h

WIDTH, BATCH, CLASSES, LR = 256, 64, 10, 1e-3
LAYERS = {"full": (8, 32, 128), "quick": (8, 32)}
PROCESSES = {"full": 3, "quick": 1}


class _Timer:
    """Accumulated seconds per label of wrapped functions; ``restore()`` unwraps them."""

    def __init__(self):
        self.spent: dict[str, float] = {}
        self._wrapped: list = []

    def restore(self) -> None:
        for owner, attr, fn in reversed(self._wrapped):
            setattr(owner, attr, fn)
        self._wrapped.clear()

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)
        self._wrapped.append((owner, attr, fn))

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, attr, timed)


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (user + system): less sensitive
    than wall time to other processes sharing the cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _data():
    import numpy as np

    rng = np.random.default_rng(0)
    return [
        (rng.random((BATCH, WIDTH), dtype=np.float32), rng.integers(0, CLASSES, BATCH).astype(np.int32))
        for _ in range(2)
    ]


def mlp_job(layers: int):
    """The jobflow MLP of ``layers`` dense layers."""

    @flow.global_function(type="train")
    def deep_mlp(
        x: tp.Numpy.Placeholder((BATCH, WIDTH)), y: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32)
    ) -> tp.Numpy:
        hidden = x
        for i in range(layers - 1):
            hidden = flow.layers.dense(
                hidden,
                WIDTH,
                activation=flow.nn.relu,
                name=f"deep{i}",
                kernel_initializer=flow.xavier_uniform_initializer(),
            )
        logits = flow.layers.dense(
            hidden, CLASSES, name="deep_head", kernel_initializer=flow.xavier_uniform_initializer()
        )
        loss = flow.math.reduce_mean(flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        flow.optimizer.pytorch.Adam(LR).minimize(loss)
        return loss

    return deep_mlp


def _jobflow(layers: int, data) -> dict:
    import jax

    from jobflow._src.runtime import job as job_impl
    from jobflow._src.runtime import plan as plan_impl

    timer = _Timer()
    timer.wrap(plan_impl, "discover", "discovery")
    timer.wrap(job_impl, "compile_program", "compile_program")
    timer.wrap(jax.stages.Lowered, "compile", "XLA compile")
    try:
        start, cpu = time.perf_counter(), _cpu()
        job = mlp_job(layers)
        float(job(*data[0]).mean())
        first, cpu = time.perf_counter() - start, _cpu() - cpu
    finally:
        timer.restore()
    s = timer.spent
    return {
        "first_call_s": first,
        "cpu_s": cpu,
        "discovery_s": s.get("discovery", 0.0),
        "trace_lower_s": s.get("compile_program", 0.0) - s.get("XLA compile", 0.0),
        "xla_compile_s": s.get("XLA compile", 0.0),
    }


def _hand(layers: int, data) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    start, cpu = time.perf_counter(), _cpu()
    rng = np.random.default_rng(0)
    sizes = [WIDTH] * layers + [CLASSES]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-lim, lim, (fan_out, fan_in)).astype(np.float32)
        params.append((jnp.asarray(w), jnp.zeros(fan_out, jnp.float32)))
    tx = optax.adam(LR)
    opt = tx.init(params)

    def loss_fn(params, x, y):
        hidden = x
        for w, b in params[:-1]:
            hidden = jax.nn.relu(hidden @ w.T + b)
        w, b = params[-1]
        return optax.softmax_cross_entropy_with_integer_labels(hidden @ w.T + b, y).mean()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    t0 = time.perf_counter()
    lowered = step.lower(params, opt, *data[0])
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    params, opt, loss = compiled(params, opt, *data[0])
    float(np.asarray(loss))
    first, cpu = time.perf_counter() - start, _cpu() - cpu
    return {
        "first_call_s": first,
        "cpu_s": cpu,
        "discovery_s": 0.0,
        "trace_lower_s": t1 - t0,
        "xla_compile_s": t2 - t1,
    }


def measure(impl: str, layers: int) -> dict:
    """One measurement in this process (call it in a fresh one)."""
    import jax  # noqa: F401  (imports are not part of the measurement)
    import optax  # noqa: F401

    import jobflow  # noqa: F401

    data = _data()
    return (_jobflow if impl == "jobflow" else _hand)(layers, data)


def _in_subprocess(impl: str, layers: int) -> dict:
    import os
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(h.ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "benchmarks.first_call", json.dumps({"impl": impl, "layers": layers})]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=h.ROOT, timeout=900)
    if proc.returncode:
        raise RuntimeError(f"first_call {impl} {layers} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rows(layers: int, results: dict) -> list[dict]:
    """The table rows of one depth from ``{impl: [measurement per process]}``."""

    def ratio(impl: str, key: str) -> float:  # median of per-process ratios (interleaved pairs)
        return h.median([a[key] / b[key] for a, b in zip(results[impl], results["hand"])])

    rows = []
    for impl, rs in results.items():
        m = {k: h.median([r[k] for r in rs]) for k in rs[0]}
        own = impl == "jobflow"
        rows.append(
            {
                "layers": layers,
                "implementation": "jobflow" if own else "JAX + optax (jax.jit)",
                "first call (s)": m["first_call_s"],
                "vs hand-written": ratio(impl, "first_call_s"),
                "CPU (s)": m["cpu_s"],
                "CPU vs hand-written": ratio(impl, "cpu_s"),
                "discovery (s)": m["discovery_s"] if own else None,
                "trace + lower (s)": m["trace_lower_s"],
                "XLA compile (s)": m["xla_compile_s"],
                "discovery share": m["discovery_s"] / m["first_call_s"] if own else None,
            }
        )
    return rows


def run(layer_counts, processes: int) -> dict:
    rows = []
    for layers in layer_counts:
        results: dict[str, list] = {"jobflow": [], "hand": []}
        for _ in range(processes):  # interleaved: jobflow, hand, jobflow, hand, ...
            for impl in results:
                results[impl].append(_in_subprocess(impl, layers))
        rows += _rows(layers, results)
    return {
        "title": "First call of deep MLPs (trace + compile + first step)",
        "columns": [
            "layers",
            "implementation",
            "first call (s)",
            "vs hand-written",
            "CPU (s)",
            "CPU vs hand-written",
            "discovery (s)",
            "trace + lower (s)",
            "XLA compile (s)",
            "discovery share",
        ],
        "rows": rows,
        "notes": [
            f"MLP of N dense layers of width {WIDTH}, batch {BATCH}, Adam (PyTorch's form); each measurement "
            f"in a fresh process, {processes} per implementation (interleaved), medians; target at 128 "
            "layers: jobflow <= 1.2x hand-written.",
            "discovery: jobflow's abstract run of the body (jax.eval_shape) that finds the variables and "
            "the optimizer before the state exists; trace + lower: the step traced inside jax.jit and "
            "lowered; the rest of the first call: initializing variables and optimizer state, the step. "
            "CPU: user + system seconds of the process (all threads), steadier than wall time when other "
            "processes share the cores.",
        ],
    }


def section(scale) -> dict:
    """``python -m benchmarks --only first_call``."""
    mode = "quick" if scale.get("quick") else "full"
    return run(LAYERS[mode], PROCESSES[mode])


if __name__ == "__main__":
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(**json.loads(sys.argv[1]))
    print(json.dumps(result))

"""Measurements that need a fresh interpreter: ``python -m benchmarks._worker TASK 'JSON-ARGS'``.

Prints one JSON object (the result) as the last line of stdout.

Tasks:
  first_call  impl=jobflow|hand model=mlp|lenet: seconds from building the job (or the
              hand-written step and its parameters) to the first loss on the host, and the
              second call's time (compilation happens in the first).
  rss         impl=jobflow|hand model=mlp|lenet steps=N: peak resident set size (VmHWM) of
              a training run: ``first_call_peak_mib`` from after imports and data to the end
              of the first step (it compiles), ``train_peak_mib`` over the N steps after it
              (the peak is reset in between); ``rss_before_mib``: what imports and data held.
  accumulation batch=B n=N steps=S: the MLP at batch B with gradient_accumulation_steps(N):
              XLA's memory analysis of the compiled step, the peak resident set while
              training, and the time per optimizer step.
  accumulation_check batch=B n=N steps=S: max |difference| of every variable after S steps
              between batch B in one piece and B split into N micro-batches.
"""

import json
import resource
import sys
import time


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    hwm = _status_mib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _make(impl: str, model: str):
    from benchmarks import models

    if model == "mlp":
        batches = models.class_batches(4, models.MLP["batch"], (models.MLP["sizes"][0],))
        loop = models.JobLoop(models.mlp_job()) if impl == "jobflow" else models.HandMLP()
    elif model == "lenet":
        batches = models.class_batches(4, models.LENET["batch"], models.LENET["image"])
        loop = models.JobLoop(models.lenet_job()) if impl == "jobflow" else models.HandLeNet()
    else:
        raise ValueError(f"unknown model {model!r}")
    return loop, batches


def first_call(impl: str, model: str) -> dict:
    import jax  # noqa: F401  (imports are not part of the measurement)
    import numpy as np

    import jobflow  # noqa: F401
    from benchmarks import models

    data = models.class_batches(
        2,
        models.MLP["batch"] if model == "mlp" else models.LENET["batch"],
        (models.MLP["sizes"][0],) if model == "mlp" else models.LENET["image"],
    )
    start = time.perf_counter()
    loop, _ = _make(impl, model)
    np.asarray(loop.step(*data[0])).mean()  # the loss on the host
    first = time.perf_counter() - start
    start = time.perf_counter()
    np.asarray(loop.step(*data[1])).mean()
    second = time.perf_counter() - start
    return {"first_call_s": first, "second_call_s": second}


def rss(impl: str, model: str, steps: int) -> dict:
    import jax  # noqa: F401

    import jobflow  # noqa: F401

    loop, batches = _make(impl, model)
    before = _status_mib("VmRSS")
    reset = _reset_peak()
    loop.step(*batches[0])  # compiles
    loop.sync()
    first = _peak_mib()
    _reset_peak()
    for i in range(steps):
        loop.step(*batches[i % len(batches)])
    loop.sync()
    return {
        "rss_before_mib": before,
        "first_call_peak_mib": first,
        "train_peak_mib": _peak_mib(),
        "peak_reset": reset,
        "rss_after_mib": _status_mib("VmRSS"),
    }


def accumulation(batch: int, n: int, steps: int) -> dict:
    from benchmarks import models

    job = models.mlp_job(batch=batch, accumulation=n)
    batches = models.class_batches(2, batch, (models.MLP["sizes"][0],))
    job.compile()
    mem = job._last_program.compiled.memory_analysis()
    job(*batches[0])
    before = _status_mib("VmRSS")
    reset = _reset_peak()
    start = time.perf_counter()
    for i in range(steps):
        job(*batches[i % 2])
    step_s = (time.perf_counter() - start) / steps
    return {
        "temp_mib": mem.temp_size_in_bytes / 2**20,
        "argument_mib": mem.argument_size_in_bytes / 2**20,
        "rss_before_mib": before,
        "train_peak_mib": _peak_mib(),
        "peak_reset": reset,
        "step_s": step_s,
    }


def accumulation_check(batch: int, n: int, steps: int) -> dict:
    import numpy as np

    import jobflow as flow
    from benchmarks import models

    batches = models.class_batches(steps, batch, (models.MLP["sizes"][0],), seed=1)
    final = {}
    for micro in (1, n):
        flow.clear_default_session()
        job = models.mlp_job(batch=batch, accumulation=micro)
        for x, y in batches:
            job(x, y)
        final[micro] = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    diff = max(float(np.abs(final[1][k] - final[n][k]).max()) for k in final[1])
    scale = max(float(np.abs(final[1][k]).max()) for k in final[1] if k.endswith("-weight"))
    return {"max_abs_diff": diff, "max_abs_weight": scale}


TASKS = {
    "first_call": first_call,
    "rss": rss,
    "accumulation": accumulation,
    "accumulation_check": accumulation_check,
}


if __name__ == "__main__":
    task, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(TASKS[task](**args)))

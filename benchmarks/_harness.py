"""Measuring side by side: interleaved rounds, medians, fresh subprocesses, machine facts."""

import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def interleaved(contenders: dict, steps: int, rounds: int, batches, warmup: int = 3) -> dict:
    """Times ``contenders`` (name -> loop object with ``step(x, y)`` and ``sync()``) in
    interleaved rounds: each round runs every contender for ``steps`` steps (the order
    rotates between rounds so none always goes first) and records its time per step.

    A loop whose calls each run several steps says so in ``steps_per_call``; it makes
    ``steps / steps_per_call`` calls (at least one) per round.

    Returns ``{name: [seconds per step, one per round]}``.
    """
    names = list(contenders)
    for name in names:
        loop = contenders[name]
        for i in range(warmup):
            loop.step(*batches[i % len(batches)])
        loop.sync()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            loop = contenders[name]
            per_call = getattr(loop, "steps_per_call", 1)
            calls = max(1, steps // per_call)
            start = time.perf_counter()
            for i in range(calls):
                loop.step(*batches[i % len(batches)])
            loop.sync()
            times[name].append((time.perf_counter() - start) / (calls * per_call))
    return times


def median(values) -> float:
    return float(statistics.median(values))


def ratio(times: dict, a: str, b: str) -> float:
    """The median over rounds of ``a``'s time / ``b``'s time in the same round."""
    return median([x / y for x, y in zip(times[a], times[b])])


def spread(values) -> float:
    """Relative spread of the rounds: (p75 - p25) / median."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return (q[2] - q[0]) / q[1] if q[1] else 0.0


def run_worker(task: str, env: dict | None = None, timeout: float = 600, **kwargs) -> dict:
    """Runs ``benchmarks._worker <task>`` in a fresh interpreter; returns its JSON result."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "benchmarks._worker", task, json.dumps(kwargs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"worker {task} {kwargs} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    """What the numbers were measured on."""
    import jax

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def load_average() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None

"""The benchmark sections. Each returns ``{"title", "columns", "rows", "notes"}``; rows are
dicts keyed by column (numbers stay numbers: the JSON keeps them, the table formats them)."""

import tempfile
import time
import warnings

import numpy as np

import jobflow as flow
from benchmarks import _harness as h
from benchmarks import checkpoint_io, first_call, models, overhead, precision, transformer
from benchmarks.cnn import cnn as cnn  # the conv-net section (benchmarks/cnn.py)
from benchmarks.wide_deep import wide_deep as wide_deep  # the "wide_deep" section (issue #15)

HAND = "JAX + optax (jax.jit, donated)"


def _fresh():
    flow.clear_default_session()
    flow.config.seed(0)


def _first_losses(loop, batches, n=3):
    return [float(np.asarray(loop.step(*batches[i]))) for i in range(n)]


# ------------------------------------------------------------------------ train step time


def mlp_loops(amp: str, device: str, notes: list) -> dict:
    """The MLP's contenders under ``--amp`` / ``--device``, all from the jobflow job's initial
    variables (so their first losses must agree: the same model and optimizer)."""
    _fresh()
    job = models.mlp_job(amp=amp)
    job.compile()
    init = models.mlp_init(flow.get_all_variables())
    loops = {
        "jobflow": models.JobLoop(job),
        HAND: models.HandMLP(init, amp=amp),
        "JAX + optax, (in, out) weights": models.HandMLP(init, layout="jax", amp=amp),
    }
    try:
        loops[f"PyTorch eager ({device.upper()})"] = models.TorchMLP(init, amp=amp, device=device)
    except ImportError:
        notes.append("PyTorch is not installed: its row is missing.")
    return loops


def train_step(scale) -> dict:
    """Train-step time per model: jobflow vs hand-written JAX + optax (and PyTorch eager for
    the MLP), in ``scale["amp"]``'s precision on ``scale["device"]``. Every loop feeds numpy
    batches and reads the loss on the host each step."""
    amp, device = scale.get("amp", "off"), scale.get("device", "cpu")
    notes = [precision.note(amp, device)]
    mlp_batches = models.class_batches(8, models.MLP["batch"], (models.MLP["sizes"][0],))
    loops = mlp_loops(amp, device, notes)
    first = {name: _first_losses(loop, mlp_batches) for name, loop in loops.items()}
    times = h.interleaved(loops, scale["mlp_steps"], scale["rounds"], mlp_batches)
    rows = _rows("MLP", times, first, HAND)

    _fresh()
    lenet_batches = models.class_batches(4, models.LENET["batch"], models.LENET["image"])
    loops = {"jobflow": models.JobLoop(models.lenet_job(amp=amp)), HAND: models.HandLeNet(amp=amp)}
    times = h.interleaved(loops, scale["lenet_steps"], scale["rounds"], lenet_batches)
    rows += _rows("LeNet", times, None, HAND)
    notes.append(
        "MLP: 784-1024-1024-10, batch 256, Adam. LeNet: examples/lenet.py on 1x28x28, batch 100, "
        "SGD momentum 0.9, cosine schedule with warmup, clipping."
    )
    notes.append(
        "ms/step: median over interleaved rounds; 'vs hand-written': median of per-round ratios "
        "(target <= 1.03); spread: interquartile range of the rounds / median."
    )
    notes.append(
        "The hand-written MLP keeps jobflow's weight layout, (out, in) with x @ W.T as OneFlow's dense "
        "(the same model); the '(in, out) weights' row shows what XLA makes of the usual layout."
    )
    notes.append(
        "MLP 'first losses': max |loss - jobflow's loss| over the first 3 steps from the same "
        "initial weights (same model, same optimizer). LeNet's dropout masks differ, so no check."
    )
    return {
        "title": f"Train step ({precision.label(amp, device)})",
        "columns": ["model", "implementation", "ms/step", "vs hand-written", "spread", "first losses"],
        "rows": rows,
        "notes": notes,
    }


def _rows(model, times, first, reference):
    rows = []
    for name, values in times.items():
        check = None
        if first is not None:
            check = max(abs(a - b) for a, b in zip(first[name], first["jobflow"]))
        rows.append(
            {
                "model": model,
                "implementation": name,
                "ms/step": h.median(values) * 1e3,
                "vs hand-written": h.ratio(times, name, reference),
                "spread": h.spread(values),
                "first losses": check,
            }
        )
    return rows


# ---------------------------------------------------------------------- per-call overhead


def per_call(scale) -> dict:
    """Per-call time of the tiny job (dense 32->1, batch 8, SGD momentum, mean loss read on
    the host): jobflow vs the same step as a hand-written ``jax.jit`` call."""
    _fresh()
    batches = models.regression_batches(8, models.TINY["batch"], models.TINY["dim"])
    job = models.tiny_job()
    loops = {
        "jobflow": models.JobLoop(job),
        "jax.jit by hand": models.HandTiny(),
        "jobflow's compiled step, called directly": models.CompiledStep(job, batches[0]),
    }
    times = h.interleaved(loops, scale["tiny_steps"], scale["tiny_rounds"], batches, warmup=50)
    job, hand = h.median(times["jobflow"]), h.median(times["jax.jit by hand"])
    rows = [
        {
            "implementation": name,
            "us/call": h.median(v) * 1e6,
            "vs hand-written": h.ratio(times, name, "jax.jit by hand"),
            "spread": h.spread(v),
        }
        for name, v in times.items()
    ]
    rows.append({"implementation": "jobflow - hand-written (us)", "us/call": (job - hand) * 1e6})
    return {
        "title": "Per-call overhead (tiny job)",
        "columns": ["implementation", "us/call", "vs hand-written", "spread"],
        "rows": rows,
        "notes": [
            "Target: jobflow / hand-written <= 1.3. All feed numpy and read the loss each call; ratios are "
            "medians of per-round ratios.",
            "'called directly': jobflow's XLA program (with the step counter and the packed last_info "
            "scalars) called without jobflow's Python call path: the difference to the hand-written call "
            "is the extra work inside the program, the rest is the call path.",
        ],
    }


# ------------------------------------------------------------------- several steps per call


def _workloads(scale, lenet=False) -> list:
    """``(label, make_job, batches, steps per round, rounds)`` of the tiny job, the MLP and
    (``lenet``) the LeNet; LeNet runs K steps a round for at most 3 rounds."""
    out = [
        (
            "tiny",
            models.tiny_job,
            models.regression_batches(8, models.TINY["batch"], models.TINY["dim"]),
            scale["tiny_steps"],
            scale["tiny_rounds"],
        ),
        (
            "MLP",
            models.mlp_job,
            models.class_batches(8, models.MLP["batch"], (models.MLP["sizes"][0],)),
            scale["mlp_steps"],
            scale["rounds"],
        ),
    ]
    if lenet:
        out.append(
            (
                "LeNet",
                models.lenet_job,
                models.class_batches(4, models.LENET["batch"], models.LENET["image"]),
                scale["run_steps_k_lenet"],
                min(3, scale["rounds"]),
            )
        )
    return out


def run_steps(scale) -> dict:
    """K steps per call (``job.run_steps`` over stacked batches) vs K single calls."""
    rows = []
    ks = {
        "tiny": scale["run_steps_k_tiny"],
        "MLP": scale["run_steps_k_mlp"],
        "LeNet": scale["run_steps_k_lenet"],
    }
    for label, make, batches, steps, rounds in _workloads(scale, lenet=True):
        k = ks[label]
        _fresh()
        job = make()
        stacked = models.StackedLoop(job, batches, k)
        times = h.interleaved(
            {"single": models.JobLoop(job), "stacked": stacked}, max(steps, k), rounds, batches, warmup=1
        )
        single, per_step = h.median(times["single"]), h.median(times["stacked"])
        rows.append(
            {
                "job": label,
                "K": k,
                "single call (us/step)": single * 1e6,
                "run_steps (us/step)": per_step * 1e6,
                "speed-up": h.ratio(times, "single", "stacked"),
            }
        )
    return {
        "title": "Several steps per call",
        "columns": ["job", "K", "single call (us/step)", "run_steps (us/step)", "speed-up"],
        "rows": rows,
        "notes": [
            "Both read the losses on the host (one array of K losses per run_steps call). For dense models "
            "the state after run_steps is bitwise that of K single calls (tests/test_run_steps.py).",
            "LeNet: XLA's CPU backend (jax 0.10) runs convolutions inside a loop without its fast "
            "convolution kernels, so on the CPU run_steps of a conv net is compiled unrolled up to K = 8 "
            "(runtime/steps.py), at about the speed of single calls (and agrees "
            "with them to float rounding).",
        ],
    }


# -------------------------------------------------------------------- non-blocking loops


def async_loops(scale) -> dict:
    """A loop that does not read results (no annotation: futures; ``tp.Callback``) vs one
    that blocks on every call (``tp.Numpy``), and how long a call takes to return."""
    rows = []
    for label, make, batches, steps, rounds in _workloads(scale):
        _fresh()
        loops = {
            mode: models.JobLoop(make(name=f"{label.lower()}_{mode}", returns=ann), mode)
            for mode, ann in models.RETURNS.items()
        }
        times = h.interleaved(loops, steps, rounds, batches)
        returns = _call_return_time(loops["future"], batches, steps)
        blocking = h.median(times["numpy"])
        for mode, values in times.items():
            rows.append(
                {
                    "job": label,
                    "loop": {
                        "numpy": "blocking (-> tp.Numpy)",
                        "future": "futures, not read",
                        "callback": "tp.Callback",
                    }[mode],
                    "us/step": h.median(values) * 1e6,
                    "gain": blocking / h.median(values),
                    "call returns after (us)": returns if mode == "future" else None,
                }
            )
    return {
        "title": "Non-blocking loops",
        "columns": ["job", "loop", "us/step", "gain", "call returns after (us)"],
        "rows": rows,
        "notes": [
            "gain: blocking time per step / this loop's. 'call returns after': mean time for "
            "a call of the non-blocking loop to return; far below us/step means the call does "
            "not wait for the device.",
            "tp.Callback hands every result to a worker thread: on 2 cores that costs more than a tiny "
            "step saves. On the CPU the device is the same cores, so compute-bound steps gain little.",
        ],
    }


def _call_return_time(loop, batches, steps) -> float:
    loop.sync()
    spent = 0.0
    for i in range(steps):
        start = time.perf_counter()
        loop.step(*batches[i % len(batches)])
        spent += time.perf_counter() - start
    loop.sync()
    return spent / steps * 1e6


# ----------------------------------------------------------------------- subprocess ones


def compile_time(scale) -> dict:
    rows = []
    for model in ("mlp", "lenet"):
        results = {
            impl: [h.run_worker("first_call", impl=impl, model=model) for _ in range(scale["processes"])]
            for impl in ("jobflow", "hand")
        }
        first = {impl: h.median([r["first_call_s"] for r in rs]) for impl, rs in results.items()}
        for impl, rs in results.items():
            rows.append(
                {
                    "model": model,
                    "implementation": impl,
                    "first call (s)": first[impl],
                    "second call (ms)": h.median([r["second_call_s"] for r in rs]) * 1e3,
                    "vs hand-written": first[impl] / first["hand"],
                }
            )
    return {
        "title": "Compile time (first call)",
        "columns": ["model", "implementation", "first call (s)", "second call (ms)", "vs hand-written"],
        "rows": rows,
        "notes": [
            "From building the job (hand-written: its parameters and jitted step) to the first loss on "
            "the host, in a fresh process, median of processes. jobflow's includes discovering the "
            "body, initializing the variables and the optimizer slots."
        ],
    }


def peak_memory(scale) -> dict:
    rows = []
    for model in ("mlp", "lenet"):
        results = {
            impl: h.run_worker("rss", impl=impl, model=model, steps=scale["rss_steps"])
            for impl in ("jobflow", "hand")
        }
        for impl, r in results.items():
            rows.append(
                {
                    "model": model,
                    "implementation": impl,
                    "peak of the first call (MiB)": r["first_call_peak_mib"],
                    "peak while training (MiB)": r["train_peak_mib"],
                    "vs hand-written": r["train_peak_mib"] / results["hand"]["train_peak_mib"],
                }
            )
    return {
        "title": "Peak memory (resident set) of a training run",
        "columns": [
            "model",
            "implementation",
            "peak of the first call (MiB)",
            "peak while training (MiB)",
            "vs hand-written",
        ],
        "rows": rows,
        "notes": [
            "Each run in its own process. The peak (VmHWM) is reset after imports and data: "
            "'first call' is the peak up to the end of the first step (tracing, compiling, "
            "initializing); then it is reset again and the loop trains, reading the loss each "
            "step ('while training', the ratio's basis)."
        ],
    }


def accumulation(scale) -> dict:
    """The MLP with its batch in one piece, the same batch accumulated over micro-batches, and
    one micro-batch alone: XLA's temporaries and the peak resident set (own processes), and
    the time per optimizer step (in-process, interleaved)."""
    batch, n = scale["acc_batch"], scale["acc_n"]
    variants = {
        f"batch {batch}": (batch, 1),
        f"batch {batch} as {n} x {batch // n}": (batch, n),
        f"batch {batch // n}": (batch // n, 1),
    }
    memory = {
        label: h.run_worker("accumulation", batch=b, n=micro, steps=scale["acc_steps"])
        for label, (b, micro) in variants.items()
    }
    _fresh()
    loops = {
        label: models.OwnBatches(
            models.JobLoop(models.mlp_job(name=f"mlp_{b}_{micro}", batch=b, accumulation=micro)),
            models.class_batches(2, b, (models.MLP["sizes"][0],)),
        )
        for label, (b, micro) in variants.items()
    }
    times = h.interleaved(loops, scale["acc_steps"], scale["rounds"], [()])
    rows = [
        {
            "MLP step": label,
            "XLA temporaries (MiB)": memory[label]["temp_mib"],
            "peak while training (MiB)": memory[label]["train_peak_mib"],
            "ms/optimizer step": h.median(times[label]) * 1e3,
        }
        for label in variants
    ]
    check = h.run_worker("accumulation_check", batch=batch, n=n, steps=3)
    return {
        "title": "Gradient accumulation memory",
        "columns": ["MLP step", "XLA temporaries (MiB)", "peak while training (MiB)", "ms/optimizer step"],
        "rows": rows,
        "notes": [
            "XLA temporaries: the compiled step's own buffers (activations, gradients, the accumulator) from "
            "XLA's memory analysis; peak: VmHWM of a training process, reset after imports and data.",
            f"After 3 optimizer steps the accumulated run's variables differ from the one-piece batch by "
            f"at most "
            f"{check['max_abs_diff']:.2e} (weights up to {check['max_abs_weight']:.2f}): float rounding.",
        ],
    }


def sharding(scale) -> dict:
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "sharding.json")
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(h.ROOT), os.environ.get("PYTHONPATH")]))
        )
        cmd = [
            sys.executable,
            str(h.ROOT / "benchmarks" / "sharding_memory.py"),
            "--json",
            out,
            *scale["sharding_args"],
        ]
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=h.ROOT, timeout=900)
        with open(out) as f:
            result = json.load(f)
    return {
        "title": "Sharded state (ZeRO switches, split embedding tables): memory per device",
        "columns": list(result["rows"][0]),
        "rows": result["rows"],
        "notes": [result["setup"]],
    }


# ------------------------------------------------------------------------------ summaries


def _summary_rows(model: str, make_job, batches, steps: int, rounds: int) -> list:
    """Rows of one model: the job with and without per-step summaries, for a loop that
    reads the loss each step and one that never waits."""
    rows = []
    for mode in ("numpy", "future"):
        _fresh()
        with tempfile.TemporaryDirectory() as logdir:
            returns = models.RETURNS[mode]
            loops = {
                "no summaries": models.JobLoop(make_job(name=f"plain_{mode}", returns=returns)),
                "summary every step": models.JobLoop(
                    make_job(name=f"summary_{mode}", returns=returns, summary=logdir)
                ),
            }
            times = h.interleaved(loops, steps, rounds, batches)
            flow.sync_default_session()
        base = h.median(times["no summaries"])
        for name, t in times.items():
            rows.append(
                {
                    "model": model,
                    "loop": "reads the loss" if mode == "numpy" else "never waits",
                    "job": name,
                    "ms/step": 1e3 * h.median(t),
                    "vs no summaries": h.ratio(times, name, "no summaries"),
                    "us/step added": 1e6 * (h.median(t) - base),
                    "spread": h.spread(t),
                }
            )
    return rows


def summary_overhead(scale) -> dict:
    """Train-step time with ``function_config().summary(logdir)`` (every step's loss, lr,
    loss scale, ... written to TensorBoard) vs the same job without: the MLP (the target)
    and the tiny job (where the host cost per step shows in microseconds)."""
    rounds = 2 * scale["rounds"] + 1
    mlp_batches = models.class_batches(8, models.MLP["batch"], (models.MLP["sizes"][0],))
    tiny_batches = models.regression_batches(8, models.TINY["batch"], models.TINY["dim"])
    rows = _summary_rows("MLP", models.mlp_job, mlp_batches, 2 * scale["mlp_steps"], rounds)
    rows += _summary_rows("tiny", models.tiny_job, tiny_batches, scale["tiny_steps"], rounds)
    return {
        "title": "Per-step TensorBoard summaries",
        "columns": ["model", "loop", "job", "ms/step", "vs no summaries", "us/step added", "spread"],
        "rows": rows,
        "notes": [
            "function_config().summary(logdir): each step's packed info written once its step has "
            "finished (no device sync per call); target for the MLP <= 1.03.",
            f"{rounds} interleaved rounds; ratio: median of per-round ratios; us/step added: "
            "difference of the medians.",
        ],
    }


# ------------------------------------------------- sections in their own files (issue 15)

# name -> section(scale); each module's section reads scale["quick"] for its smoke sizes
OWN_FILES = {
    "transformer": transformer.section,
    "first_call": first_call.section,
    "overhead": overhead.section,
    "checkpoint_io": checkpoint_io.section,
}


def capture_warnings(fn, scale):
    """Runs a section and records every warning (a donation warning would show here)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(scale)
    result["warnings"] = sorted({str(w.message)[:200] for w in caught})
    return result

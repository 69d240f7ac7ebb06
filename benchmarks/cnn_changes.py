"""Each change of issue 15 measured on its own: the LeNet (or ResNet-18-style) train job
traced and compiled with each switch of ``jobflow/_src/ops/lowering.py`` and
``jobflow/_src/runtime/xla_options.py`` turned off in turn, next to
hand-written JAX (NHWC, reshape pooling) and PyTorch eager, interleaved in one process.

    python benchmarks/cnn_changes.py [--model lenet|resnet] [--rounds 9] [--one-thread]

Reports the median wall time and the median process CPU time per step, and ratios of
per-round medians. ``--one-thread`` runs XLA (``--xla_cpu_multi_thread_eigen=false``) and
PyTorch (``torch.set_num_threads(1)``) on one thread each: on a shared machine the CPU
time of one thread is the work a step does, while wall times (and the CPU time of
PyTorch's spinning worker threads) depend on what else runs.
"""

import argparse
import os
import sys
import time


def _measure(loops, batches, steps, rounds):
    for loop in loops.values():
        loop.step(*batches[0])
        loop.sync()
    wall = {n: [] for n in loops}
    cpu = {n: [] for n in loops}
    names = list(loops)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            loop = loops[name]
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(steps):
                loop.step(*batches[i % len(batches)])
            loop.sync()
            wall[name].append((time.perf_counter() - t0) / steps)
            cpu[name].append((time.process_time() - c0) / steps)
    return wall, cpu


def _loops(model, combos):
    import numpy as np

    import jobflow as flow
    from benchmarks import cnn, models
    from jobflow._src.ops import lowering
    from jobflow._src.runtime import xla_options

    flow.clear_default_session()
    flow.config.seed(0)
    if model == "lenet":
        batches = models.class_batches(4, models.LENET["batch"], models.LENET["image"])
    else:
        batches = models.class_batches(2, cnn.RESNET["batch"], cnn.RESNET["image"])
    loops = {}
    for name, (conv, pool, eigen) in combos.items():
        lowering.ENABLED.update(channels_last_conv=conv, block_pool=pool)
        xla_options.ENABLED.update(eigen_cpu_conv=eigen)
        job = (
            models.lenet_job(f"lenet_{len(loops)}")
            if model == "lenet"
            else cnn.resnet_job(f"resnet_{len(loops)}")
        )
        job(*batches[0])  # traced now, with these switches
        loops[name] = models.JobLoop(job)
    lowering.ENABLED.update(channels_last_conv=False, block_pool=True)
    xla_options.ENABLED.update(eigen_cpu_conv=True)
    if model == "lenet":
        loops["JAX NHWC by hand"] = cnn.HandLeNetNHWC()
        loops["PyTorch eager"] = cnn.torch_lenet_loop()
    else:
        variables = {k: np.array(v) for k, v in flow.get_all_variables().items()}
        loops["JAX NHWC by hand"] = cnn.HandResNet(variables)
        loops["PyTorch eager"] = cnn.TorchLoop(cnn.torch_resnet(variables), cnn.RESNET["lr"])
    return loops, batches


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=("lenet", "resnet"), default="lenet")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--one-thread", action="store_true")
    args = parser.parse_args(argv)
    if args.one_thread:  # before jax is imported
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        ).strip()
        import torch

        torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks import _harness as h

    combos = {  # (channels-last conv, block pools, Eigen convs)
        "jobflow (default)": (False, True, True),
        "jobflow, YNNPACK convs (XLA's default)": (False, True, False),
        "jobflow, reduce_window pools": (False, False, True),
        "jobflow, channels-last conv": (True, True, True),
    }
    if args.model == "resnet":  # no pools to tile
        del combos["jobflow, reduce_window pools"]
    loops, batches = _loops(args.model, combos)
    before = os.getloadavg()
    wall, cpu = _measure(loops, batches, 3 if args.model == "lenet" else 1, args.rounds)
    print(
        f"{args.model}, {'one thread' if args.one_thread else 'default threads'}, load {before} -> {os.getloadavg()}"
    )
    ref = "PyTorch eager"
    print(f"{'':40s} {'wall ms':>8s} {'vs torch':>8s} {'CPU ms':>8s} {'vs torch':>8s} {'spread':>6s}")
    for name in loops:
        print(
            f"{name:40s} {h.median(wall[name]) * 1e3:8.1f} {h.ratio(wall, name, ref):8.3f} "
            f"{h.median(cpu[name]) * 1e3:8.1f} {h.ratio(cpu, name, ref):8.3f} {h.spread(cpu[name]):6.2f}"
        )


if __name__ == "__main__":
    main()

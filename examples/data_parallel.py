"""LeNet (examples/lenet.py) trained data-parallel on 4 devices, with the device layout printed.

The job body is the one of examples/lenet.py inside ``flow.scope.placement`` (OneFlow's
idiom). Each global batch of 64 is split into 16 images per device, the weights are
replicated, and XLA all-reduces the gradients. With ``--shard-optimizer-state`` each
device keeps only its piece of the momentum buffers. Without GPUs the devices are CPU
devices that JAX fakes on this machine, which is slower than one device but shows the
same program.

    python examples/data_parallel.py                             # 4 GPUs, else 4 CPU devices
    python examples/data_parallel.py --devices 8 --shard-optimizer-state
    jobflow launch -n 2 --cpu-devices 2 examples/data_parallel.py   # 2 processes x 2 devices
"""

import argparse
import os
import sys
import time

import jax
import numpy as np
from rich.console import Console
from rich.table import Column, Table

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lenet import lenet, load_digits, load_mnist


def device_placement(total: int):
    """``total`` devices split evenly over the processes: GPUs when there are enough, else CPUs."""
    world = flow.env.get_world_size()
    if total % world:
        raise SystemExit(f"--devices {total} does not split evenly over {world} processes")
    per_process = total // world
    tag = "gpu" if _local_count("gpu") >= per_process else "cpu"
    return flow.scope.placement(tag, [f"{p}:0-{per_process - 1}" for p in range(world)])


def _local_count(platform: str) -> int:
    try:
        return len(jax.local_devices(backend=platform))
    except RuntimeError:
        return 0


def build_jobs(placement, image_shape, batch_size, total_steps, base_lr, shard_optimizer_state):
    cfg = flow.function_config().shard_optimizer_state(shard_optimizer_state)

    @flow.global_function(type="train", function_config=cfg)
    def train_job(
        images: tp.Numpy.Placeholder((batch_size, *image_shape), dtype=flow.float),
        labels: tp.Numpy.Placeholder((batch_size,), dtype=flow.int32),
    ) -> tp.Numpy:
        with placement:
            logits = lenet(images, train=True)
            loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        sched = flow.optimizer.CosineScheduler(
            base_lr=base_lr, steps=total_steps, warmup=flow.optimizer.warmup.linear(total_steps // 20, 0)
        )
        flow.optimizer.SGD(
            sched, momentum=0.9, grad_clipping=flow.optimizer.grad_clipping.by_global_norm(5.0)
        ).minimize(loss)
        return loss

    @flow.global_function(type="predict")
    def eval_job(images: tp.Numpy.Placeholder((batch_size, *image_shape), dtype=flow.float)) -> tp.Numpy:
        with placement:
            return lenet(images, train=False)

    return train_job, eval_job


def _layout(sharding, shape) -> tuple[str, str]:
    """('split along axis 0' | 'replicated', the shape each device holds)."""
    spec = tuple(sharding.spec)
    axes = [i for i, a in enumerate(spec) if a is not None]
    piece = sharding.shard_shape(tuple(shape))
    how = f"split along axis {axes[0]}" if axes else "replicated"
    return how, "x".join(map(str, piece)) or "scalar"


def print_layout(console, job, batch_shapes):
    """A table of where the job's inputs and state live."""
    devices = job.devices
    console.print(
        f"[bold]{job.name}[/] runs on {len(devices)} devices: "
        + ", ".join(f"{d.platform}:{d.id} (process {d.process_index})" for d in devices)
    )
    table = Table("global shape", "layout", "per device")
    table.columns.insert(0, Column("array", overflow="fold"))
    for name, shape in batch_shapes.items():
        table.add_row(f"input {name}", "x".join(map(str, shape)), *_layout(job.input_shardings[name], shape))
    store = session_impl.default_session().store
    for name, sharding in sorted(job.state_shardings.items()):
        shape = store[name].shape
        table.add_row(name, "x".join(map(str, shape)) or "scalar", *_layout(sharding, shape))
    console.print(table)


def accuracy(eval_job, x, y, batch_size):
    """Test accuracy; the last batch is padded to the job's batch size and the padding dropped."""
    correct = 0
    for i in range(0, len(y), batch_size):
        xb = x[i : i + batch_size]
        pad = batch_size - len(xb)
        logits = eval_job(np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)]) if pad else xb)
        correct += int((logits[: len(xb)].argmax(1) == y[i : i + batch_size]).sum())
    return correct / len(y)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=4, help="devices in total, over all processes")
    parser.add_argument("--mnist", help="directory with the MNIST IDX files (default: sklearn digits)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch, split over the devices")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shard-optimizer-state",
        action="store_true",
        help="split the momentum buffers across the devices (ZeRO-1)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(argv)
    console = Console()
    flow.env.init()  # several processes when started by `jobflow launch`
    placement = device_placement(args.devices)
    if args.batch_size % args.devices:
        raise SystemExit(f"--batch-size {args.batch_size} must divide by --devices {args.devices}")

    (xtr, ytr), (xte, yte) = load_mnist(args.mnist) if args.mnist else load_digits(args.seed)
    flow.config.seed(args.seed)
    steps_per_epoch = len(ytr) // args.batch_size  # whole global batches only
    train_job, eval_job = build_jobs(
        placement,
        xtr.shape[1:],
        args.batch_size,
        args.epochs * steps_per_epoch,
        args.lr,
        args.shard_optimizer_state,
    )
    train_job.compile()
    print_layout(
        console, train_job, {"images": (args.batch_size, *xtr.shape[1:]), "labels": (args.batch_size,)}
    )

    rng = np.random.default_rng(args.seed)  # the same order in every process
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(ytr))
        losses = [
            train_job(xtr[b], ytr[b]).mean()
            for b in np.split(order[: steps_per_epoch * args.batch_size], steps_per_epoch)
        ]
        console.print(f"epoch {epoch + 1}: mean loss {np.mean(losses):.4f}  lr {train_job.last_lr:.4f}")
    train_time = time.perf_counter() - start

    acc = accuracy(eval_job, xte, yte, args.batch_size)
    console.print(
        f"trained {args.epochs * steps_per_epoch} steps on {len(train_job.devices)} devices "
        f"in {train_time:.1f} s"
    )
    console.print(f"[bold green]test accuracy: {acc:.2%}[/]")
    return acc


if __name__ == "__main__":
    if "JAX_NUM_CPU_DEVICES" not in os.environ:  # fake CPU devices (before JAX starts); GPUs are unaffected
        flow.config.cpu_device_num(parse_args().devices)
    sys.exit(0 if main() >= 0.9 else 1)

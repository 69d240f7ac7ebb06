"""LeNet trained by a jobflow train job, evaluated by a predict job that shares its weights.

Data: scikit-learn's bundled handwritten digits (8x8, no download), or MNIST when
``--mnist DIR`` points at the four IDX files (``train-images-idx3-ubyte[.gz]`` ...).

    python examples/lenet.py                 # digits, about 20 s on 2 CPU cores
    python examples/lenet.py --mnist ~/mnist --epochs 2
    python examples/lenet.py --save lenet_ckpt          # checkpoint (a directory) after every epoch
    python examples/lenet.py --resume lenet_ckpt --save lenet_ckpt
    python examples/lenet.py --logdir runs/   # TensorBoard curves: tensorboard --logdir runs/
                                              # or in the terminal: jobflow summary runs/

``--resume`` continues an interrupted run exactly where its last checkpoint left it (pass
the same --epochs, --batch-size, --lr and --seed): the checkpoint holds the weights, the
momentum, the step counter that drives the schedule and the dropout RNG, and the batches
already trained are skipped, so the result is bitwise the same as an uninterrupted run.
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
from rich.console import Console

import jobflow as flow
import jobflow.typing as tp


def load_digits(seed: int):
    """sklearn's digits as (N, 1, 8, 8) float32 in [0, 1], split 80/20."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int32)
    idx = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    return (x[idx[:cut]], y[idx[:cut]]), (x[idx[cut:]], y[idx[cut:]])


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(directory: str):
    """MNIST from IDX files as (N, 1, 28, 28) float32 in [0, 1]."""

    def find(stem):
        for name in (stem, stem + ".gz"):
            p = os.path.join(directory, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"--mnist {directory}: no {stem}[.gz] there")

    def images(stem):
        return (_read_idx(find(stem)) / 255.0).astype(np.float32)[:, None]

    def labels(stem):
        return _read_idx(find(stem)).astype(np.int32)

    return (
        (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")),
        (images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")),
    )


def lenet(images, train: bool):
    """The LeNet of OneFlow's quick start (conv-pool-conv-pool-dense-dropout-dense)."""
    init = flow.truncated_normal(0.1)
    h = flow.layers.conv2d(
        images, 32, 5, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv1"
    )
    h = flow.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")
    h = flow.layers.conv2d(
        h, 64, 5, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv2"
    )
    h = flow.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")
    h = flow.reshape(h, [h.shape[0], -1])
    h = flow.layers.dense(h, 512, activation=flow.nn.relu, kernel_initializer=init, name="dense1")
    if train:
        h = flow.nn.dropout(h, rate=0.5)
    return flow.layers.dense(h, 10, kernel_initializer=init, name="dense2")


def build_jobs(
    image_shape, total_steps: int, base_lr: float, logdir=None, config=None, loss_scale_policy=None
):
    """The train and eval jobs; ``config`` (a ``flow.function_config()``, e.g. with AMP) and
    ``loss_scale_policy`` (the optimizer's) are for ``python -m benchmarks --amp``."""
    shape = (None, *image_shape)  # None: the last, smaller batch compiles once more
    config = config if config is not None else flow.function_config()
    if logdir:  # loss, lr, gradient norm, ... of every step as TensorBoard curves
        config.summary(logdir)

    @flow.global_function(type="train", function_config=config)
    def train_job(
        images: tp.Numpy.Placeholder(shape, dtype=flow.float),
        labels: tp.Numpy.Placeholder((None,), dtype=flow.int32),
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, lenet(images, train=True))
        sched = flow.optimizer.CosineScheduler(
            base_lr=base_lr,
            steps=total_steps,
            warmup=flow.optimizer.warmup.linear(max(1, total_steps // 20), 0),
        )
        flow.optimizer.SGD(
            sched,
            momentum=0.9,
            grad_clipping=flow.optimizer.grad_clipping.by_global_norm(5.0),
            loss_scale_policy=loss_scale_policy,
        ).minimize(loss)
        return loss

    @flow.global_function(type="predict")
    def eval_job(images: tp.Numpy.Placeholder(shape, dtype=flow.float)) -> tp.Numpy:
        return lenet(images, train=False)  # same variable names: shares train_job's weights

    return train_job, eval_job


def accuracy(eval_job, x, y, batch_size):
    correct = 0
    for i in range(0, len(y), batch_size):
        logits = eval_job(x[i : i + batch_size])
        correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
    return correct / len(y)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mnist", help="directory with the MNIST IDX files (default: sklearn digits)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save", metavar="PATH", help="save a checkpoint to PATH after every epoch (replacing it)"
    )
    parser.add_argument(
        "--resume", metavar="PATH", help="load the checkpoint PATH and continue from its step"
    )
    parser.add_argument("--logdir", help="write TensorBoard curves of every train step there")
    args = parser.parse_args(argv)
    console = Console()

    (xtr, ytr), (xte, yte) = load_mnist(args.mnist) if args.mnist else load_digits(args.seed)
    console.print(f"data: {len(ytr)} train / {len(yte)} test images of shape {xtr.shape[1:]}")
    flow.config.seed(args.seed)
    steps_per_epoch = -(-len(ytr) // args.batch_size)
    train_job, eval_job = build_jobs(xtr.shape[1:], args.epochs * steps_per_epoch, args.lr, args.logdir)

    done = 0
    if args.resume:
        train_job.compile(xtr[: args.batch_size], ytr[: args.batch_size])  # creates its variables
        flow.checkpoint.load(args.resume)
        done = flow.checkpoint.describe(args.resume).step_counters["train_job"]
        console.print(f"resumed from {args.resume} at step {done}")

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    total = args.epochs * steps_per_epoch
    with flow.progress(train_job, total=total, completed=done, console=console) as bar:
        for epoch in range(args.epochs):
            order = rng.permutation(len(ytr))  # drawn for every epoch, so a resumed run sees the same order
            for step, i in enumerate(range(0, len(ytr), args.batch_size), start=epoch * steps_per_epoch):
                if step < done:
                    continue
                batch = order[i : i + args.batch_size]
                train_job(xtr[batch], ytr[batch])
                bar.update(description=f"epoch {epoch + 1}")
            if args.save and (epoch + 1) * steps_per_epoch > done:
                flow.checkpoint.save(args.save, overwrite=True)  # atomic: a crash keeps the previous one
    train_time = time.perf_counter() - start

    acc = accuracy(eval_job, xte, yte, args.batch_size)
    console.print(
        f"trained {args.epochs * steps_per_epoch - done} steps in {train_time:.1f} s "
        f"(train job compiled {train_job.num_traces}x, one per batch size)"
    )
    console.print(f"[bold green]test accuracy: {acc:.2%}[/]")
    if args.logdir:
        flow.sync_default_session()  # writes the last steps' curves
        console.print(
            f"curves in {args.logdir}: tensorboard --logdir {args.logdir}, or jobflow summary {args.logdir}"
        )
    return acc


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.9 else 1)

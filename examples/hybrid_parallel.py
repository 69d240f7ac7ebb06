"""A Wide & Deep click model trained hybrid-parallel on N devices, with its layout printed.

Data parallel and model parallel in one job, as OneFlow's hybrid-parallel tutorial and its
Wide & Deep model do it:

* the batch is split over the devices (data parallelism);
* the embedding tables (``wide``: one weight per id, ``deep``: a vector per id) are split
  by rows over the devices with ``get_variable(distribute=flow.distribute.split(0))``
  and looked up with ``flow.gather``; each device keeps a 1/N of every table and of its
  LazyAdam moments (model parallelism);
* the deep tower's wide hidden layer is split by output units with
  ``layers.dense(model_distribute=flow.distribute.split(axis=0))``.

The numbers are those of the same job on one device (XLA inserts the communication).
Without GPUs the devices are CPU devices that JAX fakes on this machine.

    python examples/hybrid_parallel.py                           # 4 GPUs, else 4 CPU devices
    python examples/hybrid_parallel.py --devices 8 --epochs 5
    jobflow launch -n 2 --cpu-devices 2 examples/hybrid_parallel.py   # 2 processes x 2 devices

The data are synthetic clicks: each of ``--fields`` categorical features draws an id out
of ``--vocab``, every id has a hidden effect, and a click happens with probability
``sigmoid(sum of the ids' effects + a dense feature term)``.
"""

import argparse
import os
import time

import jax
import numpy as np
from rich.console import Console
from rich.table import Table

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl

DENSE = 8


def device_placement(total: int):
    """``total`` devices split evenly over the processes: GPUs when there are enough, else CPUs."""
    world = flow.env.get_world_size()
    if total % world:
        raise SystemExit(f"--devices {total} does not split evenly over {world} processes")
    per_process = total // world
    try:
        gpus = len(jax.local_devices(backend="gpu"))
    except RuntimeError:
        gpus = 0
    tag = "gpu" if gpus >= per_process else "cpu"
    ids = "0" if per_process == 1 else f"0-{per_process - 1}"
    return flow.scope.placement(tag, [f"{p}:{ids}" for p in range(world)])


def synthetic_clicks(n, vocab, fields, seed):
    """``(ids (n, fields) int32, dense (n, DENSE) float32, clicks (n, 1) float32, the true
    click probabilities (n, 1))``."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0.0, 1.5, vocab)  # the same hidden effects for every split of the data
    dense_w = rng.normal(0.0, 0.5, DENSE)
    rng = np.random.default_rng(seed + 1)
    ids = rng.integers(0, vocab, (n, fields)).astype(np.int32)
    dense = rng.normal(size=(n, DENSE)).astype(np.float32)
    logit = effect[ids].sum(axis=1) / np.sqrt(fields) + dense @ dense_w
    prob = 1 / (1 + np.exp(-logit))
    clicks = (rng.random(n) < prob).astype(np.float32)[:, None]
    return ids, dense, clicks, prob[:, None]


def wide_and_deep(ids, dense, vocab, dim, hidden):
    """The click logit ``(batch, 1)``: a wide (linear) part plus a deep tower."""
    batch, fields = ids.shape
    split_rows = flow.distribute.split(0)
    init = flow.random_normal_initializer(stddev=0.01)
    wide_table = flow.get_variable("wide-embedding", (vocab, 1), initializer=init, distribute=split_rows)
    deep_table = flow.get_variable("deep-embedding", (vocab, dim), initializer=init, distribute=split_rows)
    wide = flow.math.reduce_sum(
        flow.reshape(flow.gather(wide_table, ids), (batch, fields)), axis=1, keepdims=True
    )
    deep = flow.concat([flow.reshape(flow.gather(deep_table, ids), (batch, fields * dim)), dense], axis=1)
    xavier = flow.xavier_uniform_initializer()
    deep = flow.layers.dense(
        deep,
        hidden,
        activation=flow.nn.relu,
        kernel_initializer=xavier,
        model_distribute=flow.distribute.split(axis=0),
        name="deep-hidden",
    )
    deep = flow.layers.dense(deep, 1, kernel_initializer=xavier, name="deep-out")
    return wide + deep


def build_jobs(placement, args):
    cfg = flow.function_config().default_placement_scope(placement)
    shapes = dict(vocab=args.vocab, dim=args.dim, hidden=args.hidden)

    @flow.global_function(type="train", function_config=cfg)
    def train_job(
        ids: tp.Numpy.Placeholder((args.batch_size, args.fields), dtype=flow.int32),
        dense: tp.Numpy.Placeholder((args.batch_size, DENSE)),
        clicks: tp.Numpy.Placeholder((args.batch_size, 1)),
    ) -> tp.Numpy:
        logits = wide_and_deep(ids, dense, **shapes)
        loss = flow.nn.sigmoid_cross_entropy_with_logits(clicks, logits)
        flow.optimizer.LazyAdam(args.lr).minimize(loss)
        return loss

    @flow.global_function(type="predict", function_config=cfg)
    def predict_job(
        ids: tp.Numpy.Placeholder((args.batch_size, args.fields), dtype=flow.int32),
        dense: tp.Numpy.Placeholder((args.batch_size, DENSE)),
    ) -> tp.Numpy:
        return flow.math.sigmoid(wide_and_deep(ids, dense, **shapes))

    return train_job, predict_job


def print_layout(console, job):
    """Where the job's variables and LazyAdam moments live, and what one device holds."""
    devices = job.devices
    console.print(
        f"[bold]{job.name}[/] runs on {len(devices)} devices: "
        + ", ".join(f"{d.platform}:{d.id} (process {d.process_index})" for d in devices)
    )
    store = session_impl.default_session().store
    table = Table("array", "global shape", "layout", "per device")
    for name, sharding in sorted(job.state_shardings.items()):
        shape = tuple(store[name].shape)
        if not shape:
            continue
        axes = [i for i, a in enumerate(sharding.spec) if a is not None]
        how = f"split along axis {axes[0]}" if axes else "replicated"
        table.add_row(name, "x".join(map(str, shape)), how, "x".join(map(str, sharding.shard_shape(shape))))
    console.print(table)
    per_device = max(_bytes_on_devices(store.values()).values())
    whole = sum(a.nbytes for a in store.values())
    console.print(
        f"state: {whole / 2**20:.2f} MiB in all, at most {per_device / 2**20:.2f} MiB on one device"
    )


def _bytes_on_devices(arrays) -> dict:
    out: dict = {}
    for a in arrays:
        for s in a.addressable_shards:
            out[s.device] = out.get(s.device, 0) + s.data.nbytes
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=4, help="devices in total, over all processes")
    parser.add_argument(
        "--vocab", type=int, default=1024, help="ids per table (rows, split over the devices)"
    )
    parser.add_argument("--dim", type=int, default=16, help="deep embedding size")
    parser.add_argument("--fields", type=int, default=4, help="categorical features per example")
    parser.add_argument("--hidden", type=int, default=256, help="units of the split hidden layer")
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512, help="global batch, split over the devices")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> float:
    """Trains, prints the layout and the loss per epoch; returns the held-out log-loss."""
    args = parse_args(argv)
    console = Console()
    flow.env.init()  # several processes when started by `jobflow launch`
    placement = device_placement(args.devices)
    for what, size in (("--batch-size", args.batch_size), ("--vocab", args.vocab), ("--hidden", args.hidden)):
        if size % args.devices:
            raise SystemExit(f"{what} {size} must divide by --devices {args.devices}")
    ids, dense, clicks, truth = synthetic_clicks(
        args.samples + 4 * args.batch_size, args.vocab, args.fields, args.seed
    )
    held_out = slice(args.samples, None)
    flow.config.seed(args.seed)
    train_job, predict_job = build_jobs(placement, args)
    train_job.compile()
    print_layout(console, train_job)

    steps = args.samples // args.batch_size
    rng = np.random.default_rng(args.seed)  # the same order in every process
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(args.samples)[: steps * args.batch_size]
        losses = [train_job(ids[b], dense[b], clicks[b]).mean() for b in np.split(order, steps)]
        console.print(f"epoch {epoch + 1}: mean loss {np.mean(losses):.4f}")
    elapsed = time.perf_counter() - start
    probs = np.concatenate(
        [predict_job(i, d) for i, d in zip(np.split(ids[held_out], 4), np.split(dense[held_out], 4))]
    )
    y = clicks[held_out]
    log_loss = _log_loss(y, probs)
    console.print(
        f"trained {args.epochs * steps} steps on {len(train_job.devices)} devices in {elapsed:.1f} s"
    )
    console.print(
        f"[bold green]held-out log-loss {log_loss:.4f}[/] (the click rate alone: "
        f"{_log_loss(y, np.full_like(y, y.mean())):.4f}; the true probabilities: "
        f"{_log_loss(y, truth[held_out]):.4f})"
    )
    return log_loss


def _log_loss(y, p) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


if __name__ == "__main__":
    if "JAX_NUM_CPU_DEVICES" not in os.environ:  # fake CPU devices (before JAX starts); GPUs are unaffected
        flow.config.cpu_device_num(parse_args().devices)
    main()

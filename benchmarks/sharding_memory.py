"""Per-device memory of a train job's state: replicated vs sharded optimizer state (vs sharded variables).

    python benchmarks/sharding_memory.py                 # 8 fake CPU devices unless GPUs
    python benchmarks/sharding_memory.py --devices 4 --hidden 1024
    python -m benchmarks                                 # runs it as one section of the suite

For each layout the same MLP trains a few steps on the same batches, then the script reads,
per device, the bytes its state arrays occupy there (summed over the arrays' shards) and
XLA's memory analysis of the compiled step (arguments + temporaries: the step's own peak
estimate), checks that every layout ends with the same variables as the replicated run,
and prints a markdown table.
"""

import argparse
import json
import os
import sys
import time

if "JAX_NUM_CPU_DEVICES" not in os.environ and "xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["JAX_NUM_CPU_DEVICES"] = "8"  # before JAX starts; GPUs are unaffected

import numpy as np

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl
from jobflow._src.runtime import sharding as _sharding

LAYOUTS = {
    "replicated": dict(shard_slots=False, shard_vars=False),
    "shard_optimizer_state": dict(shard_slots=True, shard_vars=False),
    "+ shard_variables": dict(shard_slots=True, shard_vars=True),
}


def optimizers():
    found = {"SGD momentum": lambda: flow.optimizer.SGD(0.01, momentum=0.9)}
    if hasattr(flow.optimizer, "Adam"):  # two slots per variable when the Adam family is installed
        found["Adam"] = lambda: flow.optimizer.Adam(1e-3)
    return found


def build(placement, make_opt, batch, dim, hidden, layers, shard_slots, shard_vars):
    cfg = flow.function_config().default_placement_scope(placement)
    cfg.shard_optimizer_state(shard_slots).shard_variables(shard_vars)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((batch, dim)), y: tp.Numpy.Placeholder((batch,), dtype=flow.int32)
    ) -> tp.Numpy:
        h = x
        for i in range(layers):
            h = flow.layers.dense(
                h,
                hidden,
                activation=flow.nn.relu,
                name=f"fc{i}",
                kernel_initializer=flow.xavier_uniform_initializer(),
            )
        logits = flow.layers.dense(h, 10, name="head", kernel_initializer=flow.xavier_uniform_initializer())
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        make_opt().minimize(loss)
        return loss

    return train


def measure(train, batches):
    for x, y in batches:
        train(x, y)
    flow.sync_default_session()
    start = time.perf_counter()
    for x, y in batches:
        train(x, y)
    flow.sync_default_session()
    step_ms = (time.perf_counter() - start) / len(batches) * 1e3
    store = session_impl.default_session().store
    specs = session_impl.default_session().specs
    kinds = {
        "variables": [n for n in store if specs[n].kind == "model"],
        "slots": [n for n in store if specs[n].kind == "slot"],
    }
    per_device = {
        k: max(_sharding.bytes_per_device(store[n] for n in names).values()) for k, names in kinds.items()
    }
    mem = train._last_program.compiled.memory_analysis()
    values = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    return per_device, mem.argument_size_in_bytes + mem.temp_size_in_bytes, step_ms, values


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (python -m benchmarks)")
    args = parser.parse_args(argv)

    import jax

    tag = "gpu" if any(d.platform == "gpu" for d in jax.devices()) else "cpu"
    placement = flow.scope.placement(tag, f"0:0-{args.devices - 1}")
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.normal(size=(args.batch, args.dim)).astype(np.float32),
            rng.integers(0, 10, args.batch).astype(np.int32),
        )
        for _ in range(args.steps)
    ]
    setup = (
        f"MLP {args.dim} -> {args.layers} x {args.hidden} -> 10, global batch {args.batch}, "
        f"{args.devices} {tag} devices ({jax.devices()[0].device_kind}), jax {jax.__version__}"
    )
    print(setup + "\n")
    rows = []
    for opt_name, make_opt in optimizers().items():
        ref = None
        for layout, switches in LAYOUTS.items():
            flow.clear_default_session()
            train = build(placement, make_opt, args.batch, args.dim, args.hidden, args.layers, **switches)
            per_device, xla_bytes, step_ms, values = measure(train, batches)
            ref = values if ref is None else ref
            rows.append(
                {
                    "optimizer": opt_name,
                    "layout": layout,
                    "variables / device (MiB)": per_device["variables"] / 2**20,
                    "slots / device (MiB)": per_device["slots"] / 2**20,
                    "state / device (MiB)": (per_device["variables"] + per_device["slots"]) / 2**20,
                    "XLA args + temps / device (MiB)": xla_bytes / 2**20,
                    "max abs diff vs replicated": max(float(np.abs(values[k] - ref[k]).max()) for k in ref),
                    "step (ms)": step_ms,
                }
            )
    print("| " + " | ".join(rows[0]) + " |")
    print("|---|---|" + "---:|" * (len(rows[0]) - 2))
    for row in rows:
        cells = [
            f"{v:.1e}" if k.startswith("max abs") else f"{v:.2f}" if isinstance(v, float) else str(v)
            for k, v in row.items()
        ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setup": setup, "rows": rows}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

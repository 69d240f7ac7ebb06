"""Per-device memory of a train job's state: replicated vs split (sharded) state.

    python benchmarks/sharding_memory.py                 # 8 fake CPU devices unless GPUs
    python benchmarks/sharding_memory.py --devices 4 --hidden 1024 --model mlp
    python -m benchmarks --only sharding                 # runs it as one section of the suite

Two models, each in several layouts:

* ``mlp``: an MLP with replicated state, then ``shard_optimizer_state`` (ZeRO-1/2), then
  ``+ shard_variables`` (ZeRO-3);
* ``embedding``: an embedding table (``--rows`` x ``--emb-dim``, looked up with
  ``flow.gather``) and a small head, with Adam and LazyAdam, replicated, split by rows with
  ``get_variable(distribute=flow.distribute.split(0))`` (model parallelism), and split by
  ``shard_variables`` (ZeRO-3) for comparison. Target: a device holds at most 1/N + 5%
  (of 1/N) of the replicated state.

For each layout the same job trains a few steps on the same batches, then the script reads,
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


EMBEDDING_LAYOUTS = ("replicated", "split(0)", "shard_variables")


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


def build_embedding(placement, make_opt, rows, dim, batch, fields, layout):
    """A train job over an embedding table of ``rows`` x ``dim``: the sum of ``fields``
    looked-up rows per example, a dense head, sigmoid cross-entropy."""
    cfg = flow.function_config().default_placement_scope(placement)
    zero = layout == "shard_variables"
    cfg.shard_optimizer_state(zero).shard_variables(zero)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        ids: tp.Numpy.Placeholder((batch, fields), dtype=flow.int32), y: tp.Numpy.Placeholder((batch, 1))
    ) -> tp.Numpy:
        table = flow.get_variable(
            "embedding",
            (rows, dim),
            initializer=flow.random_uniform_initializer(-0.05, 0.05),
            distribute=flow.distribute.split(0) if layout == "split(0)" else None,
        )
        emb = flow.math.reduce_sum(flow.gather(table, ids), axis=1)
        logits = flow.layers.dense(emb, 1, name="head", kernel_initializer=flow.xavier_uniform_initializer())
        loss = flow.nn.sigmoid_cross_entropy_with_logits(y, logits)
        make_opt().minimize(loss)
        return loss

    return train


def measure(train, batches):
    for batch in batches:
        train(*batch)
    flow.sync_default_session()
    start = time.perf_counter()
    for batch in batches:
        train(*batch)
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


def _row(model, opt_name, layout, measured, ref, replicated_state):
    per_device, xla_bytes, step_ms, values = measured
    state = per_device["variables"] + per_device["slots"]
    return {
        "model": model,
        "optimizer": opt_name,
        "layout": layout,
        "variables / device (MiB)": per_device["variables"] / 2**20,
        "slots / device (MiB)": per_device["slots"] / 2**20,
        "state / device (MiB)": state / 2**20,
        "state / device vs replicated": state / (replicated_state or state),
        "XLA args + temps / device (MiB)": xla_bytes / 2**20,
        "max abs diff vs replicated": max(float(np.abs(values[k] - ref[k]).max()) for k in ref),
        "step (ms)": step_ms,
    }


def mlp_rows(args, placement):
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.normal(size=(args.batch, args.dim)).astype(np.float32),
            rng.integers(0, 10, args.batch).astype(np.int32),
        )
        for _ in range(args.steps)
    ]
    rows = []
    for opt_name, make_opt in optimizers().items():
        ref = replicated = None
        for layout, switches in LAYOUTS.items():
            flow.clear_default_session()
            train = build(placement, make_opt, args.batch, args.dim, args.hidden, args.layers, **switches)
            measured = measure(train, batches)
            ref = measured[3] if ref is None else ref
            replicated = replicated or measured[0]["variables"] + measured[0]["slots"]
            rows.append(_row("mlp", opt_name, layout, measured, ref, replicated))
    return rows


def embedding_rows(args, placement):
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.integers(0, args.rows, (args.batch, args.fields)).astype(np.int32),
            rng.integers(0, 2, (args.batch, 1)).astype(np.float32),
        )
        for _ in range(args.steps)
    ]
    opts = {"Adam": lambda: flow.optimizer.Adam(1e-3), "LazyAdam": lambda: flow.optimizer.LazyAdam(1e-3)}
    rows = []
    for opt_name, make_opt in opts.items():
        ref = replicated = None
        for layout in EMBEDDING_LAYOUTS:
            flow.clear_default_session()
            train = build_embedding(
                placement, make_opt, args.rows, args.emb_dim, args.batch, args.fields, layout
            )
            measured = measure(train, batches)
            ref = measured[3] if ref is None else ref
            replicated = replicated or measured[0]["variables"] + measured[0]["slots"]
            rows.append(_row("embedding", opt_name, layout, measured, ref, replicated))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["mlp", "embedding", "both"], default="both")
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--rows", type=int, default=65536, help="rows of the embedding table")
    parser.add_argument("--emb-dim", type=int, default=32, help="columns of the embedding table")
    parser.add_argument("--fields", type=int, default=8, help="ids looked up per example")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (python -m benchmarks)")
    args = parser.parse_args(argv)

    import jax

    tag = "gpu" if any(d.platform == "gpu" for d in jax.devices()) else "cpu"
    placement = flow.scope.placement(tag, f"0:0-{args.devices - 1}")
    setup = []
    rows = []
    if args.model in ("mlp", "both"):
        setup.append(f"mlp: MLP {args.dim} -> {args.layers} x {args.hidden} -> 10, global batch {args.batch}")
        rows += mlp_rows(args, placement)
    if args.model in ("embedding", "both"):
        setup.append(
            f"embedding: a {args.rows} x {args.emb_dim} float32 table, {args.fields} ids per example, "
            f"a dense head, global batch {args.batch}"
        )
        rows += embedding_rows(args, placement)
    setup.append(f"{args.devices} {tag} devices ({jax.devices()[0].device_kind}), jax {jax.__version__}")
    print("\n".join(setup) + "\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|---|---|---|" + "---:|" * (len(rows[0]) - 3))
    for row in rows:
        cells = [
            f"{v:.1e}"
            if k.startswith("max abs")
            else f"{v:.4f}"
            if k.endswith("vs replicated")
            else f"{v:.2f}"
            if isinstance(v, float)
            else str(v)
            for k, v in row.items()
        ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setup": "; ".join(setup), "rows": rows}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

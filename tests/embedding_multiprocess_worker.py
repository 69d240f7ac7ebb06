"""One process of the 2-process sharded-embedding run in tests/test_embedding_multiprocess.py.

Started by ``jobflow launch -n 2 --cpu-devices 2 tests/embedding_multiprocess_worker.py OUT``:
the two processes form one JAX runtime with 4 CPU devices and train a small
recommendation model whose embedding table is split by rows over all 4 devices, looked up
with ``flow.gather``, once with ``LazyAdam`` and once with indexed-slices SGD. Each process
writes ``OUT/rank<r>.npz``; together they save a checkpoint ``OUT/ckpt-<optimizer>``. The test runs :func:`train` in one process on 4 devices as the
reference.
"""

import pathlib
import sys

import numpy as np

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl

ROWS, DIM, FIELDS, BATCH, STEPS = 32, 8, 3, 16, 4
OPTIMIZERS = ("lazy_adam", "sgd")


def build_job(placement, optimizer: str):
    """A train job: the ids' embeddings (a ``(ROWS, DIM)`` table split by rows), a hidden
    layer, a logit; sigmoid cross-entropy."""
    cfg = flow.function_config().default_placement_scope(placement)
    if optimizer == "sgd":  # OneFlow's indexed-slices SGD: rows not looked up stay untouched
        cfg.indexed_slices_optimizer_conf(dict(include_op_names=dict(op_name=["embedding"])))

    @flow.global_function(type="train", function_config=cfg)
    def train_job(
        ids: tp.Numpy.Placeholder((BATCH, FIELDS), dtype=flow.int32),
        labels: tp.Numpy.Placeholder((BATCH, 1)),
    ) -> tp.Numpy:
        table = flow.get_variable(
            "embedding",
            (ROWS, DIM),
            initializer=flow.random_uniform_initializer(-0.05, 0.05),
            distribute=flow.distribute.split(0),
        )
        emb = flow.reshape(flow.gather(table, ids), (BATCH, FIELDS * DIM))
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(emb, 16, activation=flow.nn.relu, kernel_initializer=init, name="h")
        logits = flow.layers.dense(h, 1, kernel_initializer=init, name="out")
        loss = flow.nn.sigmoid_cross_entropy_with_logits(labels, logits)
        if optimizer == "lazy_adam":
            flow.optimizer.LazyAdam(0.01).minimize(loss)
        else:
            flow.optimizer.SGD(0.5).minimize(loss)
        return loss

    return train_job


def batches():
    rng = np.random.default_rng(3)
    for _ in range(STEPS):
        ids = rng.integers(0, ROWS // 2, (BATCH, FIELDS)).astype(np.int32)  # half the rows never seen
        yield ids, (ids.sum(axis=1, keepdims=True) % 2).astype(np.float32)


def train(placement, optimizer: str):
    """Trains on a fresh session; returns ``(losses, {name: value})``."""
    flow.clear_default_session()
    job = build_job(placement, optimizer)
    losses = np.stack([job(ids, labels) for ids, labels in batches()])
    return losses, {k: v.numpy() for k, v in flow.get_all_variables().items()}


def main(out: pathlib.Path) -> None:
    rank, world = flow.env.get_rank(), flow.env.get_world_size()
    four = flow.scope.placement("cpu", ["0:0-1", "1:0-1"])
    arrays = {}
    for optimizer in OPTIMIZERS:
        losses, values = train(four, optimizer)
        table = session_impl.default_session().store["embedding"]
        arrays[f"{optimizer}:losses"] = losses
        arrays[f"{optimizer}:table_fully_addressable"] = table.is_fully_addressable
        arrays[f"{optimizer}:local_shards"] = np.array([s.data.shape for s in table.addressable_shards])
        arrays.update({f"{optimizer}:var:{k}": v for k, v in values.items()})
        flow.checkpoint.save(str(out / f"ckpt-{optimizer}"))  # gathers the split table; rank 0 writes
    np.savez(out / f"rank{rank}.npz", world=world, **arrays)
    print(f"rank {rank}/{world} done")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))

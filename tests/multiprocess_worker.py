"""One process of the 2-process run in tests/test_multiprocess.py.

Started by ``jobflow launch -n 2 --cpu-devices 2 tests/multiprocess_worker.py OUT``: the two
processes form one JAX runtime with 4 CPU devices (gloo collectives on loopback), train
the same job data-parallel on the same global batches, with the optimizer state and the
variables sharded across all 4 devices, run a mirrored job (2 arrays per process), and
each writes ``OUT/rank<r>.npz`` with what it ends with.
The test runs :func:`build_jobs` and :func:`batches` in one process as the reference.
"""

import pathlib
import sys

import numpy as np

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl

BATCH, DIM, HIDDEN, CLASSES, STEPS = 16, 8, 16, 4, 4


def build_jobs(placement=None, shard=False):
    """A train job (dense-relu-dense, SGD momentum) and a predict job sharing its weights;
    ``shard`` splits the slots and the variables across the train job's devices."""
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)
    cfg.shard_optimizer_state(shard).shard_variables(shard)

    def net(x):
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, HIDDEN, activation=flow.nn.relu, kernel_initializer=init, name="h")
        return flow.layers.dense(h, CLASSES, kernel_initializer=init, name="out")

    @flow.global_function(type="train", function_config=cfg)
    def train(
        x: tp.Numpy.Placeholder((BATCH, DIM)), y: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32)
    ) -> tp.Numpy:
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, net(x))
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((BATCH, DIM))) -> tp.Numpy:
        return net(x)

    return train, predict


def mirrored_job(placement):
    """A mirrored predict job: per device, its array minus that array's mean."""
    cfg = flow.function_config().default_placement_scope(placement)
    cfg.default_logical_view(flow.scope.mirrored_view())

    @flow.global_function(type="predict", function_config=cfg)
    def centered(x: tp.ListNumpy.Placeholder((3,))) -> tuple[tp.ListNumpy, tp.Numpy]:
        y = x - flow.math.reduce_mean(x)
        return y, y

    return centered


def mirrored_inputs(rank):
    """The arrays process ``rank`` feeds to its 2 devices."""
    return [np.arange(3, dtype=np.float32) * (2 * rank + i + 1) for i in range(2)]


def batches():
    rng = np.random.default_rng(42)
    for _ in range(STEPS):
        yield (
            rng.normal(size=(BATCH, DIM)).astype(np.float32),
            rng.integers(0, CLASSES, BATCH).astype(np.int32),
        )


def main(out: pathlib.Path) -> None:
    # No flow.env.init() call: jobflow joins the processes the launcher's environment names
    # (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID) before it first uses devices.
    rank, world = flow.env.get_rank(), flow.env.get_world_size()
    four = flow.scope.placement("cpu", ["0:0-1", "1:0-1"])
    train, predict = build_jobs(four, shard=True)
    losses = np.stack([train(x, y) for x, y in batches()])
    logits = predict(next(iter(batches()))[0])  # default placement: cpu 0:0 of each process
    values = {k: v.numpy() for k, v in flow.get_all_variables().items()}  # gathers sharded slots
    flow.load_variables(values)
    reloaded = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    mirrored_list, mirrored_all = mirrored_job(four)(mirrored_inputs(rank))
    store = session_impl.default_session().store
    slot = store["h-weight-momentum"]
    np.savez(
        out / f"rank{rank}.npz",
        losses=losses,
        logits=logits,
        world=world,
        train_devices=len(store["h-weight"].sharding.device_set),
        predict_devices=len(predict._last_program.devices),
        slot_fully_addressable=slot.is_fully_addressable,
        reload_equal=all(np.array_equal(values[k], reloaded[k]) for k in values),
        mirrored_list=np.stack(mirrored_list),
        mirrored_all=mirrored_all,
        **{f"var:{k}": v for k, v in values.items()},
    )
    print(f"rank {rank}/{world} done: final loss {losses[-1].mean():.6f}")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))

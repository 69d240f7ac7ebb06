"""One process of the 2-process run in tests/test_checkpoint_multiprocess.py.

Started by ``jobflow launch -n 2 --cpu-devices 2 tests/checkpoint_multiprocess_worker.py OUT``:
the job of tests/multiprocess_worker.py trains data-parallel over the 4 devices of both
processes with its variables and slots split across them. Every process saves, trains
on, loads and trains again, and writes ``OUT/rank<r>.npz`` with what it saw.
"""

import importlib.util
import pathlib
import sys

import numpy as np

import jobflow as flow
from jobflow._src.runtime import session as session_impl

_spec = importlib.util.spec_from_file_location(
    "multiprocess_worker", pathlib.Path(__file__).with_name("multiprocess_worker.py")
)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def snapshot():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}  # gathers split arrays


def main(out: pathlib.Path) -> None:
    rank = flow.env.get_rank()
    train, _ = worker.build_jobs(flow.scope.placement("cpu", ["0:0-1", "1:0-1"]), shard=True)
    batches = list(worker.batches())
    manager = flow.checkpoint.CheckpointManager(out / "managed", max_to_keep=1, job=train)
    for x, y in batches[:2]:
        train(x, y)
    flow.checkpoint.save(out / "ckpt.safetensors")  # process 0 writes, both wait for it
    assert manager.save()
    for x, y in batches[2:]:
        train(x, y)
    expected = snapshot()
    assert manager.save()  # step 4; step 2 is deleted
    flow.checkpoint.load(out / "ckpt.safetensors")  # both read it
    loaded_step = int(snapshot()["System-Train-TrainStep-train"])
    for x, y in batches[2:]:
        train(x, y)
    resumed = snapshot()
    restored_step = manager.restore()
    restored = snapshot()
    np.savez(
        out / f"rank{rank}.npz",
        loaded_step=loaded_step,
        restored_step=restored_step,
        split=not session_impl.default_session().store["h-weight-momentum"].is_fully_addressable,
        resume_equal=all(resumed[k].tobytes() == expected[k].tobytes() for k in expected),
        restore_equal=all(restored[k].tobytes() == expected[k].tobytes() for k in expected),
    )
    print(f"rank {rank} done")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))

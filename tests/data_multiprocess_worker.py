"""One process of the 2-process run in tests/test_data_multiprocess.py.

Started by ``jobflow launch -n 2 --cpu-devices 2 tests/data_multiprocess_worker.py DATA OUT``:
a BERT-style job reads the OFRecord dataset ``DATA`` (4 parts, shuffled) inside the job and
trains data-parallel over the 4 devices of both processes. Each process reads its share of
the parts. It trains, saves, trains on, loads, trains again, and writes ``OUT/rank<r>.npz``
with what it saw.
"""

import pathlib
import sys

import numpy as np

import jobflow as flow
import jobflow.typing as tp


def build(data_dir: str):
    cfg = flow.function_config().default_placement_scope(flow.scope.placement("cpu", ["0:0-1", "1:0-1"]))

    @flow.global_function(type="train", function_config=cfg)
    def pretrain() -> tuple[tp.Numpy, tp.Numpy]:
        rec = flow.data.ofrecord_reader(
            data_dir, batch_size=8, data_part_num=4, random_shuffle=True, shuffle_buffer_size=4
        )
        ids = flow.data.OFRecordRawDecoder(rec, "input_ids", shape=(8,), dtype=flow.int32)
        table = flow.get_variable("embedding", (50, 4), initializer=flow.random_normal_initializer(0, 0.1))
        loss = flow.math.reduce_mean(flow.math.square(flow.gather(table, ids) - 1.0))
        flow.optimizer.SGD(flow.optimizer.PiecewiseConstantScheduler([], [0.1])).minimize(loss)
        return loss, ids

    return pretrain


def variables():
    return {
        k: v.numpy().copy() for k, v in flow.get_all_variables().items() if not k.startswith("System-Data")
    }


def main(data_dir: str, out: pathlib.Path) -> None:
    rank = flow.env.get_rank()
    flow.config.seed(0)
    job = build(data_dir)
    seen = [job()[1] for _ in range(2)]
    flow.checkpoint.save(out / "ckpt")
    later = [job()[1] for _ in range(3)]
    expected = variables()
    flow.checkpoint.load(out / "ckpt")
    again = [job()[1] for _ in range(3)]
    resumed = variables()
    np.savez(
        out / f"rank{rank}.npz",
        seen=np.stack(seen),
        later=np.stack(later),
        again=np.stack(again),
        equal=all(resumed[k].tobytes() == expected[k].tobytes() for k in expected),
    )
    print(f"rank {rank} done")


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]))

"""An embedding table split by rows over 8 devices: each device holds 1/8 of the table and
of its Adam / LazyAdam moments (target: at most 1/8 + 5% of the replicated bytes), and the
job trains exactly as the replicated one. Bytes are read from the arrays' shards (what
``jax.Array`` allocates per device) and from live device buffers; benchmarks/sharding_memory.py
measures the same at a larger size (docs/performance.md)."""

import gc

import jax
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime import session as session_impl

ROWS, DIM, BATCH, FIELDS = 4096, 16, 32, 4
EIGHT = flow.scope.placement("cpu", "0:0-7")
TABLE = ("embedding", "embedding-m", "embedding-v")


def _job(optimizer, split):
    cfg = flow.function_config().default_placement_scope(EIGHT)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        ids: tp.Numpy.Placeholder((BATCH, FIELDS), dtype=flow.int32), y: tp.Numpy.Placeholder((BATCH, 1))
    ) -> tp.Numpy:
        table = flow.get_variable(
            "embedding",
            (ROWS, DIM),
            initializer=flow.random_uniform_initializer(-0.05, 0.05),
            distribute=flow.distribute.split(0) if split else None,
        )
        emb = flow.math.reduce_sum(flow.gather(table, ids), axis=1)
        logits = flow.layers.dense(emb, 1, name="head", kernel_initializer=flow.xavier_uniform_initializer())
        loss = flow.nn.sigmoid_cross_entropy_with_logits(y, logits)
        optimizer().minimize(loss)
        return loss

    return train


def _train(optimizer, split):
    flow.clear_default_session()
    job = _job(optimizer, split)
    rng = np.random.default_rng(0)
    for _ in range(3):
        job(
            rng.integers(0, ROWS, (BATCH, FIELDS)).astype(np.int32),
            rng.integers(0, 2, (BATCH, 1)).astype(np.float32),
        )
    store = session_impl.default_session().store
    per_device: dict = {}
    for name in TABLE:
        for shard in store[name].addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return per_device, {k: v.numpy() for k, v in flow.get_all_variables().items()}


def _live_bytes_per_device(min_bytes):
    """Bytes of live device buffers of at least ``min_bytes`` (the table-sized ones), per
    device; each buffer once (a shard's own array shares its buffer)."""
    gc.collect()
    buffers: dict = {}
    for a in jax.live_arrays():
        for shard in a.addressable_shards:
            if shard.data.nbytes >= min_bytes:
                buffers[(shard.device, shard.data.unsafe_buffer_pointer())] = shard.data.nbytes
    out: dict = {}
    for (device, _), nbytes in buffers.items():
        out[device] = out.get(device, 0) + nbytes
    return out


@pytest.mark.parametrize(
    "optimizer",
    [lambda: flow.optimizer.Adam(1e-2), lambda: flow.optimizer.LazyAdam(1e-2)],
    ids=["Adam", "LazyAdam"],
)
def test_a_table_split_over_eight_devices_takes_an_eighth_per_device(optimizer):
    replicated, ref = _train(optimizer, split=False)
    whole = ROWS * DIM * 4 * 3  # the table and its two moments, float32
    assert set(replicated.values()) == {whole}
    split, values = _train(optimizer, split=True)
    assert len(split) == 8
    assert max(split.values()) <= whole / 8 * 1.05
    live = _live_bytes_per_device(ROWS * DIM * 4 // 8)  # what the devices really hold, the table's pieces
    assert len(live) == 8 and max(live.values()) <= whole / 8 * 1.05, live
    for k in ref:
        np.testing.assert_allclose(values[k], ref[k], rtol=1e-6, atol=1e-7, err_msg=k)

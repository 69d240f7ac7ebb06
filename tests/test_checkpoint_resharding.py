"""Checkpoints of model-parallel state: gathered on save, resharded on load.

An embedding model trains on 4 devices with its table, its dense weight and their Adam
slots split across the devices (by ``distribute=flow.distribute.split(0)`` /
``model_distribute``, or by the ZeRO switches); its checkpoint (both formats, and through
``flow.train.CheckPoint``) loads onto 1 and onto 2 devices. Expectations: the loaded
values are bitwise the saved ones, every array lives on the new job's devices (split where
the new device count allows it), and training continues as the 4-device run does.
"""

import types

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.cli import main as cli
from jobflow._src.runtime import session as session_impl

ROWS, DIM, BATCH = 16, 8, 8
HOW = ("jobflow", "oneflow", "checkpoint-api", "variables")


def _jobs(devices: int, layout: str):
    cfg = flow.function_config()
    cfg.default_placement_scope(flow.scope.placement("cpu", "0:0" if devices == 1 else f"0:0-{devices - 1}"))
    if layout == "zero":
        cfg.shard_variables(True).shard_optimizer_state(True)

    @flow.global_function(type="train", function_config=cfg)
    def train(
        ids: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32),
        labels: tp.Numpy.Placeholder((BATCH,), dtype=flow.int32),
    ) -> tp.Numpy:
        split = flow.distribute.split(0) if layout == "split" else None
        table = flow.get_variable(
            "table", (ROWS, DIM), initializer=flow.random_normal_initializer(), distribute=split
        )
        logits = flow.layers.dense(flow.gather(table, ids), 4, name="out", model_distribute=split)
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        flow.optimizer.Adam(0.05).minimize(loss)
        return loss

    return train


def _batches(steps, seed):
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, ROWS, BATCH).astype(np.int32), rng.integers(0, 4, BATCH).astype(np.int32))
        for _ in range(steps)
    ]


def _values():
    return {k: np.array(v) for k, v in flow.get_all_variables().items()}


def _store():
    return session_impl.default_session().store


def _save(path, how):
    if how == "checkpoint-api":
        flow.train.CheckPoint().save(str(path))
    elif how == "variables":  # OneFlow's idiom: get_all_variables() saved as a var_dict
        flow.checkpoint.save(str(path), flow.get_all_variables())
    else:
        flow.checkpoint.save(str(path), format=how)


def _load(path, how):
    if how == "checkpoint-api":
        return flow.train.CheckPoint().load(str(path))
    if how == "variables":
        flow.train.CheckPoint().init()  # discovers the jobs: their variables exist, in their layouts
        values = flow.checkpoint.get(str(path))
        flow.load_variables(values)
        return types.SimpleNamespace(loaded=list(values))
    return flow.checkpoint.load(str(path))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Trains 3 steps on 4 devices, saves in every format, then trains 2 more steps."""
    flow.clear_default_session()
    flow.config.seed(0)
    out = {}
    for layout in ("split", "zero"):
        root = tmp_path_factory.mktemp(layout)
        train = _jobs(4, layout)
        for ids, labels in _batches(3, 0):
            train(ids, labels)
        table = _store()["table"]
        assert len(table.sharding.device_set) == 4 and not table.sharding.is_fully_replicated
        assert {s.data.shape for s in table.addressable_shards} == {(ROWS // 4, DIM)}
        values = _values()
        assert values["table"].shape == (ROWS, DIM)  # gathered whole
        paths = {}
        for how in HOW:
            paths[how] = root / how
            _save(paths[how], how)
        later = [train(ids, labels) for ids, labels in _batches(2, 1)]
        out[layout] = (values, paths, later)
        flow.clear_default_session()
    return out


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("devices", [1, 2])
@pytest.mark.parametrize("layout", ["split", "zero"])
def test_checkpoint_from_four_devices_loads_onto_fewer(saved, layout, devices, how):
    values, paths, later = saved[layout]
    train = _jobs(devices, layout)
    report = _load(paths[how], how)
    assert sorted(report.loaded) == sorted(values)
    loaded = _values()
    for name, value in values.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape, name
        assert loaded[name].tobytes() == value.tobytes(), name
    for name in ("table", "table-m", "table-v", "out-weight"):
        sharding = _store()[name].sharding
        assert len(sharding.device_set) == devices, name
        assert sharding.is_fully_replicated == (devices == 1), name
    resumed = [train(ids, labels) for ids, labels in _batches(2, 1)]
    np.testing.assert_allclose(resumed, later, rtol=1e-5, atol=1e-6)


def test_inspect_shows_whole_shapes_of_split_variables(saved, capsys):
    _, paths, _ = saved["split"]
    for how in ("jobflow", "oneflow"):
        assert cli.main(["inspect", str(paths[how]), "--verify"]) == 0
        out = capsys.readouterr().out
        row = next(line for line in out.splitlines() if "table " in line)
        assert f"({ROWS}, {DIM})" in row and "512 B" in row, row

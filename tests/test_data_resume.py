"""Resuming in-job data: the pipeline's position is part of the job's state, so a run
interrupted and resumed from a checkpoint sees the same batches and ends bitwise equal
to an uninterrupted one (issue 13, docs/data.md)."""

import json

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.errors import CheckpointError
from tests import data_fixtures as fx


def _define_random():
    @flow.global_function(type="train")
    def train() -> tp.Numpy:
        x = flow.data.decode_random(
            (4,), flow.float32, batch_size=8, initializer=flow.random_normal_initializer()
        )
        w = flow.get_variable("w", (4, 1), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w) - 1.0))
        flow.optimizer.Adam(flow.optimizer.PiecewiseConstantScheduler([], [0.01])).minimize(loss)
        return x

    return train


def _fresh(define):
    flow.clear_default_session()
    flow.config.seed(0)
    return define()


def run_interrupted(define, path, total, stop_at):
    """``(batches, variables)`` of an uninterrupted run of ``total`` calls, and of a run
    saved after ``stop_at`` calls in a session that is then dropped, resumed in a new one."""
    job = _fresh(define)
    full = [job() for _ in range(total)]
    full_vars = flow.get_all_variables()
    job = _fresh(define)
    first = [job() for _ in range(stop_at)]
    flow.checkpoint.save(path)
    job = _fresh(define)
    flow.checkpoint.load(path)
    rest = [job() for _ in range(total - stop_at)]
    return (full, full_vars), (first + rest, flow.get_all_variables())


def assert_same_run(a, b):
    (batches_a, vars_a), (batches_b, vars_b) = a, b
    assert len(batches_a) == len(batches_b)
    for x, y in zip(batches_a, batches_b):
        for u, v in zip(x, y) if isinstance(x, tuple) else [(x, y)]:
            np.testing.assert_array_equal(u, v)
    assert vars_a.keys() == vars_b.keys()
    for name in vars_a:
        np.testing.assert_array_equal(vars_a[name], vars_b[name], err_msg=name)


def test_decode_random_resume_is_bitwise(tmp_path):
    assert_same_run(*run_interrupted(_define_random, str(tmp_path / "ckpt"), total=7, stop_at=3))


@pytest.mark.parametrize("stop_at", [1, 5, 8])  # inside the first epoch, at its end, in the second
def test_bert_style_resume_with_shuffling_is_bitwise(tmp_path, stop_at):
    data_dir = fx.bert_dataset(tmp_path / "bert", records=40)  # 5 batches an epoch

    def define():
        @flow.global_function(type="train")
        def pretrain() -> tuple[tp.Numpy, tp.Numpy]:
            ids, labels = fx.bert_inputs(data_dir)  # random_shuffle and shuffle_after_epoch
            return fx.bert_model(ids, labels), ids

        return pretrain

    full, resumed = run_interrupted(define, str(tmp_path / "ckpt"), total=12, stop_at=stop_at)
    assert_same_run(full, resumed)
    orders = [ids.tolist() for _, ids in full[0]]
    assert orders[:5] != orders[5:10]  # the second epoch is shuffled differently


def test_resnet_style_resume_with_augmentation_is_bitwise(tmp_path):
    data_dir = fx.image_dataset(tmp_path / "images", records=24)  # 3 batches an epoch

    def define():
        @flow.global_function(type="train")
        def train() -> tuple[tp.Numpy, tp.Numpy]:
            images, labels = fx.resnet_inputs(data_dir)  # random crops, coin flips, shuffling
            return fx.resnet_model(images, labels), images

        return train

    assert_same_run(*run_interrupted(define, str(tmp_path / "ckpt"), total=8, stop_at=4))


def test_resume_in_the_oneflow_format_too(tmp_path):
    data_dir = fx.bert_dataset(tmp_path / "bert", records=16)

    def define():
        @flow.global_function(type="train")
        def pretrain() -> tp.Numpy:
            return fx.bert_model(*fx.bert_inputs(data_dir))

        return pretrain

    job = _fresh(define)
    full = [job() for _ in range(6)]
    job = _fresh(define)
    [job() for _ in range(3)]
    flow.checkpoint.save(str(tmp_path / "of"), format="oneflow")
    job = _fresh(define)
    flow.checkpoint.load(str(tmp_path / "of"))
    for want in full[3:]:
        np.testing.assert_array_equal(job(), want)


def test_the_position_is_a_store_entry_of_the_checkpoint(tmp_path):
    job = _fresh(_define_random)
    for _ in range(4):
        job()
    flow.checkpoint.save(str(tmp_path / "c"))
    entry = flow.checkpoint.get(str(tmp_path / "c"))["System-Data-train"]
    assert entry.dtype == np.uint8
    position = json.loads(np.asarray(entry).tobytes().rstrip(b"\0"))
    assert position == {"batch": 4, "sources": []}  # the next batch, not the ones read ahead


def test_loading_rewinds_a_pipeline_that_ran_on(tmp_path):
    job = _fresh(_define_random)
    job()
    flow.checkpoint.save(str(tmp_path / "c"))
    after = [job() for _ in range(3)]
    flow.checkpoint.load(str(tmp_path / "c"))
    again = [job() for _ in range(3)]
    for x, y in zip(after, again):
        np.testing.assert_array_equal(x, y)


def test_a_bad_position_loads_nothing(tmp_path):
    job = _fresh(_define_random)
    job()
    values = {k: np.asarray(v) for k, v in flow.get_all_variables().items()}
    bad = dict(values)
    bad["System-Data-train"] = np.zeros_like(values["System-Data-train"])  # not JSON
    with pytest.raises(ValueError, match="System-Data-train"):
        flow.load_variables(bad)
    flow.checkpoint.save(str(tmp_path / "c"), bad)
    with pytest.raises(CheckpointError, match="System-Data-train"):
        flow.checkpoint.load(str(tmp_path / "c"))
    np.testing.assert_array_equal(job(), next(_batches_from(1)))  # still the second batch


def _batches_from(start):
    it = flow.data.iterate(
        flow.data.decode_random(
            (4,), flow.float32, batch_size=8, initializer=flow.random_normal_initializer()
        )
    )
    for _ in range(start):
        next(it)
    return it

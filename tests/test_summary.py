"""Seeing training: ``function_config().summary``, ``flow.summary`` ops, ``jobflow summary``.

Event files are read back with TensorBoard's own reader (``event_accumulator``) and with
the CLI's reader; values are checked against ``job.last_info`` of the same calls.
"""

import pathlib

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.cli import main as cli
from jobflow._src.cli import summary as summary_cli
from jobflow._src.ops import summary as summary_ops
from jobflow._src.runtime import info_summary

ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

OVERFLOW = np.array([np.inf, 1.0], np.float32)
CLEAN = np.array([1.0, 1.0], np.float32)


def scale_job(logdir, every=1, **opt_kwargs):
    """``loss = sum(w * x)`` with a dynamic loss scale: an inf in ``x`` skips the step."""
    cfg = flow.function_config().summary(logdir, every_n_steps=every)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(w * x)
        sched = flow.optimizer.PiecewiseConstantScheduler([10, 30], [0.1, 0.01, 0.001])
        policy = flow.optimizer.loss_scale.dynamic_loss_scale(initial_loss_scale=1024, increment_period=4)
        flow.optimizer.SGD(sched, loss_scale_policy=policy, **opt_kwargs).minimize(loss)
        return loss

    return train


def accumulate(logdir):
    acc = ea.EventAccumulator(str(logdir), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0})
    acc.Reload()
    return acc


def same(a, b) -> bool:
    """float32 equality, NaN equal to NaN (TensorBoard stores float32 scalars)."""
    return np.array_equal(np.float32(a), np.float32(b), equal_nan=True)


OVERFLOW_STEPS = {3, 4, 17, 40}


def test_fifty_steps_with_skips_match_last_info(tmp_path):
    train = scale_job(tmp_path)
    infos = []
    for i in range(50):
        train(OVERFLOW if i in OVERFLOW_STEPS else CLEAN)
        infos.append(train.last_info)
    flow.sync_default_session()
    assert [i["skipped"] for i in infos] == [i in OVERFLOW_STEPS for i in range(50)]
    assert infos[-1]["step"] == 49 - len(OVERFLOW_STEPS)  # the counter the last update used
    acc = accumulate(tmp_path)
    keys = [k for k in infos[0] if k != "step"]
    assert {"loss", "lr", "loss_scale", "skipped", "global_grad_norm"} <= set(keys)
    assert sorted(acc.Tags()["scalars"]) == sorted(f"train/{k}" for k in keys)
    for key in keys:
        events = acc.Scalars(f"train/{key}")
        assert [e.step for e in events] == list(range(50)), key  # the call index, skips included
        for e, info in zip(events, infos):
            assert same(e.value, float(info[key])), (key, e.step, e.value, info[key])
    # the CLI's reader agrees with TensorBoard's
    ours = summary_cli.read_scalars(str(tmp_path))
    for key in keys:
        steps, values = ours[(".", f"train/{key}")]
        assert list(steps) == list(range(50))
        assert all(same(v, float(i[key])) for v, i in zip(values, infos))


def test_every_n_steps_and_run_steps_write_each_step(tmp_path):
    train = scale_job(tmp_path, every=3)
    for _ in range(4):
        train(CLEAN)
    train.run_steps(np.stack([CLEAN] * 5))  # calls 4..8
    last = train.last_info
    flow.sync_default_session()
    events = accumulate(tmp_path).Scalars("train/loss")
    assert [e.step for e in events] == [0, 3, 6]
    train.run_steps(np.stack([CLEAN] * 4))  # calls 9..12
    flow.summary.flush_summary_writer()
    events = accumulate(tmp_path).Scalars("train/lr")
    assert [e.step for e in events] == [0, 3, 6, 9, 12]
    assert last["step"] == 8


def test_the_call_index_continues_after_a_checkpoint(tmp_path):
    train = scale_job(tmp_path / "a")
    for i in range(6):
        train(OVERFLOW if i == 2 else CLEAN)
    flow.checkpoint.save(str(tmp_path / "ckpt"))
    flow.clear_default_session()
    train = scale_job(tmp_path / "b")
    flow.checkpoint.load(str(tmp_path / "ckpt"))
    train(CLEAN)
    flow.sync_default_session()
    assert [e.step for e in accumulate(tmp_path / "b").Scalars("train/loss")] == [6]


def test_predict_jobs_and_other_processes_write_nothing(tmp_path, monkeypatch):
    cfg = flow.function_config().summary(tmp_path / "p")

    @flow.global_function(type="predict", function_config=cfg)
    def predict(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x * 2

    predict(CLEAN)
    assert predict._recorder is None
    monkeypatch.setattr(info_summary.jax, "process_index", lambda: 1)
    train = scale_job(tmp_path / "t")
    train(CLEAN)
    assert train._recorder is None and not (tmp_path / "t").exists()


class FakeInfo:
    """A PackedInfo whose step finishes when the test says so."""

    num_steps = 1

    def __init__(self, step):
        self.step, self.ready, self.reads = step, False, 0

    def copy_to_host_async(self):
        pass

    def is_ready(self):
        return self.ready

    def rows(self):
        self.reads += 1
        return [{"step": np.int32(self.step), "loss": np.float32(self.step / 2)}]


def test_the_recorder_never_waits_for_an_unfinished_step(tmp_path):
    rec = info_summary.InfoRecorder("job", tmp_path)
    infos = [FakeInfo(i) for i in range(3)]
    rec.record(infos[0])
    rec.record(infos[1])
    assert [i.reads for i in infos] == [0, 0, 0]  # nothing finished: nothing read
    infos[0].ready = True
    rec.record(infos[2])
    assert [i.reads for i in infos] == [1, 0, 0]  # in order: 1 is not done, so 2 waits too
    many = [FakeInfo(i) for i in range(3, 3 + info_summary.MAX_PENDING + 1)]
    for info in many:
        rec.record(info)
    assert infos[1].reads == 1  # past MAX_PENDING unfinished calls the oldest is waited for
    rec.close()
    assert all(i.reads == 1 for i in infos + many)
    events = [e for e in summary_cli.read_events(rec.path) if e.summary.value]
    assert [e.step for e in events] == list(range(3 + len(many)))
    assert [e.summary.value[0].tag for e in events[:1]] == ["job/loss"]


def test_oneflow_summary_ops_in_jobs(tmp_path):
    @flow.global_function()
    def create_writer():
        flow.summary.create_summary_writer(str(tmp_path))

    @flow.global_function()
    def scalar_job(
        value: tp.Numpy.Placeholder((1,)),
        step: tp.Numpy.Placeholder((1,), dtype=flow.int64),
        tag: tp.Numpy.Placeholder((4,), dtype=flow.int8),
    ):
        flow.summary.scalar(value, step, tag)

    @flow.global_function()
    def hist_job(value: tp.Numpy.Placeholder((100,)), step: tp.Numpy.Placeholder((1,), dtype=flow.int64)):
        flow.summary.histogram(value, step, "weights")
        flow.summary.image(flow.reshape(flow.cast(value, flow.uint8), (1, 10, 10, 1)), step=step)
        flow.summary.flush_summary_writer()

    create_writer()
    tag = np.frombuffer(b"acc1", np.int8)
    for i in range(5):
        scalar_job(np.array([i / 10], np.float32), np.array([i], np.int64), tag)
    values = np.arange(100, dtype=np.float32)
    hist_job(values, np.array([7], np.int64))
    flow.sync_default_session()
    acc = accumulate(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("acc1")] == [(i, np.float32(i / 10)) for i in range(5)]
    (hist,) = acc.Histograms("weights")
    assert hist.step == 7 and hist.histogram_value.num == 100 and hist.histogram_value.max == 99
    (img,) = acc.Images("image")
    assert img.step == 7 and (img.width, img.height) == (10, 10)


def test_summary_ops_outside_jobs_and_pb(tmp_path):
    from tensorboardX.proto.summary_pb2 import Summary

    flow.summary.create_summary_writer(tmp_path)
    flow.summary.scalar(np.float32(2.5), 3, "direct")
    proto = Summary(value=[Summary.Value(tag="from_pb", simple_value=4.0)]).SerializeToString()
    flow.summary.pb(np.frombuffer(proto, np.int8), step=np.array([9], np.int64))
    flow.summary.flush_summary_writer()
    acc = accumulate(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("direct")] == [(3, 2.5)]
    assert [(e.step, e.value) for e in acc.Scalars("from_pb")] == [(9, 4.0)]


def test_bad_arguments_say_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setattr(summary_ops, "_default", None)
    with pytest.raises(RuntimeError, match=r"create_summary_writer\(logdir\) first"):
        flow.summary.scalar(1.0, 0, "x")
    with pytest.raises(TypeError, match=r"summary\(logdir\) must be a directory path; got 123"):
        flow.function_config().summary(123)
    with pytest.raises(ValueError, match=r"every_n_steps\) expects an int >= 1; got 0"):
        flow.function_config().summary(tmp_path, every_n_steps=0)
    assert flow.function_config().summary(tmp_path).summary(None).settings["summary"] is None
    flow.summary.create_summary_writer(tmp_path)
    with pytest.raises(ValueError, match=r"scalar\(value\) must hold one number; got shape \(3,\)"):
        flow.summary.scalar(np.zeros(3), 0, "x")
    with pytest.raises(TypeError, match=r"scalar\(tag\) must be a string or an int8 array.*1.5"):
        flow.summary.scalar(1.0, 0, 1.5)
    with pytest.raises(TypeError, match=r"scalar\(step\) must be one integer; got 0.5"):
        flow.summary.scalar(1.0, 0.5, "x")
    with pytest.raises(ValueError, match=r"image\(value\) must be \(N, H, W, C\).*got shape \(4, 4\)"):
        flow.summary.image(np.zeros((4, 4), np.uint8), 0)


def test_cli_prints_the_curves_of_a_job(tmp_path, capsys):
    train = scale_job(tmp_path)
    for i in range(20):
        train(OVERFLOW if i == 5 else CLEAN)
    flow.sync_default_session()
    assert cli.main(["summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for tag in ("train/loss", "train/lr", "train/loss_scale", "train/skipped", "train/global_grad_norm"):
        assert tag in out
    row = next(line for line in out.splitlines() if "train/skipped " in line)
    assert "0..19" in row and "│     20 │" in row
    spark = row.split("│")[-2].strip()
    assert len(spark) == 20 and spark[5] == "█" and set(spark[:5] + spark[6:]) == {"▁"}
    assert cli.main(["summary", str(tmp_path), "--tag", "loss_scale"]) == 0
    out = capsys.readouterr().out
    assert "train/loss_scale" in out and "train/lr" not in out


def test_cli_errors(tmp_path, capsys):
    assert cli.main(["summary", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().out
    assert cli.main(["summary", str(tmp_path)]) == 1
    assert "no scalars" in capsys.readouterr().out
    f = summary_ops.open_event_file(tmp_path)
    f.scalars(0, {"a": 1.0})
    f.close()
    path = pathlib.Path(f.path)
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # inside the last record's body
    path.write_bytes(bytes(data))
    with pytest.raises(summary_cli.EventFileError, match="corrupt record"):
        summary_cli.read_scalars(str(tmp_path))


def test_progress_bar_shows_steps_loss_lr_and_rate(tmp_path):
    import io

    from rich.console import Console

    train = scale_job(tmp_path)
    out = io.StringIO()
    console = Console(file=out, width=150, force_terminal=False)
    with flow.progress(train, total=12, console=console, refresh_per_second=1000) as bar:
        for _ in bar.track(range(12)):
            train(CLEAN)
    text = out.getvalue()
    info = train.last_info
    assert "12/12" in text and "steps/s" in text
    assert f"loss {info['loss']:.4g}" in text and f"lr {info['lr']:.4g}" in text
    assert bar.info == info
    with pytest.raises(TypeError, match=r"flow.progress\(job\) expects a job.*got 3"):
        flow.progress(3)
    with pytest.raises(ValueError, match=r"flow.progress\(total\) must be an int >= 0 or None; got -1"):
        flow.progress(train, total=-1)


def test_a_train_job_with_both_kinds_of_summaries_flushing_inside(tmp_path):
    cfg = flow.function_config().summary(tmp_path / "info")
    flow.summary.create_summary_writer(tmp_path / "ops")

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((2,))):  # returns nothing: calls do not wait
        w = flow.get_variable("w", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(w * x)
        flow.summary.scalar(loss, 0, "loss_op")
        flow.summary.flush_summary_writer()  # must not wait for its own step
        flow.optimizer.SGD(0.1).minimize(loss)

    for _ in range(5):
        train(CLEAN)
    flow.sync_default_session()
    assert len(accumulate(tmp_path / "ops").Scalars("loss_op")) == 5
    assert [e.step for e in accumulate(tmp_path / "info").Scalars("train/loss")] == list(range(5))


def test_every_n_steps_reads_only_the_calls_it_writes(tmp_path):
    rec = info_summary.InfoRecorder("job", tmp_path, every_n_steps=3)
    infos = [FakeInfo(i + 5) for i in range(10)]  # call indices 5..14 (a resumed run)
    infos[0].ready = True
    rec.record(infos[0])  # read: it anchors the host's count of calls
    for info in infos[1:]:
        info.ready = True
        rec.record(info)
    rec.close()
    assert [i.reads for i in infos] == [1, 1, 0, 0, 1, 0, 0, 1, 0, 0]  # indices 6, 9, 12 (and 5)
    events = [e for e in summary_cli.read_events(rec.path) if e.summary.value]
    assert [e.step for e in events] == [6, 9, 12]


def test_jobflow_and_a_job_without_summaries_do_not_import_tensorboardx():
    """tensorboardX imports torch when it is installed (about 1.5 s): only summaries load it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, jobflow as flow, jobflow.typing as tp\n"
        "@flow.global_function(type='predict')\n"
        "def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:\n"
        "    return x * 2\n"
        "assert (job(np.ones(2, np.float32)) == 2).all()\n"
        "print(sorted(m for m in ('tensorboardX', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).parents[1],
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr

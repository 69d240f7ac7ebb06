"""Checkpoints: exact resume, save/get/load, checks on load, damage detection, the manager
and ``jobflow inspect``. (Atomicity: test_checkpoint_atomic.py; OneFlow's layout:
test_checkpoint_oneflow.py.)"""

import os
import re

import ml_dtypes
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.cli import main as cli
from jobflow.checkpoint import CheckpointError

STEP = "System-Train-TrainStep-train_job"
RNG = "System-RNG-train_job"


def define_jobs():
    """A dropout MLP trained by SGD with momentum on a warmup + cosine schedule."""

    @flow.global_function(type="train")
    def train_job(
        x: tp.Numpy.Placeholder((16, 8)), y: tp.Numpy.Placeholder((16,), dtype=flow.int32)
    ) -> tp.Numpy:
        init = flow.random_normal_initializer(stddev=0.5)
        h = flow.layers.dense(x, 32, activation=flow.nn.relu, kernel_initializer=init, name="fc1")
        h = flow.nn.dropout(h, rate=0.4)
        logits = flow.layers.dense(h, 4, kernel_initializer=init, name="fc2")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        sched = flow.optimizer.CosineScheduler(
            base_lr=0.3, steps=12, warmup=flow.optimizer.warmup.linear(3, 0.1)
        )
        flow.optimizer.SGD(sched, momentum=0.9).minimize(loss)
        return loss

    @flow.global_function(type="predict")
    def eval_job(x: tp.Numpy.Placeholder((16, 8))) -> tp.Numpy:
        h = flow.layers.dense(x, 32, activation=flow.nn.relu, name="fc1")
        return flow.layers.dense(h, 4, name="fc2")

    return train_job, eval_job


def batch(i):
    rng = np.random.default_rng(100 + i)
    return rng.normal(size=(16, 8)).astype(np.float32), rng.integers(0, 4, 16).astype(np.int32)


def train(job, steps):
    return [job(*batch(i)).copy() for i in steps]


def snapshot():
    return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}


def assert_bitwise_equal(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


# ---------------------------------------------------------------------------- exact resume


@pytest.mark.parametrize("fmt", ["jobflow", "oneflow"])
def test_resume_in_a_fresh_session_is_bitwise_identical(tmp_path, fmt):
    n, m = 4, 5
    path = tmp_path / "ckpt"
    train_job, _ = define_jobs()
    train(train_job, range(n))
    flow.checkpoint.save(path, format=fmt)
    saved = snapshot()
    losses = train(train_job, range(n, n + m))
    expected = snapshot()
    assert train_job.last_info["step"] == n + m - 1

    flow.clear_default_session()
    train_job, _ = define_jobs()
    report = flow.checkpoint.load(path)
    assert sorted(report.loaded) == sorted(saved) and report.ignored == ()
    assert_bitwise_equal(snapshot(), saved)
    resumed = train(train_job, range(n, n + m))
    assert_bitwise_equal(snapshot(), expected)
    for a, b in zip(losses, resumed):
        assert a.tobytes() == b.tobytes()

    # The RNG key and the step counter matter: without them the continuation differs.
    for name in (RNG, STEP):
        flow.clear_default_session()
        train_job, _ = define_jobs()
        fresh = snapshot()[name]
        flow.load_variables({k: v for k, v in flow.checkpoint.get(path).items() if k != name})
        assert snapshot()[name].tobytes() == fresh.tobytes()
        train(train_job, range(n, n + m))
        assert snapshot()["fc1-weight"].tobytes() != expected["fc1-weight"].tobytes(), name


def test_checkpoint_holds_every_store_variable_and_get_all_variables_matches(tmp_path):
    train_job, eval_job = define_jobs()
    train(train_job, range(2))
    path = tmp_path / "c.safetensors"
    flow.checkpoint.save(path)
    values = flow.checkpoint.get(path)
    assert (
        sorted(values)
        == sorted(flow.get_all_variables())
        == [
            RNG,
            STEP,
            "fc1-bias",
            "fc1-bias-momentum",
            "fc1-weight",
            "fc1-weight-momentum",
            "fc2-bias",
            "fc2-bias-momentum",
            "fc2-weight",
            "fc2-weight-momentum",
        ]
    )
    assert_bitwise_equal({k: v.numpy() for k, v in values.items()}, snapshot())
    assert values[STEP].shape == () and int(values[STEP]) == 2
    # OneFlow's idiom: load_variables(get(path)) restores the saved values
    x, _ = batch(0)
    before = eval_job(x).copy()
    train(train_job, range(2, 4))
    assert eval_job(x).tobytes() != before.tobytes()
    flow.load_variables(flow.checkpoint.get(path))
    assert eval_job(x).tobytes() == before.tobytes()
    assert int(flow.get_all_variables()[STEP]) == 2


def test_save_discovers_jobs_that_never_ran_and_saves_a_var_dict(tmp_path):
    define_jobs()
    flow.checkpoint.save(tmp_path / "init.safetensors")  # OneFlow initializes the session first
    assert int(flow.checkpoint.get(tmp_path / "init.safetensors")[STEP]) == 0
    values = {
        "a": np.arange(6, dtype=np.int8).reshape(2, 3),
        "b": np.array([1.5, -2], ml_dtypes.bfloat16),
        "c": np.array(True),
        "d": np.zeros((0, 4), np.float16),
        "e": np.arange(3, dtype=np.uint32),
    }
    flow.checkpoint.save(tmp_path / "some.safetensors", values)
    got = flow.checkpoint.get(tmp_path / "some.safetensors")
    assert_bitwise_equal({k: v.numpy() for k, v in got.items()}, values)
    info = flow.checkpoint.describe(tmp_path / "some.safetensors")
    assert [(v.name, v.shape, v.dtype, v.nbytes) for v in info.variables] == [
        ("a", (2, 3), "int8", 6),
        ("b", (2,), "bfloat16", 4),
        ("c", (), "bool", 1),
        ("d", (0, 4), "float16", 0),
        ("e", (3,), "uint32", 12),
    ]


def test_any_safetensors_file_can_be_read_and_loaded(tmp_path):
    from safetensors.numpy import save_file

    train_job, eval_job = define_jobs()
    eval_job.compile()
    w = np.full((32, 8), 0.25, np.float32)
    save_file({"fc1-weight": w}, str(tmp_path / "foreign.safetensors"))
    assert flow.checkpoint.get(tmp_path / "foreign.safetensors")["fc1-weight"].tobytes() == w.tobytes()
    flow.checkpoint.load(tmp_path / "foreign.safetensors", allow_missing=True)
    assert flow.get_all_variables()["fc1-weight"].tobytes() == w.tobytes()


# ---------------------------------------------------------------------------- save arguments


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "c.safetensors"
    flow.checkpoint.save(path, {"a": np.zeros(2, np.float32)})
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        flow.checkpoint.save(path, {"a": np.ones(2, np.float32)})
    assert path.read_bytes() == before
    flow.checkpoint.save(path, {"a": np.ones(2, np.float32)}, overwrite=True)
    np.testing.assert_array_equal(flow.checkpoint.get(path)["a"], [1, 1])
    empty = tmp_path / "empty_dir"
    empty.mkdir()  # an empty directory counts as nothing, as in OneFlow
    flow.checkpoint.save(empty, {"a": np.zeros(2, np.float32)})
    assert empty.is_dir() and sorted(p.name for p in empty.iterdir()) == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors", "empty_dir"]


def test_save_rejects_bad_arguments_and_writes_nothing(tmp_path):
    path = tmp_path / "c"
    with pytest.raises(
        ValueError, match=r"checkpoint.save\(format\) must be one of 'jobflow', 'oneflow'; got 'npz'"
    ):
        flow.checkpoint.save(path, {"a": np.zeros(1)}, format="npz")
    with pytest.raises(TypeError, match=r"overwrite\) must be True or False; got 'yes'"):
        flow.checkpoint.save(path, {"a": np.zeros(1)}, overwrite="yes")
    with pytest.raises(TypeError, match=r"var_dict\) must be a dict name -> array or None; got list"):
        flow.checkpoint.save(path, [np.zeros(1)])
    with pytest.raises(TypeError, match=r"path\) must be a str or os.PathLike; got 3"):
        flow.checkpoint.save(3)
    with pytest.raises(
        CheckpointError,
        match=r"nothing was written; 2 problems:\n  3: variable names must be str"
        r"\n  s: dtype <U1 cannot be stored \(numbers and booleans only\)$",
    ):
        flow.checkpoint.save(path, {"s": np.array(["x"]), 3: np.zeros(1), "ok": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"'a/b': not usable as a OneFlow variable directory name"):
        flow.checkpoint.save(path, {"a/b": np.zeros(1)}, format="oneflow")
    with pytest.raises(CheckpointError, match=r"c: dtype complex64 has no OneFlow DataType"):
        flow.checkpoint.save(path, {"c": np.zeros(1, np.complex64)}, format="oneflow")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- checks on load


def test_load_checks_every_variable_and_changes_nothing_on_error(tmp_path):
    train_job, _ = define_jobs()
    train(train_job, range(2))
    good = snapshot()
    bad = dict(good)
    bad["fc1-weight"] = np.zeros((8, 32), np.float32)  # transposed shape
    bad["fc2-bias"] = good["fc2-bias"].astype(np.float16)
    bad["stranger"] = np.zeros(3, np.float32)
    del bad["fc2-weight-momentum"]
    flow.checkpoint.save(tmp_path / "bad.safetensors", bad)
    train(train_job, range(2, 3))
    current = snapshot()
    with pytest.raises(CheckpointError) as e:
        flow.checkpoint.load(tmp_path / "bad.safetensors", ignore_mismatch=False)
    assert e.value.problems == [
        "unknown variables (ignore_mismatch=False): stranger",
        "fc1-weight: expected shape (32, 8) dtype float32, got shape (8, 32) dtype float32",
        "fc2-bias: expected shape (4,) dtype float32, got shape (4,) dtype float16",
        "variables with no value: fc2-weight-momentum",
    ]
    assert "nothing was loaded, the variables are unchanged; 4 problems:" in str(e.value)
    assert_bitwise_equal(snapshot(), current)
    # ignore_mismatch / allow_missing relax only their own checks
    del bad["fc1-weight"], bad["fc2-bias"]
    flow.checkpoint.save(tmp_path / "partial.safetensors", bad)
    with pytest.raises(
        CheckpointError, match=r"variables with no value: fc1-weight, fc2-bias, fc2-weight-momentum$"
    ):
        flow.checkpoint.load(tmp_path / "partial.safetensors")
    report = flow.checkpoint.load(tmp_path / "partial.safetensors", allow_missing=True)
    assert (
        report.ignored == ("stranger",) and "fc1-bias" in report.loaded and "fc1-weight" not in report.loaded
    )
    with pytest.raises(TypeError, match=r"checkpoint.load\(allow_missing\) must be True or False; got 1"):
        flow.checkpoint.load(tmp_path / "partial.safetensors", allow_missing=1)


def test_load_without_the_jobs_defined_is_an_error(tmp_path):
    flow.checkpoint.save(tmp_path / "c.safetensors", {"w": np.zeros(2, np.float32)})
    with pytest.raises(
        CheckpointError, match=r"none of the checkpoint's 1 variables is defined in this session"
    ):
        flow.checkpoint.load(tmp_path / "c.safetensors")
    with pytest.raises(FileNotFoundError, match=r"checkpoint.load\('.*nowhere'\): no such file or directory"):
        flow.checkpoint.load(tmp_path / "nowhere")
    (tmp_path / "plain_dir").mkdir()
    (tmp_path / "plain_dir" / "notes.txt").write_text("hi")
    with pytest.raises(
        CheckpointError,
        match=r"not a checkpoint; 1 problem:\n  a directory without model.safetensors \(a jobflow checkpoint\) or OneFlow",
    ):
        flow.checkpoint.get(tmp_path / "plain_dir")


def _saved_lenet_like(tmp_path):
    """Saves the jobs' variables (discovered, not compiled) with step counter 2, then
    changes a weight in the store, so that any partial load would show."""
    train_job, _ = define_jobs()
    flow.load_variables({STEP: np.array(2, np.int32)})
    path = tmp_path / "c.safetensors"
    flow.checkpoint.save(path)
    flow.load_variables({"fc1-weight": np.full((32, 8), 9.0, np.float32)})
    return train_job, path


def _data_offset(path, name):
    from jobflow._src.io.safetensors_file import _parse_header

    header, n, _ = _parse_header(str(path))
    return 8 + n + header[name]["data_offsets"][0]


def test_corrupted_bytes_are_named_and_the_store_is_unchanged(tmp_path):
    train_job, path = _saved_lenet_like(tmp_path)
    data = bytearray(path.read_bytes())
    for name in ("fc1-weight", "fc2-bias-momentum"):
        data[_data_offset(path, name) + 2] ^= 0x40
    path.write_bytes(bytes(data))
    current = snapshot()
    with pytest.raises(CheckpointError) as e:
        flow.checkpoint.load(path)
    assert [p.split(":")[0] for p in e.value.problems] == ["fc1-weight", "fc2-bias-momentum"]
    assert all("checksum mismatch (data corrupted)" in p for p in e.value.problems)
    with pytest.raises(CheckpointError, match=r"the checkpoint is damaged; 2 problems"):
        flow.checkpoint.get(path)
    assert_bitwise_equal(snapshot(), current)


DAMAGES = [
    (lambda b: b[:-7], r"the file has \d+ bytes but its header describes \d+: it is truncated"),
    (lambda b: b[:100], r"its header alone claims \d+: it is truncated"),
    (lambda b: b[:5], r"the file has 5 bytes; it is truncated \(no safetensors header\)"),
    (lambda b: b + b"\0\0", r"it has trailing bytes"),
    (lambda b: b[:8] + b"{garbage" + b[16:], r"its header is damaged or it is not a safetensors file"),
]


def test_truncated_or_garbled_files_give_clear_errors(tmp_path):
    train_job, path = _saved_lenet_like(tmp_path)
    intact = path.read_bytes()
    current = snapshot()
    for damage, message in DAMAGES:
        path.write_bytes(damage(intact))
        with pytest.raises(CheckpointError, match=message):
            flow.checkpoint.load(path)
        with pytest.raises(CheckpointError, match=message):
            flow.checkpoint.get(path)
        assert_bitwise_equal(snapshot(), current)
        info = flow.checkpoint.describe(path)
        assert info.variables == () and len(info.problems) == 1 and re.search(message, info.problems[0])


def test_damaged_metadata_is_reported(tmp_path):
    from safetensors.numpy import save_file

    path = str(tmp_path / "c.safetensors")
    for key in ("crc32c", "crc32"):  # jobflow's checksums, and those of earlier versions
        save_file(
            {"a": np.zeros(2, np.float32)},
            path,
            metadata={"format": "jobflow.checkpoint", "format_version": "1", key: "{not json", "kinds": "{}"},
        )
        with pytest.raises(
            CheckpointError, match=rf"the metadata entry '{key}' is not valid JSON.*\n  a: has no checksum"
        ):
            flow.checkpoint.get(path)
    save_file(
        {"a": np.zeros(2, np.float32)}, path, metadata={"format": "jobflow.checkpoint", "format_version": "9"}
    )
    with pytest.raises(
        CheckpointError, match=r"format version '9' is not supported \(this jobflow reads '1'\)"
    ):
        flow.checkpoint.get(path)


# ---------------------------------------------------------------------------- manager


def test_checkpoint_manager_saves_every_n_steps_keeps_the_last_k_and_restores(tmp_path):
    train_job, _ = define_jobs()
    manager = flow.checkpoint.CheckpointManager(tmp_path / "ckpts", max_to_keep=2, save_interval_steps=2)
    saved_at, states = [], {}
    for i in range(7):
        train_job(*batch(i))
        if manager.save():
            saved_at.append(manager.current_step())
            states[manager.current_step()] = snapshot()
    assert saved_at == [2, 4, 6]
    assert manager.all_steps() == [4, 6] and manager.latest_step() == 6
    assert sorted(os.listdir(tmp_path / "ckpts")) == [
        "ckpt-00000004.safetensors",
        "ckpt-00000006.safetensors",
    ]
    assert not manager.should_save() and manager.current_step() == 7
    assert not manager.save(6)  # already saved
    assert manager.save(6, force=True)  # replaces checkpoint 6 with the current state (step 7)
    expected = snapshot()

    flow.clear_default_session()
    train_job, _ = define_jobs()
    manager = flow.checkpoint.CheckpointManager(
        tmp_path / "ckpts", max_to_keep=2, save_interval_steps=2, job=train_job
    )
    assert manager.restore(4) == 4
    assert_bitwise_equal(snapshot(), states[4])
    assert manager.restore() == 6
    assert_bitwise_equal(snapshot(), expected)
    with pytest.raises(
        FileNotFoundError, match=r"restore\(step=2\): no such checkpoint .* \(steps: \[4, 6\]\)"
    ):
        manager.restore(2)


def test_checkpoint_manager_oneflow_format_and_bad_arguments(tmp_path):
    flow.checkpoint.save(
        tmp_path / "x", {"System-Train-TrainStep-a": np.array(3, np.int32)}
    )  # not in the manager's dir
    manager = flow.checkpoint.CheckpointManager(tmp_path / "of", max_to_keep=None, format="oneflow")
    assert manager.all_steps() == [] and manager.latest_step() is None
    with pytest.raises(FileNotFoundError, match=r"restore\(\): no checkpoints in"):
        manager.restore()
    with pytest.raises(
        RuntimeError, match=r"cannot tell which step counter numbers the checkpoints \(found: none\)"
    ):
        manager.save()
    define_jobs()  # discovered by save
    for step in (0, 3, 5):
        assert manager.save(step)
    assert manager.all_steps() == [0, 3, 5]
    assert sorted(os.listdir(tmp_path / "of")) == ["ckpt-00000000", "ckpt-00000003", "ckpt-00000005"]
    assert (tmp_path / "of" / "ckpt-00000005" / "snapshot_done").exists()
    with pytest.raises(ValueError, match=r"max_to_keep\) must be None or an int >= 1; got 0"):
        flow.checkpoint.CheckpointManager(tmp_path, max_to_keep=0)
    with pytest.raises(ValueError, match=r"save_interval_steps\) must be an int >= 1; got 2.5"):
        flow.checkpoint.CheckpointManager(tmp_path, save_interval_steps=2.5)
    with pytest.raises(ValueError, match=r"CheckpointManager\(format\) must be one of"):
        flow.checkpoint.CheckpointManager(tmp_path, format="zip")
    with pytest.raises(ValueError, match=r"save\(step\) must be an int >= 0 or None; got -1"):
        manager.save(-1)
    with pytest.raises(RuntimeError, match=r"job 'nope' has no step counter yet"):
        flow.checkpoint.CheckpointManager(tmp_path, job="nope").current_step()


# ---------------------------------------------------------------------------- jobflow inspect


def test_inspect_lists_variables_and_step_counters(tmp_path, capsys):
    train_job, path = _saved_lenet_like(tmp_path)
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in (
        "jobflow format",
        "fc1-weight",
        "model",
        "slot",
        "system",
        "(32, 8)",
        "float32",
        "1.0 KiB",
        "uint32",
        "10 variables",
        "step counters",
        "train_job",
    ):
        assert text in out, text
    row = next(line for line in out.splitlines() if "fc1-weight " in line)
    assert "(32, 8)" in row and "float32" in row and "1.0 KiB" in row  # 32*8*4 bytes
    counter_row = next(line for line in out.splitlines() if "train_job" in line and "System" not in line)
    assert counter_row.split("│")[2].strip() == "2"

    assert cli.main(["inspect", str(path), "--filter", "momentum$", "--verify"]) == 0
    out = capsys.readouterr().out
    assert (
        "4 of 10 variables" in out and "verified: every variable is intact" in out and "fc1-bias " not in out
    )

    data = bytearray(path.read_bytes())
    data[_data_offset(path, "fc2-weight")] ^= 1
    path.write_bytes(bytes(data))
    assert cli.main(["inspect", str(path)]) == 0  # headers only
    capsys.readouterr()
    assert cli.main(["inspect", str(path), "--verify"]) == 1
    assert "problem: fc2-weight: checksum mismatch" in capsys.readouterr().err
    assert cli.main(["inspect", str(tmp_path / "missing")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    assert cli.main(["inspect", str(path), "--filter", "("]) == 1
    assert "not a valid regular expression" in capsys.readouterr().err


def test_human_size():
    from jobflow._src.cli.inspect import human_size

    assert [human_size(n) for n in (0, 1023, 1024, 1536, 5 * 2**20, 3 * 2**30, 2**41)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "2.0 TiB",
    ]

"""OneFlow's legacy checkpoint layout: ``<name>/out`` (raw bytes) + ``<name>/meta``
(protobuf text) + ``snapshot_done``. Directories written by hand exactly as OneFlow's
``check_point_v2.SaveVarDict`` writes them are imported; exports are checked byte by byte."""

import os

import ml_dtypes
import numpy as np
import pytest

import jobflow as flow
from jobflow._src.io.oneflow_layout import DATA_TYPES, parse_meta
from jobflow.checkpoint import CheckpointError, RawVariable
from tests.helpers import data, linear_regression_jobs

STEP = "System-Train-TrainStep-train"


def oneflow_meta(shape, data_type):
    """``text_format.MessageToString(VariableMetaInfo)`` as OneFlow writes it."""
    return "shape {\n" + "".join(f"  dim: {d}\n" for d in shape) + "}\n" + f"data_type: {data_type}\n"


def write_oneflow_var(root, name, array, data_type, meta=True):
    os.makedirs(root / name)
    (root / name / "out").write_bytes(np.ascontiguousarray(array).tobytes())
    if meta:
        (root / name / "meta").write_text(oneflow_meta(array.shape, data_type))


def oneflow_dir(root, step=100, meta=True):
    """What OneFlow saves for the linear-regression job after ``step`` momentum-SGD steps."""
    w = np.array([0.5, -1.0, 2.0], np.float32)
    buf = np.array([0.01, 0.02, -0.03], np.float32)
    write_oneflow_var(root, "w", w, "kFloat", meta)
    write_oneflow_var(root, "w-momentum", buf, "kFloat", meta)
    write_oneflow_var(root, STEP, np.array([step], np.int64), "kInt64", meta)
    (root / "snapshot_done").write_text("")
    return w, buf


def test_import_a_directory_written_as_oneflow_writes_it(tmp_path):
    root = tmp_path / "of_model"
    w, buf = oneflow_dir(root)
    sched = flow.optimizer.PiecewiseConstantScheduler([50], [0.1, 0.01])
    train, _ = linear_regression_jobs(lr=sched, momentum=0.9)

    values = flow.checkpoint.get(root)
    assert sorted(values) == [STEP, "w", "w-momentum"]
    assert values[STEP].shape == () and values[STEP].dtype == np.int32 and int(values[STEP]) == 100
    flow.load_variables(values)  # OneFlow's idiom
    assert int(flow.get_all_variables()[STEP]) == 100
    np.testing.assert_array_equal(flow.get_all_variables()["w-momentum"], buf)

    # the imported counter drives the schedule, the imported momentum the update:
    # buf' = 0.9 buf - lr(100) g, w' = w + buf', g = d/dw mean((x.w - y)^2)
    x, y = data()
    train(x, y)
    assert train.last_info["step"] == 100 and train.last_lr == pytest.approx(0.01)
    g = (2.0 / len(y)) * x.T.astype(np.float64) @ (x.astype(np.float64) @ w - y)
    new_buf = 0.9 * buf - 0.01 * g
    np.testing.assert_allclose(flow.get_all_variables()["w"], w + new_buf, rtol=1e-5, atol=1e-6)
    assert int(flow.get_all_variables()[STEP]) == 101


def test_oneflow_has_no_rng_key_so_an_exact_load_reports_it(tmp_path):
    root = tmp_path / "of_model"
    oneflow_dir(root)

    @flow.global_function(type="train")
    def dropout_job(x: flow.typing.Numpy.Placeholder((8, 3))) -> flow.typing.Numpy:
        w = flow.get_variable("w", (3,), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_sum(flow.nn.dropout(x, rate=0.5) * flow.reshape(w, (1, 3)), axis=1)
        flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
        return loss

    with pytest.raises(
        CheckpointError,
        match=r"variables with no value: System-RNG-dropout_job, "
        r"System-Train-TrainStep-dropout_job$",
    ):
        flow.checkpoint.load(root)
    report = flow.checkpoint.load(root, allow_missing=True)
    assert report.loaded == ("w", "w-momentum") and report.ignored == (STEP,)


def test_export_is_byte_for_byte_what_oneflow_writes(tmp_path):
    train, _ = linear_regression_jobs(momentum=0.9)
    x, y = data()
    for _ in range(3):
        train(x, y)
    store = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    root = tmp_path / "export"
    flow.checkpoint.save(root, format="oneflow")
    assert sorted(os.listdir(root)) == [STEP, "snapshot_done", "w", "w-momentum"]
    assert (root / "snapshot_done").read_bytes() == b""
    assert (root / STEP / "meta").read_text() == "shape {\n  dim: 1\n}\ndata_type: kInt64\n"
    assert (root / STEP / "out").read_bytes() == np.array([3], np.int64).tobytes()
    for name in ("w", "w-momentum"):
        assert sorted(os.listdir(root / name)) == ["meta", "out"]
        assert (root / name / "meta").read_text() == "shape {\n  dim: 3\n}\ndata_type: kFloat\n"
        assert (root / name / "out").read_bytes() == store[name].tobytes()
    # and back: the round trip gives the store exactly
    got = flow.checkpoint.get(root)
    assert sorted(got) == sorted(store)
    for name, value in store.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape
        assert got[name].tobytes() == value.tobytes()


def test_every_data_type_round_trips_with_oneflows_enum(tmp_path):
    values = {
        "f32": np.array([[1.5, -2.0]], np.float32),
        "f16": np.array([0.5], np.float16),
        "bf16": np.array([1.0, -3.5], ml_dtypes.bfloat16),
        "i8": np.array([-3], np.int8),
        "u8": np.array([250], np.uint8),
        "i32": np.array([-7, 7], np.int32),
        "u32": np.array([1, 2**32 - 1], np.uint32),
        "b": np.array([True, False]),
        "i16": np.array([-300], np.int16),
        "empty": np.zeros((0, 2), np.float32),
    }
    flow.checkpoint.save(tmp_path / "d", values, format="oneflow")
    enums = {
        name: (tmp_path / "d" / name / "meta").read_text().split("data_type: ")[1].strip() for name in values
    }
    assert enums == {
        "f32": "kFloat",
        "f16": "kFloat16",
        "bf16": "kBFloat16",
        "i8": "kInt8",
        "u8": "kUInt8",
        "i32": "kInt32",
        "u32": "kUInt32",
        "b": "kBool",
        "i16": "kInt16",
        "empty": "kFloat",
    }
    got = flow.checkpoint.get(tmp_path / "d")
    for name, value in values.items():
        assert got[name].dtype == value.dtype and got[name].tobytes() == value.tobytes(), name
    # OneFlow's enum numbers (oneflow/core/common/data_type.proto)
    assert {k: v[0] for k, v in DATA_TYPES.items()} == {
        "kChar": 1,
        "kFloat": 2,
        "kDouble": 3,
        "kInt8": 4,
        "kInt32": 5,
        "kInt64": 6,
        "kUInt8": 7,
        "kFloat16": 9,
        "kBFloat16": 11,
        "kBool": 12,
        "kUInt16": 13,
        "kUInt32": 14,
        "kUInt64": 15,
        "kInt16": 17,
    }


def test_64_bit_values_become_what_jax_stores(tmp_path):
    root = tmp_path / "d"
    write_oneflow_var(root, "a", np.array([1, -2], np.int64), "kInt64")
    write_oneflow_var(root, "b", np.array([0.1], np.float64), "kDouble")
    write_oneflow_var(root, "big", np.array([2**40], np.int64), "kInt64")
    write_oneflow_var(root, "System-Foo", np.array([0.5], np.float32), "kFloat")
    write_oneflow_var(root, "c", np.array([7], np.int8), "kChar")
    (root / "snapshot_done").write_text("")
    with pytest.raises(
        CheckpointError,
        match=r"1 problem:\n  big: int64 values in \[1099511627776, 1099511627776\] "
        r"do not fit int32, the dtype JAX stores",
    ):
        flow.checkpoint.get(root)
    (root / "big" / "out").write_bytes(np.array([5], np.int64).tobytes())
    got = flow.checkpoint.get(root)
    assert got["a"].dtype == np.int32 and got["a"].tolist() == [1, -2]
    assert got["b"].dtype == np.float32 and got["b"][0] == np.float32(0.1)
    assert got["System-Foo"].shape == () and got["c"].dtype == np.int8


def test_damaged_oneflow_directories_list_every_problem_and_change_nothing(tmp_path):
    root = tmp_path / "of_model"
    oneflow_dir(root)
    (root / "w" / "out").write_bytes(b"\0" * 8)  # 3 floats need 12 bytes
    (root / "w-momentum" / "meta").write_text("shape { dim: 3 }\ndata_type: kQuaternion\n")
    (root / "snapshot_done").unlink()
    train, _ = linear_regression_jobs(momentum=0.9)
    flow.load_variables({"w": np.array([1, 2, 3], np.float32)})
    before = {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}
    with pytest.raises(CheckpointError) as e:
        flow.checkpoint.load(root)
    assert len(e.value.problems) == 3
    assert e.value.problems[0].startswith(
        "no snapshot_done file: the save that wrote this directory did not finish"
    )
    assert e.value.problems[1] == "w: out has 8 bytes; meta says shape (3,) float32 = 12 bytes (truncated)"
    assert e.value.problems[2].startswith("w-momentum: unreadable meta file (unknown data_type 'kQuaternion'")
    after = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)
    info = flow.checkpoint.describe(root)
    assert [v.name for v in info.variables] == [STEP] and len(info.problems) == 3
    assert info.step_counters == {"train": 100}


def test_variables_without_meta_take_shape_and_dtype_from_the_session(tmp_path):
    root = tmp_path / "of_model"
    w, buf = oneflow_dir(root, step=42, meta=False)
    got = flow.checkpoint.get(root)
    assert all(isinstance(v, RawVariable) for v in got.values()) and got["w"].nbytes == 12
    with pytest.raises(RuntimeError, match=r"has no meta file, so its shape and dtype are unknown"):
        got["w"].numpy()
    info = flow.checkpoint.describe(root)
    assert [(v.name, v.shape, v.dtype, v.nbytes) for v in info.variables] == [
        (STEP, None, None, 8),
        ("w", None, None, 12),
        ("w-momentum", None, None, 12),
    ]
    train, _ = linear_regression_jobs(momentum=0.9)
    with pytest.raises(ValueError, match=r"w: cannot read value \(.*has no meta file"):
        flow.load_variables(got)
    flow.checkpoint.load(root)  # the int64 (1,) counter is recognised by its size
    values = flow.get_all_variables()
    assert int(values[STEP]) == 42 and values[STEP].dtype == np.int32
    assert values["w"].tobytes() == w.tobytes() and values["w-momentum"].tobytes() == buf.tobytes()
    (root / "w" / "out").write_bytes(b"\0" * 16)
    with pytest.raises(
        CheckpointError,
        match=r"w: .*out has 16 bytes and no meta file; the variable has shape "
        r"\(3,\) dtype float32 = 12 bytes",
    ):
        flow.checkpoint.load(root)


@pytest.mark.parametrize(
    "text, shape, dtype",
    [
        ("shape {\n  dim: 32\n  dim: 1\n}\ndata_type: kFloat\n", (32, 1), np.float32),
        ("shape < dim: 2 dim: 3 > data_type: 6", (2, 3), np.int64),
        ("# comment\nshape: { dim: [4, 5] }\ndata_type: kUInt8  # trailing\n", (4, 5), np.uint8),
        ("data_type: kDouble shape { }", (), np.float64),
    ],
)
def test_meta_parser_accepts_protobuf_text_format(text, shape, dtype):
    assert parse_meta(text) == (shape, np.dtype(dtype))


@pytest.mark.parametrize(
    "text, message",
    [
        ("shape { dim: 3 }", "shape and data_type are both required"),
        ("shape { dim: 3 } data_type: kFloat data_type: kFloat", "data_type given twice"),
        ("shape { dim: x } data_type: kFloat", "expected an integer"),
        ("shape { dim: -1 } data_type: kFloat", "negative dimension"),
        ("shape { size: 3 } data_type: kFloat", "unknown field 'size' in shape"),
        ("shape { dim: 3 } data_type: 99", "unknown data_type '99'"),
        ("shape { dim: 3 } data_type: kFloat name: 'w'", "unknown field 'name'"),
    ],
)
def test_meta_parser_rejects_anything_else(text, message):
    with pytest.raises(ValueError, match=message):
        parse_meta(text)

"""Hostile checkpoints: every malformed, truncated, randomized or crafted input to the
readers (``get``, ``load``, ``describe``, ``jobflow inspect``) of both formats ends in a
correct read (bitwise equal values) or a ``CheckpointError`` naming the problem: never
another exception, never a hang, never bytes from outside the checkpoint, never a
terminal escape sequence printed raw. Also: step counters outside [0, 2**31 - 1] are
refused by ``load``. All fuzzing is seeded (docs/reliability.md)."""

import functools
import json
import os
import re
import struct
import threading

import ml_dtypes
import numpy as np
import pytest

import jobflow as flow
from jobflow._src.cli import main as cli
from jobflow.checkpoint import CheckpointError
from tests.helpers import linear_regression_jobs

pytestmark = pytest.mark.skipif(os.name != "posix", reason="links, FIFOs and /dev/zero are POSIX")

STEP = "System-Train-TrainStep-train"
VALUES = {
    "w": (np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5),
    "b": np.array([0.5, -1.0], np.float32),
    "flag": np.array([True, False, True]),
    "half": np.array([1.5, -2.0], ml_dtypes.bfloat16),
    STEP: np.array(7, np.int32),
}


def assert_same(got, expected):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        arr = np.asarray(got[name])
        assert arr.dtype == value.dtype and arr.shape == value.shape, name
        assert arr.tobytes() == value.tobytes(), name


def read_or_refuse(path, expected, fn=flow.checkpoint.get):
    """'ok' for a correct read, 'refused' for a CheckpointError; anything else fails."""
    try:
        got = fn(path)
    except CheckpointError:
        return "refused"
    assert_same(got, expected)
    return "ok"


def in_thread(fn, *args, timeout=10.0):
    """``fn(*args)``'s result or exception; fails if it does not return within ``timeout`` s."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # handed to the test
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)}{args} hung"
    return box


def refused(fn, *args, match=None):
    """Asserts that ``fn(*args)`` raises CheckpointError (in a thread, so a hang fails)."""
    box = in_thread(fn, *args)
    assert isinstance(box.get("error"), CheckpointError), box
    if match:
        assert re.search(match, str(box["error"])), str(box["error"])
    return box["error"]


def saved(tmp_path, fmt):
    path = tmp_path / ("ckpt.safetensors" if fmt == "jobflow" else "ckpt")
    flow.checkpoint.save(path, VALUES, format=fmt)
    expected = {k: np.asarray(v) for k, v in flow.checkpoint.get(path).items()}
    assert_same(expected, {**VALUES, STEP: VALUES[STEP]})
    return path, expected


def header_length(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


def safetensors_bytes(header, data=b"", length=None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


# ---------------------------------------------------------------------------- jobflow format


def test_jobflow_header_bit_flips_truncations_and_data_flips(tmp_path):
    path, expected = saved(tmp_path, "jobflow")
    intact = path.read_bytes()
    n = header_length(intact)
    rng = np.random.default_rng(1)
    bits = list(range(64)) + sorted(rng.choice(np.arange(64, 8 * n), 900, replace=False).tolist())
    outcomes = set()
    for bit in bits:
        damaged = bytearray(intact)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(damaged))
        outcomes.add(read_or_refuse(path, expected))
    assert "refused" in outcomes
    for bit in rng.choice(np.arange(8 * n, 8 * len(intact)), 150, replace=False):
        damaged = bytearray(intact)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(damaged))
        assert read_or_refuse(path, expected) == "refused"  # the CRC-32C catches every data bit
    for cut in range(0, len(intact), 3):
        path.write_bytes(intact[:cut])
        assert read_or_refuse(path, expected) == "refused"
        if cut % 30 == 0:
            assert flow.checkpoint.describe(path).problems


def test_jobflow_random_bytes_and_random_headers(tmp_path):
    path = tmp_path / "random.safetensors"
    rng = np.random.default_rng(2)
    for i in range(300):
        size = int(rng.integers(0, 600))
        data = rng.bytes(size)
        if i % 3 == 1:  # a plausible length field, then noise
            data = struct.pack("<Q", max(0, size - 8 - int(rng.integers(0, 16)))) + data[8:]
        if i % 3 == 2:  # a JSON header of random structure
            data = safetensors_bytes(random_json(rng, 3), rng.bytes(int(rng.integers(0, 32))))
        path.write_bytes(data)
        for fn in (flow.checkpoint.get, flow.checkpoint.describe):
            try:
                result = fn(path)
            except CheckpointError:
                continue
            assert isinstance(result, (dict, flow.checkpoint.CheckpointInfo))


def random_json(rng, depth):
    kind = int(rng.integers(0, 7 if depth else 4))
    if kind == 0:
        return int(rng.integers(-(2**40), 2**40)) * int(rng.choice([1, 2**30]))
    if kind == 1:
        return str(rng.choice(["F32", "I64", "BOOL", "__metadata__", "dtype", "", "\x1b[2J"]))
    if kind == 2:
        return [None, True, 1.5][int(rng.integers(0, 3))]
    if kind == 3:
        return [int(x) for x in rng.integers(-2, 40, int(rng.integers(0, 4)))]
    if kind == 4:
        return [random_json(rng, depth - 1) for _ in range(int(rng.integers(0, 3)))]
    keys = ["dtype", "shape", "data_offsets", "__metadata__", "w", "x"]
    return {str(rng.choice(keys)): random_json(rng, depth - 1) for _ in range(int(rng.integers(0, 4)))}


# (no valid dtype: re-typing a tensor's bytes consistently is tampering, which checksums
# of the bytes cannot see; a single bit flip cannot do it, see docs/reliability.md)
HOSTILE_FIELDS = [None, True, -1, 1.5, "F 32", "X", [], [-1], [1.5], [True], [2**64], [0, 2**70], [0] * 40]
HOSTILE_FIELDS += [[[1]], {"a": 1}, [0, 1, 2], [8, 0], [0, 10**9], [0, 24], [24, 48], "\x1b[31m"]


def test_jobflow_every_header_field_replaced_by_hostile_values(tmp_path):
    path, expected = saved(tmp_path, "jobflow")
    intact = path.read_bytes()
    n = header_length(intact)
    header = json.loads(intact[8:n])
    outcomes = {}
    for name in (k for k in header if k != "__metadata__"):
        for field in ("dtype", "shape", "data_offsets"):
            for value in HOSTILE_FIELDS:
                crafted = json.loads(json.dumps(header))
                crafted[name][field] = value
                path.write_bytes(safetensors_bytes(crafted, intact[n:]))
                outcomes[name, field, repr(value)] = read_or_refuse(path, expected)
    assert sum(o == "refused" for o in outcomes.values()) > 0.95 * len(outcomes)


CRAFTED = [
    (
        {"w": {"dtype": "X", "shape": [1], "data_offsets": [0, 4]}},
        b"\0" * 4,
        r"tensor 'w': unknown dtype 'X'",
    ),
    (
        {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
        b"\0" * 4,
        r"not a list of integers >= 0",
    ),
    ({"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, b"\0" * 4, r"not a list of integers"),
    ({"w": {"dtype": "F32", "shape": [0] * 40, "data_offsets": [0, 0]}}, b"", r"shape has 40 dimensions"),
    ({"w": {"dtype": "F32", "shape": [0, 2**70], "data_offsets": [0, 0]}}, b"", r"absurdly large"),
    ({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, b"\0" * 4, r"absurdly large"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", 4]}}, b"\0" * 4, r"is not \[begin, end\]"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4, r"is not \[begin, end\]"),
    (
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},
        b"\0" * 4,
        r"span 4 bytes, but shape \[2\]",
    ),
    ({"w": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, r"not an object with dtype, shape, data_offsets"),
    ({"w": [1, 2]}, b"", r"not an object with dtype"),
    (
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
        },
        b"\0" * 8,
        r"tensor 'b': its bytes \[4, 8\) overlap another tensor's",
    ),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, r"leave 4 bytes unused"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 2, r"it is truncated"),
    ({"__metadata__": {"format": 1}}, b"", r"__metadata__ is not a JSON object of strings"),
    ([1, 2, 3], b"", r"a JSON list, not an object"),
    (b'{"w": 1, "w": 2}', b"", r"the key 'w' appears twice"),
    (b"[" * 100000 + b"]" * 100000, b"", r"its header is damaged"),
    (b"\xff\xfe{}", b"", r"its header is damaged"),
]


@pytest.mark.parametrize("header, data, message", CRAFTED)
def test_jobflow_crafted_headers_are_named(tmp_path, header, data, message):
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(safetensors_bytes(header, data))
    refused(flow.checkpoint.get, path, match=message)
    info = flow.checkpoint.describe(path)
    assert not info.readable and re.search(message, info.problems[0])


def test_jobflow_header_length_is_capped(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(safetensors_bytes(b"{}", length=100_000_001))
    refused(
        flow.checkpoint.get, path, match=r"header length field says 100000001 bytes, more than the 100000000"
    )
    path.write_bytes(safetensors_bytes(b"{}", length=2**64 - 1))
    refused(flow.checkpoint.load, path, match=r"more than the 100000000 safetensors accepts")


def test_jobflow_file_must_be_a_regular_file(tmp_path):
    path, expected = saved(tmp_path, "jobflow")
    link = tmp_path / "latest.safetensors"
    link.symlink_to(path)  # the checkpoint's own path may be a link: the user named it
    assert read_or_refuse(link, expected) == "ok"
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    refused(flow.checkpoint.get, zero, match=r"it is a character device, not a checkpoint file")
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    for fn in (flow.checkpoint.get, flow.checkpoint.load, flow.checkpoint.describe):
        refused(fn, fifo, match=r"it is a FIFO \(named pipe\), not a checkpoint file or directory")


# ---------------------------------------------------------------------------- OneFlow layout


def test_oneflow_meta_bit_flips_truncations_and_random_bytes(tmp_path):
    root, expected = saved(tmp_path, "oneflow")
    rng = np.random.default_rng(3)
    outcomes = set()
    for name in VALUES:
        meta = root / name / "meta"
        intact = meta.read_bytes()
        variants = [intact[:cut] for cut in range(len(intact))]
        every_bit = name in ("w", STEP)  # every bit of two metas, a sample of the others
        for bit in range(8 * len(intact)) if every_bit else rng.choice(8 * len(intact), 60, replace=False):
            flipped = bytearray(intact)
            flipped[bit // 8] ^= 1 << (bit % 8)
            variants.append(bytes(flipped))
        variants += [rng.bytes(int(rng.integers(0, 80))) for _ in range(20)]
        for variant in variants:
            meta.write_bytes(variant)
            outcomes.add(read_or_refuse(root, expected))
        meta.write_bytes(intact)
        out = root / name / "out"
        data = out.read_bytes()
        for cut in range(len(data)):
            out.write_bytes(data[:cut])
            assert read_or_refuse(root, expected) == "refused"
        out.write_bytes(data + b"\0")
        assert read_or_refuse(root, expected) == "refused"
        out.write_bytes(data)
    assert outcomes == {"ok", "refused"}  # some flips are harmless (whitespace), most are caught
    assert read_or_refuse(root, expected) == "ok"


def outside_copy(tmp_path, root, name):
    """A copy of variable ``name`` outside the checkpoint, holding a recognizable secret."""
    secret = tmp_path / "secret"
    secret.mkdir()
    size = (root / name / "out").stat().st_size
    (secret / "out").write_bytes((b"SECRET!!" * size)[:size])  # the right size: only the link betrays it
    (secret / "meta").write_bytes((root / name / "meta").read_bytes())
    return secret


@pytest.mark.parametrize("target", ["var_dir", "out", "meta", "done"])
def test_oneflow_links_inside_the_checkpoint_are_refused(tmp_path, target):
    root, expected = saved(tmp_path, "oneflow")
    secret = outside_copy(tmp_path, root, "w")
    if target == "var_dir":
        os.rename(root / "w", tmp_path / "moved")
        (root / "w").symlink_to(secret)
        message = r"w is a symbolic link; jobflow reads only regular files and directories"
    elif target == "done":
        os.unlink(root / "snapshot_done")
        (secret / "done").write_text("")
        (root / "snapshot_done").symlink_to(secret / "done")
        message = r"snapshot_done is a symbolic link, not a regular file"
    else:
        os.unlink(root / "w" / target)
        (root / "w" / target).symlink_to(secret / target)
        message = rf"w/{target} is a symbolic link"
    linear_regression_jobs()  # a session with a variable 'w': load must refuse, and change nothing
    before = {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}
    for fn in (flow.checkpoint.get, flow.checkpoint.load):
        error = refused(fn, root, match=message)
        assert "SECRET" not in str(error)
    assert_same({k: v.numpy() for k, v in flow.get_all_variables().items()}, before)
    info = flow.checkpoint.describe(root)
    assert any(re.search(message, p) for p in info.problems)
    assert all("SECRET" not in str(v) for v in info.variables)


@pytest.mark.parametrize("entry", ["meta", "out"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_oneflow_special_files_are_refused_without_hanging(tmp_path, entry, kind, capsys):
    root, _ = saved(tmp_path, "oneflow")
    path = root / "w" / entry
    os.unlink(path)
    if kind == "fifo":
        os.mkfifo(path)
        message = rf"w/{entry} is a FIFO \(named pipe\)"
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
        message = rf"w/{entry} is a symbolic link"
    else:
        path.mkdir()
        message = rf"w/{entry} is a directory"
    for fn in (flow.checkpoint.get, flow.checkpoint.load):
        refused(fn, root, match=message)
    box = in_thread(functools.partial(flow.checkpoint.describe, verify=True), root)
    assert any(re.search(message, p) for p in box["value"].problems)
    assert in_thread(cli.main, ["inspect", str(root)])["value"] == 1
    assert re.search("problem: " + message, capsys.readouterr().err)


META_CASES = [
    (
        b"shape {\n  dim: 99999999999999999999999\n}\ndata_type: kFloat\n",
        r"\[99999999999999999999999\] is absurdly",
    ),
    (
        b"shape {\n  dim: 5\n}\ndata_type: kFloat\n",
        r"w: out has 24 bytes; meta says shape \(5,\) float32 = 20",
    ),
    (b"shape {\n" + b"  dim: 0\n" * 40 + b"}\ndata_type: kFloat\n", r"shape has 40 dimensions"),
    (b"shape {\n  dim: 0\n  dim: 4611686018427387904\n}\ndata_type: kFloat\n", r"absurdly large"),
    (b"shape {\n  dim: 1.5\n}\ndata_type: kFloat\n", r"unknown field '.' in shape"),
    (b"shape {\n  dim: -6\n}\ndata_type: kFloat\n", r"negative dimension"),
    (b"shape {\n  dim: 6\n}\ndata_type: 999\n", r"unknown data_type '999'"),
    (
        b"shape {\n  dim: 6\n}\ndata_type: kFloat\n#" + b"x" * 70000,
        r"w/meta has 700\d\d bytes; at most 65536",
    ),
    (b"shape {\n  dim: 6\n}\ndata_type: kFloat\n\xff", r"unreadable meta file \('utf-8' codec"),
]


@pytest.mark.parametrize("text, message", META_CASES)
def test_oneflow_absurd_meta_is_named(tmp_path, text, message):
    root, _ = saved(tmp_path, "oneflow")
    (root / "w" / "meta").write_bytes(text)
    refused(flow.checkpoint.get, root, match=message)
    assert any(re.search(message, p) for p in flow.checkpoint.describe(root).problems)


def test_oneflow_booleans_must_be_zero_or_one(tmp_path):
    root, _ = saved(tmp_path, "oneflow")
    (root / "flag" / "out").write_bytes(b"\x01\x00\x02")
    refused(flow.checkpoint.get, root, match=r"flag: booleans stored as bytes other than 0 and 1")


# ---------------------------------------------------------------------------- step counters


def counter_values(step):
    train, _ = linear_regression_jobs()
    train.compile()
    values = {k: v.numpy() for k, v in flow.get_all_variables().items()}
    values[STEP] = step
    return values


@pytest.mark.parametrize("fmt", ["jobflow", "oneflow"])
def test_step_counters_outside_int32_range_are_refused(tmp_path, fmt):
    values = counter_values(np.array(-1, np.int32))
    before = {k: v.copy() for k, v in values.items()}
    before[STEP] = np.array(0, np.int32)
    flow.checkpoint.save(tmp_path / "neg", values, format=fmt)
    error = refused(flow.checkpoint.load, tmp_path / "neg")
    assert error.problems == [f"{STEP}: step counter -1 is outside [0, 2147483647] (2**31 - 1)"]
    assert_same({k: v.numpy() for k, v in flow.get_all_variables().items()}, before)  # unchanged
    refused(flow.checkpoint.get, tmp_path / "neg", match="step counter -1 is outside")
    assert any(
        "step counter -1" in p for p in flow.checkpoint.describe(tmp_path / "neg", verify=True).problems
    )
    for step in (0, 2**31 - 1):  # the bounds themselves load
        flow.checkpoint.save(tmp_path / f"ok{step}", {**values, STEP: np.array(step, np.int32)}, format=fmt)
        flow.checkpoint.load(tmp_path / f"ok{step}")
        assert int(flow.get_all_variables()[STEP]) == step


def test_step_counter_too_large_or_negative_in_oneflow_files(tmp_path):
    values = counter_values(np.array(0, np.int32))
    for step, message in ((2**31, "do not fit int32"), (-5, "step counter -5 is outside")):
        root = tmp_path / f"of{step}"
        flow.checkpoint.save(root, values, format="oneflow")
        (root / STEP / "out").write_bytes(np.array([step], np.int64).tobytes())
        refused(flow.checkpoint.load, root, match=message)
        os.unlink(root / STEP / "meta")  # OneFlow's older writers: no meta, read as the session's int64 (1,)
        refused(flow.checkpoint.load, root, match=message)
    assert int(flow.get_all_variables()[STEP]) == 0


# ---------------------------------------------------------------------------- jobflow inspect


def test_inspect_escapes_names_from_the_file(tmp_path, capsys):
    evil = "ev\x1b[2J\x1b[31mil\x07"
    job = "j\x1b]0;x\x07"
    path = tmp_path / "evil.safetensors"
    flow.checkpoint.save(
        path, {evil: np.zeros(2, np.float32), f"System-Train-TrainStep-{job}": np.array(3, np.int32)}
    )
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "ev\\x1b[2J\\x1b[31mil\\x07" in out and "j\\x1b]0;x\\x07" in out
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # damages the last tensor: --verify names it in a problem line
    path.write_bytes(bytes(data))
    assert cli.main(["inspect", str(path), "--verify"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "checksum mismatch" in err


def test_inspect_of_a_file_that_is_not_a_checkpoint_prints_one_error_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, these are notes and not a checkpoint\n" * 3)
    assert cli.main(["inspect", str(notes)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {notes} is not a readable checkpoint: ")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert in_thread(cli.main, ["inspect", str(fifo)])["value"] == 1
    captured = capsys.readouterr()
    assert (
        captured.out == "" and "it is a FIFO (named pipe), not a checkpoint file or directory" in captured.err
    )

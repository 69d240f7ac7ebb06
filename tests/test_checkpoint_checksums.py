"""Checkpoint checksums: new files carry a CRC-32C per tensor (metadata key ``crc32c``);
files of earlier versions, with zlib's CRC-32 under ``crc32``, still load and are still
verified; a damaged tensor is named in both kinds."""

import json
import zlib

import crc32c
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import jobflow as flow
from jobflow._src.cli import main as cli
from jobflow._src.io import safetensors_file as sf
from jobflow.checkpoint import CheckpointError


def _arrays():
    rng = np.random.default_rng(0)
    arrays = {f"v{i}": rng.standard_normal(1000 + i, dtype=np.float32) for i in range(8)}
    arrays["flag"] = np.array([True, False])
    arrays["scalar"] = np.array(3, np.int32)
    arrays["empty"] = np.zeros((0, 4), np.float32)
    return arrays


def _metadata(path) -> dict:
    with safe_open(path, "np") as f:
        return f.metadata()


def _flip_byte_of(path, name, at=100):
    """Flips one byte inside tensor ``name``'s data."""
    header, n, _ = sf._parse_header(path)
    begin = 8 + n + header[name]["data_offsets"][0]
    with open(path, "r+b") as f:
        f.seek(begin + at)
        byte = f.read(1)
        f.seek(begin + at)
        f.write(bytes([byte[0] ^ 0xFF]))


def _old_format(path, arrays):
    """A file as earlier versions wrote it: zlib's CRC-32 under the key ``crc32``."""
    sums = {n: f"{zlib.crc32(a.tobytes()):08x}" for n, a in arrays.items()}
    metadata = {
        "format": sf.FORMAT,
        "format_version": sf.VERSION,
        "jobflow": "0.1.0",
        "crc32": json.dumps(sums, sort_keys=True),
        "kinds": json.dumps(dict.fromkeys(arrays, "model"), sort_keys=True),
    }
    save_file(arrays, path, metadata=metadata)


def test_checksums_are_crc32c_and_zlib_crc32():
    check = np.frombuffer(b"123456789", np.uint8)
    assert sf.crc32c(check) == "e3069283"  # the CRC-32C check value
    assert sf.crc32(check) == "cbf43926"  # the CRC-32 check value
    for a in _arrays().values():
        assert sf.crc32c(a) == f"{crc32c.crc32c(a.tobytes()):08x}"
        assert sf.crc32(a) == f"{zlib.crc32(a.tobytes()):08x}"
    t = np.arange(12, dtype=np.float32).reshape(3, 4).T  # not C-contiguous: its C-order bytes
    assert sf.crc32c(t) == f"{crc32c.crc32c(np.ascontiguousarray(t).tobytes()):08x}"


def test_new_files_carry_crc32c_and_name_a_damaged_tensor(tmp_path):
    arrays = _arrays()
    path = str(tmp_path / "new.safetensors")
    sf.write(path, arrays, dict.fromkeys(arrays, "model"), "test")
    meta = _metadata(path)
    assert sf.CHECKSUM_KEY == "crc32c" and "crc32" not in meta
    assert json.loads(meta["crc32c"]) == {n: f"{crc32c.crc32c(a.tobytes()):08x}" for n, a in arrays.items()}
    back, problems = sf.read(path)
    assert problems == []
    assert all(np.array_equal(back[n], a) for n, a in arrays.items())
    _flip_byte_of(path, "v5")
    _, problems = sf.read(path)
    assert len(problems) == 1 and problems[0].startswith("v5: checksum mismatch (data corrupted): CRC-32C ")


def test_files_with_zlib_crc32_still_load_and_name_a_damaged_tensor(tmp_path, capsys):
    arrays = _arrays()
    path = str(tmp_path / "old.safetensors")
    _old_format(path, arrays)
    back, problems = sf.read(path)
    assert problems == []
    assert all(np.array_equal(back[n], a) for n, a in arrays.items())
    values = flow.checkpoint.get(path)
    assert all(np.array_equal(values[n], a) for n, a in arrays.items())
    _flip_byte_of(path, "v5")
    _, problems = sf.read(path)
    assert len(problems) == 1 and problems[0].startswith("v5: checksum mismatch (data corrupted): CRC-32 ")
    with pytest.raises(CheckpointError, match=r"v5: checksum mismatch"):
        flow.checkpoint.get(path)
    assert any(
        p.startswith("v5: checksum mismatch") for p in flow.checkpoint.describe(path, verify=True).problems
    )
    capsys.readouterr()
    assert cli.main(["inspect", path, "--verify"]) == 1  # the CLI, on a file of an earlier version
    assert "problem: v5: checksum mismatch (data corrupted): CRC-32 " in capsys.readouterr().err


def test_crc32c_is_verified_when_both_keys_are_present(tmp_path):
    arrays = {"a": np.arange(10, dtype=np.float32)}
    path = str(tmp_path / "both.safetensors")
    sums = {"a": sf.crc32c(arrays["a"])}
    meta = {"format": sf.FORMAT, "format_version": sf.VERSION, "crc32c": json.dumps(sums), "crc32": "{}"}
    save_file(arrays, path, metadata=meta)
    assert sf.read(path)[1] == []


def test_jobflow_files_without_checksums_and_files_from_elsewhere(tmp_path):
    arrays = {"a": np.arange(10, dtype=np.float32)}
    path = str(tmp_path / "none.safetensors")
    save_file(arrays, path, metadata={"format": sf.FORMAT, "format_version": sf.VERSION})
    assert sf.read(path)[1] == ["the metadata has no 'crc32c' entry", "a: has no checksum"]
    save_file(arrays, path)  # another tool's file: read without verification
    back, problems = sf.read(path)
    assert problems == [] and np.array_equal(back["a"], arrays["a"])


def test_big_file_round_trips_and_names_the_damaged_tensor(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"v{i}": rng.standard_normal(2**20, dtype=np.float32) for i in range(8)}  # 32 MiB
    path = str(tmp_path / "big.safetensors")
    sf.write(path, arrays, dict.fromkeys(arrays, "model"), "test")
    back, problems = sf.read(path)
    assert problems == []
    assert all(np.array_equal(back[n], a) for n, a in arrays.items())
    _flip_byte_of(path, "v5", at=3 * 2**20)
    _, problems = sf.read(path)
    assert len(problems) == 1 and problems[0].startswith("v5: checksum mismatch"), problems

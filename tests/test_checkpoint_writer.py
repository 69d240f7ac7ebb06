"""jobflow's own safetensors writer and reader paths: the file is what safetensors'
``save_file`` writes (same header content, same bytes), safetensors' loader reads it
bitwise, permissions follow the umask, the early writeback (``sync_file_range``) and the
preallocation fall back to plain writes, and checksums computed on a second thread (large
files) reach the caller, errors included."""

import json
import os
import struct
import threading

import crc32c
import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jobflow._src.io import checkpoint_io
from jobflow._src.io import safetensors_file as sf
from jobflow._src.io import writeback as wb

MIB = 2**20
# the dtypes safetensors' numpy loader knows (it cannot load float8, which save_file writes)
LOADABLE = (
    np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.float16, ml_dtypes.bfloat16, np.uint32,
    np.int32, np.float32, np.uint64, np.int64, np.float64, np.complex64,
)  # fmt: skip


def _arrays(dtypes=LOADABLE) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        f"v{i:02d}-{'üñí' if i % 3 == 0 else 'x'}": rng.integers(
            0, 2 if d is np.bool_ else 120, (i % 4 + 1, 3)
        ).astype(d)
        for i, d in enumerate(dtypes)
    }
    arrays["scalar"] = np.array(7, np.int32)
    arrays["empty"] = np.zeros((0, 4), np.float32)
    arrays['quote"and\nnewline'] = np.arange(3, dtype=np.float32)
    arrays["big-endian"] = np.arange(6, dtype=">i4").reshape(2, 3)
    return arrays


def _header(path) -> tuple[int, dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _expected_metadata(arrays, kinds, version) -> dict[str, str]:
    """jobflow's metadata, computed here from the file's (little-endian) bytes."""
    sums = {
        n: f"{crc32c.crc32c(np.asarray(a, a.dtype.newbyteorder('<')).tobytes()):08x}"
        for n, a in arrays.items()
    }
    return {
        "format": "jobflow.checkpoint",
        "format_version": "1",
        "jobflow": version,
        "crc32c": json.dumps(sums, sort_keys=True),
        "kinds": json.dumps({n: k for n, k in kinds.items() if n in arrays}, sort_keys=True),
    }


@pytest.mark.parametrize("with_float8", [False, True])
def test_the_file_is_what_save_file_writes(tmp_path, with_float8):
    dtypes = LOADABLE + ((ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2) if with_float8 else ())
    arrays = _arrays(dtypes)
    kinds = {"scalar": "system", "v00-üñí": "model", "not saved": "slot"}
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    sf.write(str(ours), arrays, kinds, "1.2.3")
    save_file(arrays, str(theirs), metadata=_expected_metadata(arrays, kinds, "1.2.3"))
    n_ours, header_ours, data_ours = _header(ours)
    n_theirs, header_theirs, data_theirs = _header(theirs)
    assert n_ours == n_theirs and n_ours % 8 == 0
    assert header_ours == header_theirs  # dtypes, shapes, offsets and metadata
    assert data_ours == data_theirs
    assert list(header_ours)[0] == "__metadata__"


def test_safetensors_loads_the_file_bitwise(tmp_path):
    arrays = _arrays()
    path = str(tmp_path / "m.safetensors")
    sf.write(path, arrays, {}, "test")
    back = load_file(path)
    assert sorted(back) == sorted(arrays)
    for name, arr in arrays.items():
        little = arr.astype(arr.dtype.newbyteorder("<"))
        assert back[name].shape == arr.shape and back[name].dtype == little.dtype.newbyteorder("=")
        assert back[name].tobytes() == little.tobytes(), name
    ours, problems = sf.read(path)  # and jobflow's reader verifies every checksum
    assert problems == [] and all(np.array_equal(ours[n], a) for n, a in arrays.items())


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        sf.write(str(tmp_path / "f.safetensors"), {"w": np.ones(3, np.float32)}, {}, "test")
        checkpoint_io.write(
            str(tmp_path / "ckpt"), {"w": np.ones(3, np.float32)}, kinds={}, format="jobflow", overwrite=False,
            version="test",
        )  # fmt: skip
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "f.safetensors").st_mode & 0o777 == 0o666 & ~umask
    assert os.stat(tmp_path / "ckpt" / "model.safetensors").st_mode & 0o777 == 0o666 & ~umask


def test_an_existing_file_is_replaced(tmp_path):
    path = str(tmp_path / "f.safetensors")
    with open(path, "wb") as f:
        f.write(b"x" * 10_000)
    sf.write(path, {"w": np.arange(4, dtype=np.float32)}, {}, "test")
    assert np.array_equal(load_file(path)["w"], np.arange(4, dtype=np.float32))


def test_unstorable_names_and_dtypes_are_named_before_writing():
    problems = sf.check_dtypes(
        {
            "__metadata__": np.ones(1, np.float32),
            "c": np.ones(1, np.complex128),
            "s": np.array(["a"]),
            "bad\ud800": np.ones(1, np.float32),
            "ok": np.ones(1, ml_dtypes.bfloat16),
        }
    )
    assert problems[0] == "__metadata__: the name is reserved by the safetensors format"
    assert problems[1].startswith("c: dtype complex128 cannot be stored (safetensors stores ")
    assert "complex64" in problems[1] and "bfloat16" in problems[1]
    assert problems[2] == "s: dtype <U1 cannot be stored (numbers and booleans only)"
    assert problems[3] == "'bad\\ud800': the name is not valid Unicode text (it cannot be UTF-8 encoded)"
    assert len(problems) == 4


class _Recorder:
    """A stand-in for sync_file_range that records its calls (and can fail)."""

    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def __call__(self, fd, offset, nbytes, flags):
        self.calls.append((offset, nbytes, flags))
        return -1 if self.fail else 0


def test_writeback_is_started_per_window_and_old_windows_are_waited_for(tmp_path):
    rec = _Recorder()
    data = np.arange(10 * 1000, dtype=np.uint8)  # 10 windows of 1000 bytes
    with open(tmp_path / "f", "wb") as f:
        writer = wb.StreamingWriter(f.fileno(), 16, window=1000, limit=2500, sfr=rec)
        writer.write(data[:1500])
        writer.write(data[1500:])
        writer.finish()
    assert (tmp_path / "f").read_bytes()[16:] == data.tobytes()
    started = [(o, n) for o, n, flags in rec.calls if flags == 2]
    waited = [(o, n) for o, n, flags in rec.calls if flags == 1 | 2 | 4]
    # windows of 1000 bytes from offset 16, the last one shorter
    assert started == [(16 + 1000 * k, 1000) for k in range(10)]
    # once window k is started (the offset at its end), every window that begins more than
    # 2500 bytes before the offset is waited for: windows 0 .. k - 2
    assert waited == [(16 + 1000 * k, 1000) for k in range(8)]
    assert all(c[2] in (2, 7) for c in rec.calls)


def test_writeback_falls_back_to_plain_writes(tmp_path, monkeypatch):
    arrays = {f"v{i}": np.full(3 * MIB // 4, i, np.float32) for i in range(4)}
    reference = tmp_path / "reference"
    sf.write(str(reference), arrays, {}, "test")
    failing = _Recorder(fail=True)
    with open(tmp_path / "f", "wb") as f:
        writer = wb.StreamingWriter(f.fileno(), 0, window=MIB, sfr=failing)
        writer.write(np.ones(3 * MIB, np.uint8))
        assert not writer.early_writeback  # the first failure turned it off
    assert len(failing.calls) == 1 and (tmp_path / "f").read_bytes() == b"\x01" * 3 * MIB
    # no sync_file_range and no fallocate (another system): the same file
    monkeypatch.setattr(wb, "sync_file_range", lambda: None)
    monkeypatch.setattr(wb, "preallocate", lambda fd, size: False)
    sf.write(str(tmp_path / "plain"), arrays, {}, "test")
    assert (tmp_path / "plain").read_bytes() == reference.read_bytes()


def test_preallocate_reserves_the_size_or_changes_nothing(tmp_path):
    with open(tmp_path / "f", "wb") as f:
        done = wb.preallocate(f.fileno(), 12345)
        assert os.fstat(f.fileno()).st_size == (12345 if done else 0)
        assert not wb.preallocate(f.fileno(), 0)


def test_writer_arguments_are_checked():
    with pytest.raises(ValueError, match=r"StreamingWriter\(window, limit\) must be >= 1 and >= 0; got 0, 5"):
        wb.StreamingWriter(0, window=0, limit=5)


def test_checksum_thread_errors_reach_the_caller():
    def broken(arr):
        raise RuntimeError("boom")

    sums = sf._Checksums(broken, background=True)
    sums.add("a", np.ones(3))
    with pytest.raises(RuntimeError, match="boom"):
        sums.result()
    sums.stop()  # idempotent


def test_a_large_file_round_trips_and_a_damaged_tensor_is_named(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {f"v{i}": rng.standard_normal(2**20 + 17 * i, dtype=np.float32) for i in range(5)}  # > 16 MiB
    arrays["flag"] = np.array([True, False])
    arrays["scalar"] = np.array(2.5, np.float64)
    path = str(tmp_path / "m.safetensors")
    sf.write(path, arrays, {}, "test")
    back, problems = sf.read(path)  # checksums computed on a second thread
    assert problems == [] and sorted(back) == sorted(arrays)
    for name, arr in arrays.items():
        assert np.array_equal(back[name], arr) and back[name].shape == arr.shape
        assert back[name].dtype == arr.dtype and back[name].flags.c_contiguous and back[name].flags.writeable
    layout = sf._with_layout(path, lambda fd, lay: lay)
    last = list(layout.tensors)[-1]
    begin = 8 + layout.n + layout.tensors[last].begin
    with open(path, "r+b") as f:
        f.seek(begin)
        byte = f.read(1)
        f.seek(begin)
        f.write(bytes([byte[0] ^ 0x01]))
    _, problems = sf.read(path)
    assert len(problems) == 1 and problems[0].startswith(f"{last}: checksum mismatch"), problems


def test_a_read_error_midway_stops_the_checksum_thread(tmp_path, monkeypatch):
    arrays = {f"v{i}": np.full(2**20, i, np.float32) for i in range(5)}  # 20 MiB: checksums on a thread
    path = str(tmp_path / "m.safetensors")
    sf.write(path, arrays, {}, "test")

    def failing(fd, offset, out, entry):
        if entry == "tensor 'v2'":  # the third tensor: two checksums are under way or done
            raise ValueError(f"{entry} cannot be read (test)")
        return real(fd, offset, out, entry)

    real = sf.read_exact
    monkeypatch.setattr(sf, "read_exact", failing)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(ValueError, match=r"tensor 'v2' cannot be read \(test\)"):
        sf.read(path)
    assert {t.name for t in threading.enumerate()} == before


def test_durable_false_skips_the_fsyncs_and_the_writeback(tmp_path, monkeypatch):
    import jobflow as flow

    synced, ranges = [], _Recorder()
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(wb, "sync_file_range", lambda: ranges)
    values = {"w": np.arange(3 * MIB, dtype=np.float32)}  # 12 MiB: more than one 8 MiB window
    flow.checkpoint.save(tmp_path / "fast", values, durable=False)
    manager = flow.checkpoint.CheckpointManager(tmp_path / "managed", durable=False)
    manager.save(step=1)
    assert synced == [] and ranges.calls == []
    flow.checkpoint.save(tmp_path / "durable", values)  # the default
    # model.safetensors, its directory, the staging directory, the parent; writeback of 8 + 4 MiB
    assert len(synced) == 4 and [c[2] for c in ranges.calls] == [2, 2]
    for name in ("fast", "durable"):
        assert np.array_equal(flow.checkpoint.get(tmp_path / name)["w"], values["w"])
    assert manager.all_steps() == [1]
    with pytest.raises(TypeError, match=r"checkpoint\.save\(durable\) must be True or False; got 'yes'"):
        flow.checkpoint.save(tmp_path / "x", values, durable="yes")
    with pytest.raises(TypeError, match=r"CheckpointManager\(durable\) must be True or False; got 1"):
        flow.checkpoint.CheckpointManager(tmp_path / "m", durable=1)

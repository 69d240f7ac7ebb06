"""The fast path of checkpoint files, checksums on several threads, must not change what
is written or what a damaged file reports."""

import zlib

import numpy as np

from jobflow._src.io import safetensors_file as sf


def _big_arrays():
    """More bytes than PARALLEL_BYTES, in several tensors."""
    rng = np.random.default_rng(0)
    n = sf.PARALLEL_BYTES // 4 // 6 + 1
    return {f"v{i}": rng.standard_normal(n, dtype=np.float32) for i in range(8)}


def test_checksums_on_threads_are_zlibs():
    arrays = _big_arrays()
    assert sum(a.nbytes for a in arrays.values()) > sf.PARALLEL_BYTES
    assert sf.crc32_many(arrays) == {n: f"{zlib.crc32(a.tobytes()):08x}" for n, a in arrays.items()}


def test_big_file_round_trips_and_names_the_damaged_tensor(tmp_path):
    arrays = _big_arrays()
    path = str(tmp_path / "big.safetensors")
    sf.write(path, arrays, {n: "model" for n in arrays}, "test")
    back, problems = sf.read(path)
    assert problems == []
    assert all(np.array_equal(back[n], a) for n, a in arrays.items())
    # flip one byte inside v5's data
    header, _ = sf.read_header(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    offsets = sorted(arrays)  # safetensors orders tensors of one dtype by name
    begin = 8 + n + sum(arrays[k].nbytes for k in offsets[: offsets.index("v5")])
    with open(path, "r+b") as f:
        f.seek(begin + 100)
        byte = f.read(1)
        f.seek(begin + 100)
        f.write(bytes([byte[0] ^ 0xFF]))
    _, problems = sf.read(path)
    assert len(problems) == 1 and problems[0].startswith("v5: checksum mismatch"), problems

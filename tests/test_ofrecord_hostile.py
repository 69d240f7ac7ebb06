"""Hostile OFRecord files: each raises DataError naming the file and the byte offset, in
bounded time and memory (a huge length is never allocated), and a reader that met one is
left where it was."""

import struct
import time
import tracemalloc

import numpy as np
import pytest

import jobflow as flow
from jobflow._src.data import decoders
from jobflow._src.data.ofrecord import iter_records, parse_record, serialize_record, write_records
from jobflow._src.data.source import OFRecordSource

GOOD = serialize_record({"id": np.int64(1), "x": b"payload"})
FRAMED = struct.pack("<q", len(GOOD)) + GOOD


def read_all(path, **kwargs):
    return list(iter_records(str(path), **kwargs))


def raises_at(path, offset, words, **kwargs):
    with pytest.raises(flow.errors.DataError, match=words) as info:
        read_all(path, **kwargs)
    err = info.value
    assert err.path == str(path) and err.offset == offset
    assert str(path) in str(err) and f"byte offset {offset}" in str(err)
    assert isinstance(err, ValueError) and isinstance(err, flow.errors.JobflowError)
    return err


@pytest.mark.parametrize("tail", [b"\x05", b"\x05\x00\x00\x00\x00\x00\x00"])
def test_truncated_length(tmp_path, tail):
    path = tmp_path / "part-0"
    path.write_bytes(FRAMED + tail)
    raises_at(path, len(FRAMED), "truncated at byte offset")


def test_truncated_record(tmp_path):
    path = tmp_path / "part-0"
    path.write_bytes(FRAMED + FRAMED[:-3])
    raises_at(path, len(FRAMED), rf"\({len(GOOD)}\) is larger than the {len(GOOD) - 3} bytes left")


@pytest.mark.parametrize("length", [2**62, 2**63 - 1, 10**12])
def test_oversized_length_is_never_allocated(tmp_path, length):
    path = tmp_path / "part-0"
    path.write_bytes(FRAMED + struct.pack("<q", length) + b"\x00" * 64)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        raises_at(path, len(FRAMED), "is larger than the 64 bytes left")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("length", [0, -1, -(2**63)])
def test_length_not_positive(tmp_path, length):
    path = tmp_path / "part-0"
    path.write_bytes(FRAMED + struct.pack("<q", length) + GOOD)
    raises_at(path, len(FRAMED), "is not positive")


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff\xff\xff", b"\x0a\x7f", b"\x0a\x04\x0a\x02\x08"])
def test_garbage_protobuf(tmp_path, garbage):
    path = tmp_path / "part-0"
    path.write_bytes(FRAMED + struct.pack("<q", len(garbage)) + garbage)
    assert len(read_all(path)) == 2  # framing alone is fine
    raises_at(path, len(FRAMED), "not a valid OFRecord protobuf", validate=True)
    with pytest.raises(flow.errors.DataError, match="not a valid OFRecord"):
        parse_record(garbage)
    with pytest.raises(flow.errors.DataError, match="record 1 of the batch"):
        decoders.decode_raw([GOOD, garbage], "id", (1,), np.int64)


def test_empty_file_has_no_records_and_an_empty_dataset_does_not_hang(tmp_path):
    (tmp_path / "part-0").write_bytes(b"")
    (tmp_path / "part-1").write_bytes(b"")
    assert read_all(tmp_path / "part-0") == []
    source = OFRecordSource(str(tmp_path), data_part_num=2)
    start = time.perf_counter()
    with pytest.raises(flow.errors.DataError, match=r"\(part-0, part-1\) hold no records"):
        source.next_records(1)
    assert time.perf_counter() - start < 5


def test_missing_parts_are_all_named(tmp_path):
    write_records(str(tmp_path / "part-00001"), [GOOD])
    with pytest.raises(flow.errors.DataError) as info:
        OFRecordSource(str(tmp_path), data_part_num=4, part_name_suffix_length=5)
    msg = str(info.value)
    assert "3 of 4 part files missing: part-00000, part-00002, part-00003" in msg
    assert "'part-00000' .. 'part-00003'" in msg and "part_name_suffix_length=5" in msg
    assert "['part-00001']" in msg  # what the directory holds instead
    with pytest.raises(flow.errors.DataError, match="does not exist"):
        OFRecordSource(str(tmp_path / "nowhere"))


def test_source_stops_at_a_bad_record_and_keeps_its_position(tmp_path):
    path = tmp_path / "part-0"
    path.write_bytes(FRAMED * 3 + struct.pack("<q", 3) + b"\xff\xff\xff")
    source = OFRecordSource(str(tmp_path))
    assert len(source.next_records(2)) == 2
    state = source.state()
    for _ in range(2):  # the same error each time: nothing consumed
        with pytest.raises(flow.errors.DataError, match=f"byte offset {3 * len(FRAMED)}"):
            source.next_records(5)
        assert source.state() == state
    path.write_bytes(FRAMED * 5)  # repaired: reading goes on from the same place
    assert source.next_records(2) == [GOOD, GOOD]
    assert source.state()["offset"] == 4 * len(FRAMED)


def test_decoder_errors_name_the_feature_and_record(tmp_path):
    other = serialize_record({"id": np.array([1, 2], np.int64), "img": b"not an image"})
    batch = [GOOD, other]
    with pytest.raises(
        flow.errors.DataError,
        match=r"record 1 of the batch has no feature 'x' \(its features: \['id', 'img'\]\)",
    ):
        decoders.decode_bytes(batch, "x")
    with pytest.raises(flow.errors.DataError, match=r"'id' of record 1 holds 2 values .* exactly 1"):
        decoders.decode_raw(batch, "id", (1,), np.int64)
    with pytest.raises(
        flow.errors.DataError, match="must be a bytes_list of one value; it holds a int64_list of 1"
    ):
        decoders.decode_image(batch, "id")
    with pytest.raises(
        flow.errors.DataError, match=r"'img' of record 0 is not an image OpenCV can decode \(12 bytes"
    ):
        decoders.decode_image([other], "img")
    with pytest.raises(flow.errors.DataError, match="not an image"):
        decoders.decode_image_random_crop([serialize_record({"img": b"\xff\xd8\xff"})], "img", rng=0)


def test_decoder_argument_errors():
    for call, words in [
        (lambda: decoders.decode_raw([GOOD], "id", (1,), np.float16), r"decode_raw\(dtype\)"),
        (lambda: decoders.decode_raw([GOOD], "id", (-1,), np.int32), r"decode_raw\(shape\)"),
        (lambda: decoders.decode_image([GOOD], "x", color_space="HSV"), r"color_space\) must be one of"),
        (lambda: decoders.decode_image_random_crop([GOOD], "x", random_area=(0.5, 0.1)), "random_area"),
        (lambda: decoders.decode_image_random_crop([GOOD], "x", num_attempts=0), "num_attempts"),
        (lambda: decoders.decode_bytes(GOOD, "x"), "a list of serialized records"),
        (lambda: decoders.decode_bytes([3], "x"), "record 0 of the batch is a int"),
    ]:
        with pytest.raises(flow.errors.ArgumentError, match=words):
            call()

"""OFRecord files: the writer's bytes against hand-built protobuf wire bytes, bytes as
OneFlow writes them (any map order, packed or not), and bitwise round trips of the
datasets OneFlow-Benchmark reads (images and labels, BERT, Wide&Deep)."""

import os
import struct

import cv2
import numpy as np
import pytest

import jobflow as flow
from jobflow._src.data import decoders, image_ops
from jobflow._src.data.ofrecord import (
    OFRecordWriter,
    iter_records,
    parse_record,
    part_name,
    read_record_at,
    serialize_record,
    write_records,
)
from jobflow._src.data.source import OFRecordSource

# -- protobuf wire format, by hand (https://protobuf.dev/programming-guides/encoding/) --


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32/int64: ten bytes, two's complement
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire_type)
    return key + (varint(len(payload)) + payload if wire_type == 2 else payload)


def feature(kind: int, values, packed=True) -> bytes:
    """A Feature (oneof kind: 1 bytes, 2 float, 3 double, 4 int32, 5 int64)."""
    if kind == 1:
        body = b"".join(field(1, 2, v) for v in values)
    elif packed:
        enc = {2: lambda v: struct.pack("<f", v), 3: lambda v: struct.pack("<d", v)}.get(kind, varint)
        body = field(1, 2, b"".join(enc(v) for v in values))
    else:
        body = b"".join(field(1, 0, varint(v)) for v in values)
    return field(kind, 2, body)


def record(entries) -> bytes:
    """An OFRecord: map<string, Feature> feature = 1, one entry per (key, Feature bytes)."""
    return b"".join(field(1, 2, field(1, 2, k.encode()) + field(2, 2, f)) for k, f in entries)


def framed(*records) -> bytes:
    return b"".join(struct.pack("<q", len(r)) + r for r in records)


# -- the writer's bytes ------------------------------------------------------------------


def test_writer_bytes_equal_hand_built_wire_bytes(tmp_path):
    features = {
        "label": np.int32(-3),
        "ids": np.array([1, 300, 70000], np.int64),
        "encoded": b"\xff\xd8jpeg",
        "w": np.array([0.5, -2.0], np.float32),
        "d": np.array([1e-300], np.float64),
    }
    path = str(tmp_path / "part-0")
    assert write_records(path, [features, features]) == 2
    expected_record = record(
        [  # deterministic: keys sorted
            ("d", feature(3, [1e-300])),
            ("encoded", feature(1, [b"\xff\xd8jpeg"])),
            ("ids", feature(5, [1, 300, 70000])),
            ("label", feature(4, [-3])),
            ("w", feature(2, [0.5, -2.0])),
        ]
    )
    assert (tmp_path / "part-0").read_bytes() == framed(expected_record, expected_record)
    assert serialize_record(features) == expected_record


def test_parses_bytes_in_oneflow_order_packed_or_not(tmp_path):
    # OneFlow's C++ and Python writers serialize the map in hash order, lists packed;
    # a proto2 reader must also take unpacked repeated scalars.
    rec = record(
        [
            ("labels", feature(4, [7, -1], packed=False)),
            ("images", feature(2, [0.25, 1.5, -3.0])),
            ("blob", feature(1, [b"a", b"", b"\x00\x01"])),
            ("big", feature(5, [2**40, -(2**40)])),
        ]
    )
    path = tmp_path / "part-0"
    path.write_bytes(framed(rec, rec))
    got = [parse_record(r) for _, r in iter_records(str(path))]
    assert len(got) == 2
    out = got[1]
    assert out["labels"].dtype == np.int32 and out["labels"].tolist() == [7, -1]
    assert out["images"].dtype == np.float32 and out["images"].tolist() == [0.25, 1.5, -3.0]
    assert out["blob"] == [b"a", b"", b"\x00\x01"]
    assert out["big"].dtype == np.int64 and out["big"].tolist() == [2**40, -(2**40)]
    assert [off for off, _ in iter_records(str(path))] == [0, 8 + len(rec)]
    assert read_record_at(str(path), 8 + len(rec)) == rec


@pytest.mark.parametrize(
    "dtype, kind",
    [
        ("float32", "float_list"),
        ("float16", "float_list"),
        ("float64", "double_list"),
        ("bool", "int32_list"),
        ("int8", "int32_list"),
        ("uint8", "int32_list"),
        ("int16", "int32_list"),
        ("uint16", "int32_list"),
        ("int32", "int32_list"),
        ("uint32", "int64_list"),
        ("int64", "int64_list"),
    ],
)
def test_dtype_to_list_kind(dtype, kind):
    from jobflow._src.data import record_pb2

    values = np.array([0, 1, 1], dtype)
    msg = record_pb2.OFRecord.FromString(serialize_record({"x": values}))
    assert msg.feature["x"].WhichOneof("kind") == kind
    assert list(getattr(msg.feature["x"], kind).value) == [0, 1, 1]


def test_part_names_pad_as_oneflow():
    assert part_name(3) == "part-3"
    assert part_name(3, "part-", 5) == "part-00003"
    assert part_name(123456, "part-", 5) == "part-123456"  # longer than the padding: as is
    assert part_name(0, "x_", 0) == "x_0"


def test_writer_round_robin_and_atomic_parts(tmp_path):
    d = tmp_path / "ds"
    with OFRecordWriter(str(d), part_num=3) as w:
        for i in range(7):
            w.write({"i": np.int64(i)})
        assert sorted(os.listdir(d)) == [f"part-0000{p}.partial-{os.getpid()}" for p in range(3)]
    assert sorted(os.listdir(d)) == ["part-00000", "part-00001", "part-00002"]
    assert w.counts == [3, 2, 2]
    per_part = [
        [int(parse_record(r)["i"][0]) for _, r in iter_records(str(d / f"part-0000{p}"))] for p in range(3)
    ]
    assert per_part == [[0, 3, 6], [1, 4], [2, 5]]


def test_writer_error_leaves_nothing_behind(tmp_path):
    d = tmp_path / "ds"
    with pytest.raises(RuntimeError), OFRecordWriter(str(d), part_num=2) as w:
        w.write({"i": np.int64(1)})
        raise RuntimeError("interrupted conversion")
    assert os.listdir(d) == []


def test_writer_rejects_bad_values_and_writes_nothing(tmp_path):
    with OFRecordWriter(str(tmp_path), part_num=1) as w:
        w.write({"ok": np.int32(1)})
        for bad, words in [
            ({}, "non-empty"),
            ({"s": "text"}, "str values are ambiguous"),
            ({"o": np.array([object()])}, "numeric array"),
            ({"c": np.array([1j])}, "complex128"),
            ({"u": np.array([1], np.uint64)}, "uint64"),
            ({3: np.int32(1)}, "names must be str"),
            (b"", "must not be empty"),
        ]:
            with pytest.raises(flow.errors.ArgumentError, match=words):
                w.write(bad)
        assert w.count == 1
    assert [parse_record(r) for _, r in iter_records(str(tmp_path / "part-00000"))] == [
        {"ok": np.array([1], np.int32)}
    ]
    with pytest.raises(flow.errors.ArgumentError, match="exist already"):
        OFRecordWriter(str(tmp_path))
    OFRecordWriter(str(tmp_path), overwrite=True).close()
    assert list(iter_records(str(tmp_path / "part-00000"))) == []


# -- round trips of OneFlow-Benchmark's datasets ------------------------------------------


def _images(n, rng):
    """PNG-encoded images of varied sizes (lossless: decoded pixels equal the originals)."""
    out = []
    for _ in range(n):
        h, w = rng.integers(5, 40, size=2)
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        ok, enc = cv2.imencode(".png", img)
        assert ok
        out.append((img, enc.tobytes()))
    return out


def test_images_and_labels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = _images(9, rng)
    labels = rng.integers(0, 1000, size=9).astype(np.int32)
    with OFRecordWriter(str(tmp_path), part_num=1) as w:  # one part: reading order = writing order
        for (_, enc), label in zip(images, labels):
            w.write({"encoded": enc, "class/label": label})
    source = OFRecordSource(str(tmp_path), part_name_suffix_length=5)
    batch = source.next_records(9)
    assert decoders.decode_bytes(batch, "encoded") == [enc for _, enc in images]
    got_labels = decoders.decode_raw(batch, "class/label", shape=(), dtype=np.int32)
    np.testing.assert_array_equal(got_labels, labels)
    bgr = decoders.decode_image(batch, "encoded")
    rgb = decoders.decode_image(batch, "encoded", color_space="RGB")
    gray = decoders.decode_image(batch, "encoded", color_space="GRAY")
    for (img, _), b, r, g in zip(images, bgr, rgb, gray):
        assert b.dtype == np.uint8 and b.shape == img.shape
        np.testing.assert_array_equal(b, img)  # OpenCV's order is BGR, as the image was encoded
        np.testing.assert_array_equal(r, img[..., ::-1])
        assert g.shape == img.shape[:2] + (1,)
        expected_gray = (img.astype(np.float64) @ [0.114, 0.587, 0.299]).round()  # ITU-R 601
        assert np.abs(g[..., 0] - expected_gray).max() <= 1


def test_bert_style_int_features_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    seq, n = 32, 6
    rows = []
    for _ in range(n):
        rows.append(
            {
                "input_ids": rng.integers(0, 30522, seq).astype(np.int64),
                "input_mask": (np.arange(seq) < rng.integers(1, seq)).astype(np.int64),
                "segment_ids": rng.integers(0, 2, seq).astype(np.int64),
                "masked_lm_ids": rng.integers(0, 30522, 5).astype(np.int64),
                "masked_lm_positions": rng.integers(0, seq, 5).astype(np.int64),
                "masked_lm_weights": rng.random(5).astype(np.float32),
                "next_sentence_labels": np.array([rng.integers(0, 2)], np.int64),
            }
        )
    with OFRecordWriter(str(tmp_path), part_num=2) as w:
        for r in rows:
            w.write(r)
    batch = OFRecordSource(str(tmp_path), data_part_num=2, part_name_suffix_length=5).next_records(n)
    order = [0, 2, 4, 1, 3, 5]  # part 0 holds records 0, 2, 4
    for name in ("input_ids", "input_mask", "segment_ids"):
        got = decoders.decode_raw(batch, name, shape=(seq,), dtype=np.int32)  # as BERT's job reads them
        np.testing.assert_array_equal(got, np.stack([rows[i][name] for i in order]).astype(np.int32))
    weights = decoders.decode_raw(batch, "masked_lm_weights", shape=(5,), dtype=np.float32)
    assert weights.tobytes() == np.stack([rows[i]["masked_lm_weights"] for i in order]).tobytes()
    for i, r in zip(order, batch):
        parsed = parse_record(r)
        for name, value in rows[i].items():
            assert parsed[name].tobytes() == value.tobytes() and parsed[name].dtype == value.dtype


def test_wide_and_deep_style_features_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    n = 8
    rows = [
        {
            "labels": np.array([rng.integers(0, 2)], np.int32),
            "dense_fields": rng.standard_normal(13).astype(np.float32),
            "wide_sparse_fields": rng.integers(0, 2**31 - 1, 2).astype(np.int32),
            "deep_sparse_fields": rng.integers(0, 2**31 - 1, 26).astype(np.int32),
        }
        for _ in range(n)
    ]
    path = tmp_path / "part-0"
    write_records(str(path), rows)
    batch = [r for _, r in iter_records(str(path))]
    dense = decoders.decode_raw(batch, "dense_fields", shape=(13,), dtype=flow.float32)
    assert dense.tobytes() == np.stack([r["dense_fields"] for r in rows]).tobytes()
    deep = decoders.decode_raw(batch, "deep_sparse_fields", shape=(26,), dtype="int32")
    np.testing.assert_array_equal(deep, np.stack([r["deep_sparse_fields"] for r in rows]))
    labels = decoders.decode_raw(decoders.parse_batch(batch), "labels", shape=(1,), dtype=np.int32)
    np.testing.assert_array_equal(labels[:, 0], [r["labels"][0] for r in rows])


# -- decoder semantics (OneFlow's ofrecord_decoder_kernels.cpp) ---------------------------


def test_decode_raw_conversion_padding_and_bytes_as_int8():
    recs = [
        serialize_record({"f": np.array([1.9, -1.9, 3.0], np.float32), "b": b"\x01\xc8"}),
        serialize_record({"f": np.array([7.5], np.float64), "b": b"\x05\x06\x07\x08\x09"}),
    ]
    with pytest.raises(flow.errors.DataError, match="holds 1 values"):
        decoders.decode_raw(recs, "f", (3,), np.int32)
    for flag in ("dim1_varying_length", "auto_zero_padding"):
        got = decoders.decode_raw(recs, "f", (3,), np.int32, **{flag: True})
        np.testing.assert_array_equal(got, [[1, -1, 3], [7, 0, 0]])  # static_cast truncates, zeros pad
    with pytest.raises(flow.errors.DataError, match="at most 2"):
        decoders.decode_raw(recs, "f", (2,), np.int32, auto_zero_padding=True)
    # bytes are signed chars: 0xc8 is -56 in int32/float outputs, 200 in uint8; cut or zero-filled
    np.testing.assert_array_equal(decoders.decode_raw(recs, "b", (3,), np.int32), [[1, -56, 0], [5, 6, 7]])
    np.testing.assert_array_equal(decoders.decode_raw(recs, "b", (2,), np.uint8), [[1, 200], [5, 6]])
    got = decoders.decode_raw(recs, "b", (1, 2), np.float64)
    assert got.shape == (2, 1, 2) and got.dtype == np.float64 and got[0, 0, 1] == -56.0


def test_random_crop_windows_follow_oneflows_rule():
    rng = np.random.default_rng(0)
    area, ratio = (0.08, 1.0), (0.75, 1.333333)
    for _ in range(300):
        H, W = (int(v) for v in rng.integers(1, 300, size=2))
        y, x, h, w = image_ops.random_crop_window(H, W, rng, 10, area, ratio)
        assert 0 <= y <= H - h and 0 <= x <= W - w and h >= 1 and w >= 1
    # a square image has room for every ratio: the window's area and ratio are in range
    for _ in range(200):
        y, x, h, w = image_ops.random_crop_window(200, 200, rng, 10, area, ratio)
        assert 0.75 - 0.02 <= w / h <= 1.333333 + 0.02
        assert h * w <= 200 * 200 and h * w >= 0.08 * 200 * 200 * 0.9
    # a 1x100 strip: H * maxW < min_area, so OneFlow takes (H, maxW) = (1, 1)
    assert image_ops.random_crop_window(1, 100, rng, 10, (0.5, 1.0), ratio)[2:] == (1, 1)
    # W * maxH < min_area: (maxH, W)
    assert image_ops.random_crop_window(100, 10, rng, 10, (0.9, 1.0), (1.0, 1.0))[2:] == (10, 10)
    # ratio 1.5 on a square: one attempt fits only when the area draw is <= 2/3; otherwise
    # OneFlow's fallback clamps the whole image to the ratio: (int(100 / 1.5), 100)
    sizes = {image_ops.random_crop_window(100, 100, rng, 1, (0.5, 1.0), (1.5, 1.5))[2:] for _ in range(200)}
    assert (66, 100) in sizes and len(sizes) > 5
    assert all(w <= 100 and abs(w / h - 1.5) < 0.03 for h, w in sizes - {(66, 100)})


def test_decode_image_random_crop_is_a_crop_of_the_image_and_seeded():
    rng = np.random.default_rng(3)
    ((img, enc),) = _images(1, rng)
    batch = [serialize_record({"encoded": enc})] * 6
    crops = decoders.decode_image_random_crop(batch, "encoded", rng=np.random.default_rng(5))
    again = decoders.decode_image_random_crop(batch, "encoded", rng=5)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(crops, again))
    windows = image_ops.random_crop_windows([img.shape[0]] * 6, [img.shape[1]] * 6, np.random.default_rng(5))
    assert len({tuple(w) for w in windows}) > 1  # each image its own window
    for crop, (y, x, h, w) in zip(crops, windows):
        np.testing.assert_array_equal(crop, img[y : y + h, x : x + w])
    rgb = decoders.decode_image_random_crop(batch[:1], "encoded", color_space="RGB", rng=5)[0]
    np.testing.assert_array_equal(rgb, crops[0][..., ::-1])

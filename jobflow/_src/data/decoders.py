"""Decoders of a batch of OFRecords: OneFlow's ``OFRecordRawDecoder``,
``OFRecordBytesDecoder``, ``OFRecordImageDecoder`` and ``OFRecordImageDecoderRandomCrop``
kernels (``oneflow/user/kernels/ofrecord_decoder_kernels.cpp`` at v0.4.0) as pure
functions on the host.

A batch is a sequence whose items are serialized records (``bytes``, as
:meth:`OFRecordSource.next_records` returns them) or parsed ``record_pb2.OFRecord``
messages (:func:`parse_batch`: parse once, then run several decoders on the messages).
Images are decoded with OpenCV's ``cv2.imdecode``, the call OneFlow's kernels make, so the
pixels are OneFlow's (JPEG, PNG, BMP, ... whatever OpenCV reads).

Errors raise :class:`~jobflow.errors.DataError` naming the decoder, the feature and the
record's index in the batch: a missing feature (the record's features are listed), a
feature of the wrong kind, a size that does not fit ``shape``, bytes that are not an image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from jobflow._src.core import checks, dtypes
from jobflow._src.core.errors import ArgumentError, DataError
from jobflow._src.data import image_ops, record_pb2
from jobflow._src.data.ofrecord import parse_message

__all__ = [
    "parse_batch",
    "decode_raw",
    "decode_bytes",
    "decode_image",
    "decode_image_random_crop",
    "RAW_DTYPES",
    "COLOR_SPACES",
]

# the output dtypes OneFlow registers an ofrecord_raw_decoder kernel for
RAW_DTYPES = tuple(np.dtype(t) for t in ("int8", "uint8", "int32", "int64", "float32", "float64"))
COLOR_SPACES = ("BGR", "RGB", "GRAY")
_NUMERIC = {
    "float_list": np.float32,
    "double_list": np.float64,
    "int32_list": np.int32,
    "int64_list": np.int64,
}


def parse_batch(records: Sequence[Any]) -> list[Any]:
    """The batch as ``record_pb2.OFRecord`` messages (bytes parsed, messages kept)."""
    if isinstance(records, (bytes, str)) or not isinstance(records, Sequence):
        raise ArgumentError(
            f"a batch of OFRecords must be a list of serialized records or OFRecord messages; got {records!r:.80}"
        )
    out = []
    for i, r in enumerate(records):
        if isinstance(r, record_pb2.OFRecord):
            out.append(r)
        elif isinstance(r, (bytes, bytearray, memoryview)):
            try:
                out.append(parse_message(bytes(r)))
            except DataError as e:
                raise DataError(f"record {i} of the batch: {e}") from None
        else:
            raise ArgumentError(
                f"record {i} of the batch is a {type(r).__name__}, not bytes or an OFRecord message"
            )
    return out


def _feature(record: Any, name: str, index: int, op: str) -> Any:
    if name not in record.feature:
        raise DataError(
            f"{op}: record {index} of the batch has no feature {name!r} (its features: {sorted(record.feature)})"
        )
    return record.feature[name]


def _single_bytes(record: Any, name: str, index: int, op: str) -> bytes:
    feature = _feature(record, name, index, op)
    kind = feature.WhichOneof("kind")
    if kind != "bytes_list" or len(feature.bytes_list.value) != 1:
        got = f"a {kind} of {len(getattr(feature, kind).value)} values" if kind else "no list"
        raise DataError(
            f"{op}: feature {name!r} of record {index} must be a bytes_list of one value; it holds {got}"
        )
    return feature.bytes_list.value[0]


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """C++ ``static_cast`` element by element (float to int truncates toward zero; a value
    out of the target's range is undefined in C++ and unspecified here)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dtype)


def _raw_one(feature: Any, out: np.ndarray, varying: bool, name: str, index: int) -> None:
    kind = feature.WhichOneof("kind")
    n = out.shape[0]
    if kind == "bytes_list":
        if len(feature.bytes_list.value) != 1:
            raise DataError(
                f"decode_raw: feature {name!r} of record {index} is a bytes_list of "
                f"{len(feature.bytes_list.value)} values; the raw decoder reads exactly one"
            )
        raw = np.frombuffer(feature.bytes_list.value[0], np.int8)[:n]
        out[: raw.size] = _cast(raw, out.dtype)
    elif kind in _NUMERIC:
        values = np.asarray(getattr(feature, kind).value, _NUMERIC[kind])
        if values.size > n or (values.size != n and not varying):
            rule = (
                f"at most {n}" if varying else f"exactly {n} (or pass dim1_varying_length/auto_zero_padding)"
            )
            raise DataError(
                f"decode_raw: feature {name!r} of record {index} holds {values.size} values in its "
                f"{kind}; shape needs {rule}"
            )
        out[: values.size] = _cast(values, out.dtype)
    else:
        raise DataError(f"decode_raw: feature {name!r} of record {index} has no value list set")


def decode_raw(
    records: Sequence[Any],
    name: str,
    shape: Sequence[int],
    dtype: Any,
    dim1_varying_length: bool = False,
    auto_zero_padding: bool = False,
) -> np.ndarray:
    """Feature ``name`` of each record as an array of ``(len(records), *shape)`` ``dtype``
    (OneFlow's ``OFRecordRawDecoder``).

    - A numeric list (float, double, int32, int64) is converted to ``dtype`` as C++
      ``static_cast`` does. It must hold exactly ``prod(shape)`` values, or, with
      ``dim1_varying_length`` or ``auto_zero_padding``, at most that many: the rest is zeros.
      (OneFlow passes the two flags swapped to its kernel and leaves the rest uninitialized
      in one of the cases; jobflow always zero-fills. OneFlow's ``dim1_varying_length`` also
      makes the output a ragged tensor list; here the array is padded.)
    - A ``bytes_list`` of one value is read as signed ``int8`` values, as OneFlow's kernel
      reads it (byte 200 is -56 in an int32 or float output, 200 in a uint8 one): the first
      ``prod(shape)`` bytes, the rest zeros when it is shorter.

    ``dtype`` is one of OneFlow's raw decoder outputs: int8, uint8, int32, int64, float32,
    float64 (numpy, jobflow or string dtypes).
    """
    owner = "decode_raw"
    out_dtype = dtypes.as_dtype(dtype)
    if out_dtype not in RAW_DTYPES:
        raise ArgumentError(
            f"{owner}(dtype) must be one of {[str(t) for t in RAW_DTYPES]}; got dtype={dtype!r}"
        )
    dims = checks.int_list(owner, "shape", list(shape) if isinstance(shape, tuple) else shape, low=0)
    varying = checks.flag(owner, "dim1_varying_length", dim1_varying_length)
    varying = checks.flag(owner, "auto_zero_padding", auto_zero_padding) or varying
    messages = parse_batch(records)
    count = math.prod(dims)
    out = np.zeros((len(messages), count), out_dtype)
    for i, record in enumerate(messages):
        _raw_one(_feature(record, name, i, owner), out[i], varying, name, i)
    return out.reshape((len(messages), *dims))


def decode_bytes(records: Sequence[Any], name: str) -> list[bytes]:
    """Feature ``name`` of each record, a ``bytes_list`` of exactly one value, as bytes
    (OneFlow's ``OFRecordBytesDecoder``)."""
    return [_single_bytes(r, name, i, "decode_bytes") for i, r in enumerate(parse_batch(records))]


def _check_color_space(owner: str, color_space: str) -> str:
    return checks.choice(owner, "color_space", color_space, COLOR_SPACES)


def _imdecode(data: bytes, color_space: str, name: str, index: int, op: str) -> np.ndarray:
    flag = cv2.IMREAD_GRAYSCALE if color_space == "GRAY" else cv2.IMREAD_COLOR
    image = None
    if data:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        except cv2.error:
            image = None
    if image is None:
        raise DataError(
            f"{op}: feature {name!r} of record {index} is not an image OpenCV can decode "
            f"({len(data)} bytes, starting {bytes(data[:12])!r})"
        )
    return image


def _finish(image: np.ndarray, color_space: str) -> np.ndarray:
    if color_space == "GRAY":
        return np.ascontiguousarray(image).reshape(image.shape[0], image.shape[1], 1)
    if color_space == "RGB":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def decode_image(records: Sequence[Any], name: str, color_space: str = "BGR") -> list[np.ndarray]:
    """Feature ``name`` of each record (encoded image bytes) decoded to an ``(H, W, C)``
    uint8 array, ``C`` 3 for ``"BGR"`` (OneFlow's default) and ``"RGB"``, 1 for ``"GRAY"``
    (OneFlow's ``OFRecordImageDecoder``: ``cv2.imdecode`` with ``IMREAD_COLOR`` or
    ``IMREAD_GRAYSCALE``)."""
    color_space = _check_color_space("decode_image", color_space)
    out = []
    for i, record in enumerate(parse_batch(records)):
        data = _single_bytes(record, name, i, "decode_image")
        out.append(_finish(_imdecode(data, color_space, name, i, "decode_image"), color_space))
    return out


def _crop_args(
    num_attempts: int, random_area: Sequence[float], random_aspect_ratio: Sequence[float]
) -> tuple[int, tuple[float, float], tuple[float, float]]:
    owner = "decode_image_random_crop"
    attempts = checks.integer(owner, "num_attempts", num_attempts, low=1)
    ranges = []
    for arg, value in (("random_area", random_area), ("random_aspect_ratio", random_aspect_ratio)):
        ok = isinstance(value, Sequence) and len(value) == 2
        lo, hi = (checks.number(owner, arg, v, low=0, low_open=True) for v in value) if ok else (0.0, 0.0)
        if not ok or lo > hi or (arg == "random_area" and hi > 1):
            rule = "0 < low <= high" + (" <= 1" if arg == "random_area" else "")
            raise ArgumentError(f"{owner}({arg}) must be a pair (low, high) with {rule}; got {arg}={value!r}")
        ranges.append((lo, hi))
    return attempts, ranges[0], ranges[1]


def decode_image_random_crop(
    records: Sequence[Any],
    name: str,
    color_space: str = "BGR",
    num_attempts: int = 10,
    random_area: Sequence[float] = (0.08, 1.0),
    random_aspect_ratio: Sequence[float] = (0.75, 1.333333),
    rng: np.random.Generator | int | None = None,
) -> list[np.ndarray]:
    """:func:`decode_image`, each image then cropped to a random window
    (OneFlow's ``OFRecordImageDecoderRandomCrop``; the windows of the batch are drawn together
    by ``image_ops.random_crop_windows``, the rule of ``image_ops.random_crop_window``). ``rng``: a
    ``numpy.random.Generator`` (advanced), an int seed, or None for a fresh unpredictable one. (OneFlow keeps one C++ engine per batch
    position; the windows here follow the same rule from numpy's draws.)"""
    owner = "decode_image_random_crop"
    color_space = _check_color_space(owner, color_space)
    attempts, area, ratio = _crop_args(num_attempts, random_area, random_aspect_ratio)
    if not isinstance(rng, np.random.Generator):
        if rng is not None:
            checks.integer(owner, "rng", rng, low=0)
        rng = np.random.default_rng(rng)
    images = [
        _imdecode(_single_bytes(record, name, i, owner), color_space, name, i, owner)
        for i, record in enumerate(parse_batch(records))
    ]
    # the windows of the whole batch in a few numpy calls (the scalar rule costs ~60 us an image)
    heights, widths = [im.shape[0] for im in images], [im.shape[1] for im in images]
    windows = image_ops.random_crop_windows(heights, widths, rng, attempts, area, ratio)
    return [_finish(im[y : y + h, x : x + w], color_space) for im, (y, x, h, w) in zip(images, windows)]

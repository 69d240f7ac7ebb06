"""OneFlow's OFRecord data ops: ``flow.data.ofrecord_reader`` and the decoders.

Each returns a data node (``nodes.py``): the reader's batches are lists of serialized
records (read by ``source.OFRecordSource``), the image decoders' lists of HWC uint8
images, ``OFRecordRawDecoder``'s a dense tensor, which in a job body is the step's
array (a hidden input). Arguments are checked when the op is called, inside a job body
as outside; a missing dataset raises :class:`~jobflow.errors.DataError` naming the files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core.errors import ArgumentError
from jobflow._src.data import decoders as _decoders
from jobflow._src.data import nodes as _nodes
from jobflow._src.data.source import OFRecordSource

__all__ = [
    "ofrecord_reader",
    "OFRecordRawDecoder",
    "OFRecordBytesDecoder",
    "OFRecordImageDecoder",
    "OFRecordImageDecoderRandomCrop",
]


def _name(owner: str, arg: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"{owner}({arg}) must be a non-empty str; got {arg}={value!r}")
    return value


def ofrecord_reader(
    ofrecord_dir: str,
    batch_size: int = 1,
    data_part_num: int = 1,
    part_name_prefix: str = "part-",
    part_name_suffix_length: int = -1,
    random_shuffle: bool = False,
    shuffle_buffer_size: int = 1024,
    shuffle_after_epoch: bool = False,
    name: str | None = None,
) -> Any:
    """Batches of ``batch_size`` serialized records of the OFRecord dataset in
    ``ofrecord_dir`` (OneFlow's ``flow.data.ofrecord_reader``; the reading order, the
    shuffles and the split of the parts over processes are ``OFRecordSource``'s, see
    docs/data_format.md). The shuffles are seeded from the job's seed (``iterate``'s
    outside a job). Feed the result to the ``OFRecord*Decoder`` ops."""
    owner = "data.ofrecord_reader"
    if not isinstance(ofrecord_dir, (str, os.PathLike)):
        raise ArgumentError(f"{owner}(ofrecord_dir) must be a path; got ofrecord_dir={ofrecord_dir!r}")
    path = os.path.abspath(os.fspath(ofrecord_dir))
    batch_size = checks.integer(owner, "batch_size", batch_size, low=1)
    settings: dict[str, Any] = dict(
        data_part_num=data_part_num,
        part_name_prefix=part_name_prefix,
        part_name_suffix_length=part_name_suffix_length,
        random_shuffle=random_shuffle,
        shuffle_buffer_size=shuffle_buffer_size,
        shuffle_after_epoch=shuffle_after_epoch,
    )
    OFRecordSource(path, **settings).close()  # checks the arguments and that every part is there

    def source(seed: int, rank: int, world: int) -> OFRecordSource:
        return OFRecordSource(path, **settings, seed=seed, rank=rank, world=world)

    node = _nodes.DataNode(
        owner,
        (),
        "records",
        batch_size,
        source=source,
        name=name,
        key=(path, *sorted(settings.items())),
        state_bytes=4096 + (40 * int(shuffle_buffer_size) if random_shuffle else 0),
    )
    return _nodes.emit(node)


def _parsed(reader: _nodes.DataNode) -> _nodes.DataNode:
    """The reader's records parsed once per batch (``decoders.parse_batch``): every decoder
    of one reader reads the same ``OFRecord`` messages."""
    node = reader.derived.get("parsed")
    if node is None:

        def compute(inputs: list, _batch: _nodes.Batch) -> list:
            return _decoders.parse_batch(inputs[0])

        node = _nodes.DataNode("data.parse_batch", (reader,), "records", reader.batch_size, compute)
        reader.derived["parsed"] = node
    return node


def OFRecordRawDecoder(
    input_blob: Any,
    blob_name: str,
    shape: Sequence[int],
    dtype: Any,
    dim1_varying_length: bool = False,
    auto_zero_padding: bool = False,
    name: str | None = None,
) -> Any:
    """Feature ``blob_name`` of each record as a ``(batch_size, *shape)`` array of
    ``dtype`` (OneFlow's ``flow.data.OFRecordRawDecoder``; the conversion rules are
    ``decoders.decode_raw``'s). In a job body: the step's array of the batch."""
    owner = "data.OFRecordRawDecoder"
    reader = _parsed(_nodes.node_of(input_blob, owner, "input_blob", ("records",)))
    blob_name = _name(owner, "blob_name", blob_name)
    args = (blob_name, tuple(shape) if isinstance(shape, list) else shape, dtype)
    flags = (dim1_varying_length, auto_zero_padding)
    empty = _decoders.decode_raw([], *args, *flags)  # checks shape, dtype and the flags
    out_dtype = _dtypes.canonical(empty.dtype)  # what the device holds (int64 -> int32 without x64)

    def compute(inputs: list, _batch: _nodes.Batch) -> np.ndarray:
        return _decoders.decode_raw(inputs[0], *args, *flags).astype(out_dtype, copy=False)

    node = _nodes.DataNode(
        owner,
        (reader,),
        "tensor",
        reader.batch_size,
        compute,
        tuple(empty.shape[1:]),
        out_dtype,
        name=name,
        key=(blob_name, flags),
    )
    return _nodes.emit(node)


def OFRecordBytesDecoder(input_blob: Any, blob_name: str, name: str | None = None) -> Any:
    """Feature ``blob_name`` (one ``bytes`` value per record) of each record: a list of
    bytes per batch (OneFlow's ``flow.data.OFRecordBytesDecoder``), for data ops."""
    owner = "data.OFRecordBytesDecoder"
    reader = _parsed(_nodes.node_of(input_blob, owner, "input_blob", ("records",)))
    blob_name = _name(owner, "blob_name", blob_name)

    def compute(inputs: list, _batch: _nodes.Batch) -> list:
        return _decoders.decode_bytes(inputs[0], blob_name)

    node = _nodes.DataNode(owner, (reader,), "list", reader.batch_size, compute, name=name, key=(blob_name,))
    return _nodes.emit(node)


def OFRecordImageDecoder(
    input_blob: Any, blob_name: str, color_space: str = "BGR", name: str | None = None
) -> Any:
    """Feature ``blob_name`` (encoded image bytes) of each record decoded to an HWC uint8
    image (OneFlow's ``flow.data.OFRecordImageDecoder``): a list of images per batch, for
    the ``flow.image`` ops."""
    owner = "data.OFRecordImageDecoder"
    reader = _parsed(_nodes.node_of(input_blob, owner, "input_blob", ("records",)))
    blob_name = _name(owner, "blob_name", blob_name)
    _decoders.decode_image([], blob_name, color_space)  # checks color_space

    def compute(inputs: list, _batch: _nodes.Batch) -> list:
        return _decoders.decode_image(inputs[0], blob_name, color_space)

    node = _nodes.DataNode(
        owner, (reader,), "list", reader.batch_size, compute, name=name, key=(blob_name, color_space)
    )
    return _nodes.emit(node)


def OFRecordImageDecoderRandomCrop(
    input_blob: Any,
    blob_name: str,
    color_space: str = "BGR",
    num_attempts: int = 10,
    seed: int | None = None,
    random_area: Sequence[float] = (0.08, 1.0),
    random_aspect_ratio: Sequence[float] = (0.75, 1.333333),
    name: str = "OFRecordImageDecoderRandomCrop",
) -> Any:
    """:func:`OFRecordImageDecoder`, each image cropped to a random window (OneFlow's
    ``flow.data.OFRecordImageDecoderRandomCrop``; the window rule is
    ``image_ops.random_crop_window``'s), drawn from the node's stream (``seed``, else the
    job's)."""
    owner = "data.OFRecordImageDecoderRandomCrop"
    reader = _parsed(_nodes.node_of(input_blob, owner, "input_blob", ("records",)))
    blob_name = _name(owner, "blob_name", blob_name)
    if seed is not None:
        seed = checks.integer(owner, "seed", seed)
    crop = (color_space, num_attempts, tuple(random_area), tuple(random_aspect_ratio))
    _decoders.decode_image_random_crop([], blob_name, *crop, rng=0)  # checks the arguments

    def compute(inputs: list, batch: _nodes.Batch) -> list:
        return _decoders.decode_image_random_crop(inputs[0], blob_name, *crop, rng=batch.rng)

    node = _nodes.DataNode(
        owner, (reader,), "list", reader.batch_size, compute, seed=seed, name=name, key=(blob_name, crop)
    )
    return _nodes.emit(node)

"""``flow.data``: data loading (``load_mnist``) and OneFlow's OFRecord format, usable
outside a job (docs/data_format.md): the writer, the resumable reader and the decoders."""

from jobflow._src.data.decoders import decode_bytes as decode_bytes
from jobflow._src.data.decoders import decode_image as decode_image
from jobflow._src.data.decoders import decode_image_random_crop as decode_image_random_crop
from jobflow._src.data.decoders import decode_raw as decode_raw
from jobflow._src.data.decoders import parse_batch as parse_batch
from jobflow._src.data.ofrecord import OFRecordWriter as OFRecordWriter
from jobflow._src.data.ofrecord import iter_records as iter_records
from jobflow._src.data.ofrecord import parse_record as parse_record
from jobflow._src.data.ofrecord import serialize_record as serialize_record
from jobflow._src.data.ofrecord import write_records as write_records
from jobflow._src.data.source import OFRecordSource as OFRecordSource
from jobflow._src.io.mnist import load_mnist as load_mnist

__all__ = [
    "load_mnist",
    "OFRecordWriter",
    "OFRecordSource",
    "write_records",
    "iter_records",
    "parse_record",
    "serialize_record",
    "parse_batch",
    "decode_raw",
    "decode_bytes",
    "decode_image",
    "decode_image_random_crop",
]

"""``flow.data``: OneFlow's in-job data ops, the standalone iterator, ``load_mnist`` and
OneFlow's OFRecord format.

In a job body the data ops return the arrays of the next batch (each call of the job
takes one); outside a job they return nodes that :func:`iterate` runs (docs/data.md).
The writer, the resumable reader and the decoders work on their own too
(docs/data_format.md).
"""

from jobflow._src.data.decoders import decode_bytes as decode_bytes
from jobflow._src.data.decoders import decode_image as decode_image
from jobflow._src.data.decoders import decode_image_random_crop as decode_image_random_crop
from jobflow._src.data.decoders import decode_raw as decode_raw
from jobflow._src.data.decoders import parse_batch as parse_batch
from jobflow._src.data.image_nodes import (
    ofrecord_image_classification_reader as ofrecord_image_classification_reader,
)
from jobflow._src.data.ofrecord import OFRecordWriter as OFRecordWriter
from jobflow._src.data.ofrecord import iter_records as iter_records
from jobflow._src.data.ofrecord import parse_record as parse_record
from jobflow._src.data.ofrecord import serialize_record as serialize_record
from jobflow._src.data.ofrecord import write_records as write_records
from jobflow._src.data.ops import DataIterator as DataIterator
from jobflow._src.data.ops import decode_random as decode_random
from jobflow._src.data.ops import iterate as iterate
from jobflow._src.data.record_ops import OFRecordBytesDecoder as OFRecordBytesDecoder
from jobflow._src.data.record_ops import OFRecordBytesDecoder as ofrecord_bytes_decoder
from jobflow._src.data.record_ops import OFRecordImageDecoder as OFRecordImageDecoder
from jobflow._src.data.record_ops import OFRecordImageDecoder as ofrecord_image_decoder
from jobflow._src.data.record_ops import OFRecordImageDecoderRandomCrop as OFRecordImageDecoderRandomCrop
from jobflow._src.data.record_ops import OFRecordImageDecoderRandomCrop as ofrecord_image_decoder_random_crop
from jobflow._src.data.record_ops import OFRecordRawDecoder as OFRecordRawDecoder
from jobflow._src.data.record_ops import OFRecordRawDecoder as ofrecord_raw_decoder
from jobflow._src.data.record_ops import ofrecord_reader as ofrecord_reader
from jobflow._src.data.source import OFRecordSource as OFRecordSource
from jobflow._src.io.mnist import load_mnist as load_mnist

__all__ = [
    "load_mnist",
    "ofrecord_reader",
    "ofrecord_image_classification_reader",
    "OFRecordRawDecoder",
    "ofrecord_raw_decoder",
    "OFRecordBytesDecoder",
    "ofrecord_bytes_decoder",
    "OFRecordImageDecoder",
    "ofrecord_image_decoder",
    "OFRecordImageDecoderRandomCrop",
    "ofrecord_image_decoder_random_crop",
    "decode_random",
    "iterate",
    "DataIterator",
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

"""``flow.data``: OneFlow's in-job data ops, the standalone iterator and ``load_mnist``.

In a job body the data ops return the arrays of the next batch (each call of the job
takes one); outside a job they return nodes that :func:`iterate` runs (docs/data.md).
"""

from jobflow._src.data.ops import DataIterator as DataIterator
from jobflow._src.data.ops import decode_random as decode_random
from jobflow._src.data.ops import iterate as iterate
from jobflow._src.io.mnist import load_mnist as load_mnist

__all__ = ["DataIterator", "decode_random", "iterate", "load_mnist"]

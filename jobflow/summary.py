"""``flow.summary``: TensorBoard event files from jobs (OneFlow's names and arguments).

``create_summary_writer(logdir)`` opens the writer; ``scalar``, ``histogram``, ``image``
and ``pb`` write values from inside a job each time it runs; ``flush_summary_writer()``
writes them to disk. For a train job's loss, learning rate and loss scale no op is needed:
``flow.function_config().summary(logdir)`` (docs/summaries.md).
"""

from jobflow._src.ops.summary import create_summary_writer as create_summary_writer
from jobflow._src.ops.summary import flush_summary_writer as flush_summary_writer
from jobflow._src.ops.summary import histogram as histogram
from jobflow._src.ops.summary import image as image
from jobflow._src.ops.summary import pb as pb
from jobflow._src.ops.summary import scalar as scalar

__all__ = ["create_summary_writer", "flush_summary_writer", "scalar", "histogram", "image", "pb"]

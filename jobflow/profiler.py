"""OneFlow's NVTX profiler marks (``flow.profiler``): no-ops under XLA (use ``jax.profiler``)."""

from jobflow._src.ops.debug import nvtx_end as nvtx_end
from jobflow._src.ops.debug import nvtx_start as nvtx_start
from jobflow._src.ops.debug import range_pop as range_pop
from jobflow._src.ops.debug import range_push as range_push

__all__ = [
    "nvtx_start",
    "nvtx_end",
    "range_push",
    "range_pop",
]

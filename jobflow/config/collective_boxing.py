"""OneFlow's ``flow.config.collective_boxing.*`` (NCCL fusion of its collectives): accepted,
checked and recorded; XLA combines collectives itself."""

from jobflow._src.graph.runtime_knobs import enable_fusion as enable_fusion
from jobflow._src.graph.runtime_knobs import nccl_enable_all_to_all as nccl_enable_all_to_all
from jobflow._src.graph.runtime_knobs import nccl_enable_mixed_fusion as nccl_enable_mixed_fusion
from jobflow._src.graph.runtime_knobs import nccl_fusion_all_gather as nccl_fusion_all_gather
from jobflow._src.graph.runtime_knobs import nccl_fusion_all_reduce as nccl_fusion_all_reduce
from jobflow._src.graph.runtime_knobs import (
    nccl_fusion_all_reduce_use_buffer as nccl_fusion_all_reduce_use_buffer,
)
from jobflow._src.graph.runtime_knobs import nccl_fusion_broadcast as nccl_fusion_broadcast
from jobflow._src.graph.runtime_knobs import nccl_fusion_max_ops as nccl_fusion_max_ops
from jobflow._src.graph.runtime_knobs import nccl_fusion_reduce as nccl_fusion_reduce
from jobflow._src.graph.runtime_knobs import nccl_fusion_reduce_scatter as nccl_fusion_reduce_scatter
from jobflow._src.graph.runtime_knobs import nccl_fusion_threshold_mb as nccl_fusion_threshold_mb
from jobflow._src.graph.runtime_knobs import nccl_num_streams as nccl_num_streams
from jobflow._src.graph.runtime_knobs import num_callback_threads as num_callback_threads

__all__ = [
    "enable_fusion",
    "num_callback_threads",
    "nccl_num_streams",
    "nccl_fusion_threshold_mb",
    "nccl_fusion_all_reduce_use_buffer",
    "nccl_fusion_all_reduce",
    "nccl_fusion_reduce_scatter",
    "nccl_fusion_all_gather",
    "nccl_fusion_reduce",
    "nccl_fusion_broadcast",
    "nccl_fusion_max_ops",
    "nccl_enable_all_to_all",
    "nccl_enable_mixed_fusion",
]

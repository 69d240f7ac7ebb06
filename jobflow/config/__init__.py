"""Session-wide settings (``flow.config``) and per-job settings (``flow.function_config``)."""

from jobflow._src.graph.function_config import FunctionConfig as FunctionConfig
from jobflow._src.graph.function_config import function_config as function_config
from jobflow._src.graph.runtime_knobs import collect_act_event as collect_act_event
from jobflow._src.graph.runtime_knobs import comm_net_worker_num as comm_net_worker_num
from jobflow._src.graph.runtime_knobs import compute_thread_pool_size as compute_thread_pool_size
from jobflow._src.graph.runtime_knobs import (
    disable_group_boxing_by_dst_parallel as disable_group_boxing_by_dst_parallel,
)
from jobflow._src.graph.runtime_knobs import enable_debug_mode as enable_debug_mode
from jobflow._src.graph.runtime_knobs import enable_mem_chain_merge as enable_mem_chain_merge
from jobflow._src.graph.runtime_knobs import enable_model_io_v2 as enable_model_io_v2
from jobflow._src.graph.runtime_knobs import (
    enable_numa_aware_cuda_malloc_host as enable_numa_aware_cuda_malloc_host,
)
from jobflow._src.graph.runtime_knobs import enable_tensor_float_32_compute as enable_tensor_float_32_compute
from jobflow._src.graph.runtime_knobs import machine_num as machine_num
from jobflow._src.graph.runtime_knobs import max_mdsave_worker_num as max_mdsave_worker_num
from jobflow._src.graph.runtime_knobs import nccl_use_compute_stream as nccl_use_compute_stream
from jobflow._src.graph.runtime_knobs import persistence_buf_byte as persistence_buf_byte
from jobflow._src.graph.runtime_knobs import rdma_mem_block_mbyte as rdma_mem_block_mbyte
from jobflow._src.graph.runtime_knobs import rdma_recv_msg_buf_mbyte as rdma_recv_msg_buf_mbyte
from jobflow._src.graph.runtime_knobs import reserved_device_mem_mbyte as reserved_device_mem_mbyte
from jobflow._src.graph.runtime_knobs import reserved_host_mem_mbyte as reserved_host_mem_mbyte
from jobflow._src.graph.runtime_knobs import (
    save_downloaded_file_to_local_fs as save_downloaded_file_to_local_fs,
)
from jobflow._src.graph.runtime_knobs import (
    thread_enable_local_message_queue as thread_enable_local_message_queue,
)
from jobflow._src.graph.runtime_knobs import use_rdma as use_rdma
from jobflow._src.graph.settings import cpu_device_num as cpu_device_num
from jobflow._src.graph.settings import enable_legacy_model_io as enable_legacy_model_io
from jobflow._src.graph.settings import gpu_device_num as gpu_device_num
from jobflow._src.graph.settings import legacy_model_io_enabled as legacy_model_io_enabled
from jobflow._src.graph.settings import seed as seed
from jobflow.config import collective_boxing as collective_boxing
from jobflow.config import env as env

__all__ = [
    "FunctionConfig",
    "function_config",
    "env",
    "seed",
    "cpu_device_num",
    "gpu_device_num",
    "enable_legacy_model_io",
    "legacy_model_io_enabled",
    "collective_boxing",
    "machine_num",
    "comm_net_worker_num",
    "max_mdsave_worker_num",
    "enable_numa_aware_cuda_malloc_host",
    "compute_thread_pool_size",
    "rdma_mem_block_mbyte",
    "rdma_recv_msg_buf_mbyte",
    "reserved_host_mem_mbyte",
    "reserved_device_mem_mbyte",
    "use_rdma",
    "thread_enable_local_message_queue",
    "enable_debug_mode",
    "save_downloaded_file_to_local_fs",
    "persistence_buf_byte",
    "enable_model_io_v2",
    "collect_act_event",
    "enable_mem_chain_merge",
    "nccl_use_compute_stream",
    "disable_group_boxing_by_dst_parallel",
    "enable_tensor_float_32_compute",
]

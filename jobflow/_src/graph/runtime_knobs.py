"""OneFlow's runtime knobs (``flow.config.*``, ``flow.config.collective_boxing.*``,
``flow.env.*`` logging and ports): accepted, checked and recorded.

OneFlow v0.4 read these to size its own runtime: thread pools, RDMA buffers, host and
device memory reservations, NCCL fusion of its collective boxing, glog files, the
control and data ports of its gRPC network. XLA and JAX have no counterpart: XLA plans
memory and fuses collectives itself, jax.distributed owns the network. A program that
sets them runs unchanged: each setter checks its argument as OneFlow did (a ``TypeError``
for the wrong type), records the value (:func:`recorded`) and returns None.
``flow.config.enable_tensor_float_32_compute`` has an effect (JAX's default matmul
precision), and ``flow.env.ctrl_port`` with ``flow.env.machine`` describe several
processes (``graph/env.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["recorded", "make_setter", "CONFIG_KNOBS", "COLLECTIVE_BOXING_KNOBS", "ENV_KNOBS"]

_recorded: dict[str, object] = {}

# name -> (type of the value, default of the argument or _REQUIRED, what it tuned in OneFlow)
_REQUIRED = object()

CONFIG_KNOBS = {
    "machine_num": (
        int,
        _REQUIRED,
        "the machine count of OneFlow's resource (flow.env.machine sets it here)",
    ),
    "comm_net_worker_num": (int, _REQUIRED, "OneFlow's network worker threads"),
    "max_mdsave_worker_num": (int, _REQUIRED, "OneFlow's model-saving threads"),
    "enable_numa_aware_cuda_malloc_host": (bool, True, "OneFlow's pinned-memory allocator"),
    "compute_thread_pool_size": (int, _REQUIRED, "OneFlow's compute thread pool (XLA sizes its own)"),
    "rdma_mem_block_mbyte": (int, _REQUIRED, "OneFlow's RDMA buffers"),
    "rdma_recv_msg_buf_mbyte": (int, _REQUIRED, "OneFlow's RDMA buffers"),
    "reserved_host_mem_mbyte": (int, _REQUIRED, "OneFlow's memory planner (XLA plans memory itself)"),
    "reserved_device_mem_mbyte": (int, _REQUIRED, "OneFlow's memory planner (XLA plans memory itself)"),
    "use_rdma": (bool, True, "OneFlow's RDMA network (jax.distributed owns the network)"),
    "thread_enable_local_message_queue": (bool, _REQUIRED, "OneFlow's actor threads"),
    "enable_debug_mode": (bool, _REQUIRED, "OneFlow's debug dumps of its job protos"),
    "save_downloaded_file_to_local_fs": (bool, True, "OneFlow's file-system cache"),
    "persistence_buf_byte": (int, _REQUIRED, "OneFlow's file write buffers"),
    "enable_model_io_v2": (
        bool,
        _REQUIRED,
        "OneFlow's choice of checkpoint implementation (jobflow has one)",
    ),
    "collect_act_event": (bool, True, "OneFlow's actor profiling events"),
    "enable_mem_chain_merge": (bool, True, "OneFlow's memory planner"),
    "nccl_use_compute_stream": (bool, False, "OneFlow's CUDA streams (XLA schedules NCCL itself)"),
    "disable_group_boxing_by_dst_parallel": (bool, False, "OneFlow's boxing passes"),
}

COLLECTIVE_BOXING_KNOBS = {
    "enable_fusion": (bool, True, "OneFlow's fusion of collectives (XLA combines collectives itself)"),
    "num_callback_threads": (int, _REQUIRED, "OneFlow's collective callback threads"),
    "nccl_num_streams": (int, _REQUIRED, "OneFlow's NCCL streams"),
    "nccl_fusion_threshold_mb": (int, _REQUIRED, "OneFlow's NCCL fusion buffer"),
    "nccl_fusion_all_reduce_use_buffer": (bool, _REQUIRED, "OneFlow's NCCL fusion buffer"),
    "nccl_fusion_all_reduce": (bool, _REQUIRED, "OneFlow's NCCL fusion"),
    "nccl_fusion_reduce_scatter": (bool, _REQUIRED, "OneFlow's NCCL fusion"),
    "nccl_fusion_all_gather": (bool, _REQUIRED, "OneFlow's NCCL fusion"),
    "nccl_fusion_reduce": (bool, _REQUIRED, "OneFlow's NCCL fusion"),
    "nccl_fusion_broadcast": (bool, _REQUIRED, "OneFlow's NCCL fusion"),
    "nccl_fusion_max_ops": (int, _REQUIRED, "OneFlow's NCCL fusion"),
    "nccl_enable_all_to_all": (bool, _REQUIRED, "OneFlow's NCCL all-to-all boxing"),
    "nccl_enable_mixed_fusion": (bool, _REQUIRED, "OneFlow's NCCL fusion"),
}

ENV_KNOBS = {
    "data_port": (int, _REQUIRED, "OneFlow's data transfer port (jax.distributed needs one port: ctrl_port)"),
    "grpc_use_no_signal": (bool, True, "OneFlow's gRPC signal handling (deprecated in OneFlow)"),
    "log_dir": (str, _REQUIRED, "OneFlow's glog files (jobflow logs through Python's logging)"),
    "logtostderr": (int, _REQUIRED, "OneFlow's glog output"),
    "logbuflevel": (int, _REQUIRED, "OneFlow's glog buffering"),
}


def recorded() -> dict[str, object]:
    """``{"config.use_rdma": True, "env.log_dir": "./log", ...}``: every knob set so far."""
    return dict(_recorded)


def record(key: str, value) -> None:
    """Stores ``value`` under ``key`` (``"config.<name>"``, ``"env.<name>"``, ...)."""
    _recorded[key] = value


def _a(kind: type) -> str:
    return f"an {kind.__name__}" if kind.__name__[0] in "aeiou" else f"a {kind.__name__}"


def check_value(where: str, value, kind: type):
    """``value`` if it is a ``kind`` (an int for int knobs, never a bool), else TypeError."""
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise TypeError(f"{where}(val) needs {_a(kind)}; got {value!r}")
    return value


def make_setter(prefix: str, name: str, spec: tuple) -> Callable[..., None]:
    """The setter ``name(val)`` of one knob: checks, records under ``prefix.name``, returns None."""
    kind, default, what = spec
    where = f"flow.{prefix}.{name}"

    def setter(val: Any = default) -> None:
        if val is _REQUIRED:
            raise TypeError(f"{where}(val) needs {_a(kind)} argument")
        record(f"{prefix}.{name}", check_value(where, val, kind))

    setter.__name__ = setter.__qualname__ = name
    setter.__annotations__ = {"val": kind, "return": None}
    setter.__doc__ = (
        f"OneFlow's ``{where}(val: {kind.__name__})``: accepted, no effect in jobflow "
        f"(it tuned {what}); the value is checked and recorded."
    )
    return setter


def enable_tensor_float_32_compute(val: bool = True) -> None:
    """Allows TF32 matmuls and convolutions on GPUs (OneFlow's default, True); False makes
    JAX compute float32 matmuls in full precision (``jax_default_matmul_precision``)."""
    check_value("flow.config.enable_tensor_float_32_compute", val, bool)
    record("config.enable_tensor_float_32_compute", val)
    jax.config.update("jax_default_matmul_precision", None if val else "highest")


def eager_execution_enabled() -> bool:
    """False: jobflow runs OneFlow's static-job (lazy) mode only."""
    return False


def enable_eager_execution(val: bool = True) -> None:
    """OneFlow's switch to its eager mode: False (lazy mode) is accepted; True raises."""
    check_value("flow.enable_eager_execution", val, bool)
    if val:
        raise NotImplementedError(
            "flow.enable_eager_execution(True): jobflow implements OneFlow's static-job API "
            "(@flow.global_function) only; the eager mode is not available"
        )


# The setters, one per knob (explicit names, so the public modules can re-export them).
machine_num = make_setter("config", "machine_num", CONFIG_KNOBS["machine_num"])
comm_net_worker_num = make_setter("config", "comm_net_worker_num", CONFIG_KNOBS["comm_net_worker_num"])
max_mdsave_worker_num = make_setter("config", "max_mdsave_worker_num", CONFIG_KNOBS["max_mdsave_worker_num"])
enable_numa_aware_cuda_malloc_host = make_setter(
    "config", "enable_numa_aware_cuda_malloc_host", CONFIG_KNOBS["enable_numa_aware_cuda_malloc_host"]
)
compute_thread_pool_size = make_setter(
    "config", "compute_thread_pool_size", CONFIG_KNOBS["compute_thread_pool_size"]
)
rdma_mem_block_mbyte = make_setter("config", "rdma_mem_block_mbyte", CONFIG_KNOBS["rdma_mem_block_mbyte"])
rdma_recv_msg_buf_mbyte = make_setter(
    "config", "rdma_recv_msg_buf_mbyte", CONFIG_KNOBS["rdma_recv_msg_buf_mbyte"]
)
reserved_host_mem_mbyte = make_setter(
    "config", "reserved_host_mem_mbyte", CONFIG_KNOBS["reserved_host_mem_mbyte"]
)
reserved_device_mem_mbyte = make_setter(
    "config", "reserved_device_mem_mbyte", CONFIG_KNOBS["reserved_device_mem_mbyte"]
)
use_rdma = make_setter("config", "use_rdma", CONFIG_KNOBS["use_rdma"])
thread_enable_local_message_queue = make_setter(
    "config", "thread_enable_local_message_queue", CONFIG_KNOBS["thread_enable_local_message_queue"]
)
enable_debug_mode = make_setter("config", "enable_debug_mode", CONFIG_KNOBS["enable_debug_mode"])
save_downloaded_file_to_local_fs = make_setter(
    "config", "save_downloaded_file_to_local_fs", CONFIG_KNOBS["save_downloaded_file_to_local_fs"]
)
persistence_buf_byte = make_setter("config", "persistence_buf_byte", CONFIG_KNOBS["persistence_buf_byte"])
enable_model_io_v2 = make_setter("config", "enable_model_io_v2", CONFIG_KNOBS["enable_model_io_v2"])
collect_act_event = make_setter("config", "collect_act_event", CONFIG_KNOBS["collect_act_event"])
enable_mem_chain_merge = make_setter(
    "config", "enable_mem_chain_merge", CONFIG_KNOBS["enable_mem_chain_merge"]
)
nccl_use_compute_stream = make_setter(
    "config", "nccl_use_compute_stream", CONFIG_KNOBS["nccl_use_compute_stream"]
)
disable_group_boxing_by_dst_parallel = make_setter(
    "config", "disable_group_boxing_by_dst_parallel", CONFIG_KNOBS["disable_group_boxing_by_dst_parallel"]
)
enable_fusion = make_setter(
    "config.collective_boxing", "enable_fusion", COLLECTIVE_BOXING_KNOBS["enable_fusion"]
)
num_callback_threads = make_setter(
    "config.collective_boxing", "num_callback_threads", COLLECTIVE_BOXING_KNOBS["num_callback_threads"]
)
nccl_num_streams = make_setter(
    "config.collective_boxing", "nccl_num_streams", COLLECTIVE_BOXING_KNOBS["nccl_num_streams"]
)
nccl_fusion_threshold_mb = make_setter(
    "config.collective_boxing",
    "nccl_fusion_threshold_mb",
    COLLECTIVE_BOXING_KNOBS["nccl_fusion_threshold_mb"],
)
nccl_fusion_all_reduce_use_buffer = make_setter(
    "config.collective_boxing",
    "nccl_fusion_all_reduce_use_buffer",
    COLLECTIVE_BOXING_KNOBS["nccl_fusion_all_reduce_use_buffer"],
)
nccl_fusion_all_reduce = make_setter(
    "config.collective_boxing", "nccl_fusion_all_reduce", COLLECTIVE_BOXING_KNOBS["nccl_fusion_all_reduce"]
)
nccl_fusion_reduce_scatter = make_setter(
    "config.collective_boxing",
    "nccl_fusion_reduce_scatter",
    COLLECTIVE_BOXING_KNOBS["nccl_fusion_reduce_scatter"],
)
nccl_fusion_all_gather = make_setter(
    "config.collective_boxing", "nccl_fusion_all_gather", COLLECTIVE_BOXING_KNOBS["nccl_fusion_all_gather"]
)
nccl_fusion_reduce = make_setter(
    "config.collective_boxing", "nccl_fusion_reduce", COLLECTIVE_BOXING_KNOBS["nccl_fusion_reduce"]
)
nccl_fusion_broadcast = make_setter(
    "config.collective_boxing", "nccl_fusion_broadcast", COLLECTIVE_BOXING_KNOBS["nccl_fusion_broadcast"]
)
nccl_fusion_max_ops = make_setter(
    "config.collective_boxing", "nccl_fusion_max_ops", COLLECTIVE_BOXING_KNOBS["nccl_fusion_max_ops"]
)
nccl_enable_all_to_all = make_setter(
    "config.collective_boxing", "nccl_enable_all_to_all", COLLECTIVE_BOXING_KNOBS["nccl_enable_all_to_all"]
)
nccl_enable_mixed_fusion = make_setter(
    "config.collective_boxing",
    "nccl_enable_mixed_fusion",
    COLLECTIVE_BOXING_KNOBS["nccl_enable_mixed_fusion"],
)
data_port = make_setter("env", "data_port", ENV_KNOBS["data_port"])
grpc_use_no_signal = make_setter("env", "grpc_use_no_signal", ENV_KNOBS["grpc_use_no_signal"])
log_dir = make_setter("env", "log_dir", ENV_KNOBS["log_dir"])
logtostderr = make_setter("env", "logtostderr", ENV_KNOBS["logtostderr"])
logbuflevel = make_setter("env", "logbuflevel", ENV_KNOBS["logbuflevel"])

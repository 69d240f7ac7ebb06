"""Devices and several processes (``flow.env``): ``flow.env.init(...)`` on jax.distributed."""

from jobflow._src.graph.env import ctrl_port as ctrl_port
from jobflow._src.graph.env import from_environment as from_environment
from jobflow._src.graph.env import get_rank as get_rank
from jobflow._src.graph.env import get_world_size as get_world_size
from jobflow._src.graph.env import init as init
from jobflow._src.graph.env import machine as machine
from jobflow._src.graph.runtime_knobs import data_port as data_port
from jobflow._src.graph.runtime_knobs import grpc_use_no_signal as grpc_use_no_signal
from jobflow._src.graph.runtime_knobs import log_dir as log_dir
from jobflow._src.graph.runtime_knobs import logbuflevel as logbuflevel
from jobflow._src.graph.runtime_knobs import logtostderr as logtostderr

__all__ = [
    "init",
    "get_rank",
    "get_world_size",
    "from_environment",
    "machine",
    "ctrl_port",
    "data_port",
    "grpc_use_no_signal",
    "log_dir",
    "logtostderr",
    "logbuflevel",
]

"""Devices and several processes (``flow.env``): ``flow.env.init(...)`` on jax.distributed."""

from jobflow._src.graph.env import from_environment as from_environment
from jobflow._src.graph.env import get_rank as get_rank
from jobflow._src.graph.env import get_world_size as get_world_size
from jobflow._src.graph.env import init as init

__all__ = [
    "init",
    "get_rank",
    "get_world_size",
    "from_environment",
]

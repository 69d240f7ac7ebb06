"""Process rank and count (OneFlow's ``flow.distributed``; also ``flow.env.get_rank``)."""

from jobflow._src.graph.env import get_rank as get_rank
from jobflow._src.graph.env import get_world_size as get_world_size

__all__ = ["get_rank", "get_world_size"]

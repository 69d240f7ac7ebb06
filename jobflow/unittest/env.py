"""``flow.unittest.env``: the test environment OneFlow's tests read (device and node counts)."""

from jobflow._src.cli.oneflow_unittest import device_num as device_num
from jobflow._src.cli.oneflow_unittest import eager_execution_enabled as eager_execution_enabled
from jobflow._src.cli.oneflow_unittest import has_node_list as has_node_list
from jobflow._src.cli.oneflow_unittest import has_world_size as has_world_size
from jobflow._src.cli.oneflow_unittest import node_list as node_list
from jobflow._src.cli.oneflow_unittest import node_size as node_size
from jobflow._src.cli.oneflow_unittest import typing_check_enabled as typing_check_enabled
from jobflow._src.cli.oneflow_unittest import world_size as world_size

__all__ = [
    "device_num",
    "eager_execution_enabled",
    "has_node_list",
    "has_world_size",
    "node_list",
    "node_size",
    "typing_check_enabled",
    "world_size",
]

"""Namespaces, placements and logical views (OneFlow's ``flow.scope``)."""

from jobflow._src.graph.distribute import consistent_strategy_enabled as consistent_view_enabled
from jobflow._src.graph.distribute import mirrored_strategy_enabled as mirrored_view_enabled
from jobflow._src.graph.scope import LogicalView as LogicalView
from jobflow._src.graph.scope import Placement as Placement
from jobflow._src.graph.scope import available_devices as available_devices
from jobflow._src.graph.scope import consistent_view as consistent_view
from jobflow._src.graph.scope import current_namespace as current_namespace
from jobflow._src.graph.scope import default_placement as default_placement
from jobflow._src.graph.scope import mirrored_view as mirrored_view
from jobflow._src.graph.scope import namespace as namespace
from jobflow._src.graph.scope import placement as placement

__all__ = [
    "namespace",
    "current_namespace",
    "placement",
    "Placement",
    "consistent_view",
    "mirrored_view",
    "consistent_view_enabled",
    "mirrored_view_enabled",
    "LogicalView",
    "default_placement",
    "available_devices",
]

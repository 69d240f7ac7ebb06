"""OneFlow's ``flow.system``: ``assign`` (see ``flow.assign``)."""

from jobflow._src.ops.state import system_assign as assign

__all__ = ["assign"]

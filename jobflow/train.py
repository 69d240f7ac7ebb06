"""``flow.train``: OneFlow v0.2's ``CheckPoint`` (``init`` / ``save`` / ``load``)."""

from jobflow._src.io.legacy_checkpoint import CheckPoint as CheckPoint

__all__ = ["CheckPoint"]

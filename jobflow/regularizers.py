"""Regularizers for ``get_variable(regularizer=...)`` (``flow.regularizers``)."""

from jobflow._src.graph.variables import Regularizer as Regularizer
from jobflow._src.graph.variables import l1 as l1
from jobflow._src.graph.variables import l1_l2 as l1_l2
from jobflow._src.graph.variables import l2 as l2

__all__ = ["Regularizer", "l1", "l2", "l1_l2"]

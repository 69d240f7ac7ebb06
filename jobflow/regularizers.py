"""Regularizers for ``get_variable(regularizer=...)`` (``flow.regularizers``)."""

from jobflow.variables import Regularizer as Regularizer
from jobflow.variables import l1 as l1
from jobflow.variables import l1_l2 as l1_l2
from jobflow.variables import l2 as l2

__all__ = ["Regularizer", "l1", "l2", "l1_l2"]

"""jobflow's typed errors. Each subclasses the builtin it replaces (``except ValueError``
keeps working); :class:`JobflowError` is the base of them all. :class:`LayoutWarning` (a
``UserWarning``) warns of a layout jobflow replaces: an uneven split, stored whole."""

from jobflow._src.core.errors import ArgumentError as ArgumentError
from jobflow._src.core.errors import CallbackError as CallbackError
from jobflow._src.core.errors import CheckpointError as CheckpointError
from jobflow._src.core.errors import DataError as DataError
from jobflow._src.core.errors import JobDefinitionError as JobDefinitionError
from jobflow._src.core.errors import JobflowError as JobflowError
from jobflow._src.core.errors import JobInputError as JobInputError
from jobflow._src.core.errors import LayoutWarning as LayoutWarning
from jobflow._src.core.errors import NonFiniteStepsError as NonFiniteStepsError

__all__ = [
    "JobflowError",
    "ArgumentError",
    "JobDefinitionError",
    "JobInputError",
    "CheckpointError",
    "NonFiniteStepsError",
    "CallbackError",
    "DataError",
    "LayoutWarning",
]

"""Checkpoints: save / get / load every store variable; OneFlow's legacy layout; CheckpointManager."""

from jobflow._src.io.checkpoint import FORMATS as FORMATS
from jobflow._src.io.checkpoint import CheckpointError as CheckpointError
from jobflow._src.io.checkpoint import CheckpointInfo as CheckpointInfo
from jobflow._src.io.checkpoint import CheckpointManager as CheckpointManager
from jobflow._src.io.checkpoint import LoadReport as LoadReport
from jobflow._src.io.checkpoint import RawVariable as RawVariable
from jobflow._src.io.checkpoint import VariableInfo as VariableInfo
from jobflow._src.io.checkpoint import describe as describe
from jobflow._src.io.checkpoint import get as get
from jobflow._src.io.checkpoint import load as load
from jobflow._src.io.checkpoint import save as save

__all__ = [
    "save",
    "get",
    "load",
    "describe",
    "CheckpointManager",
    "CheckpointError",
    "LoadReport",
    "CheckpointInfo",
    "VariableInfo",
    "RawVariable",
    "FORMATS",
]

"""Placeholders and return annotations of job functions (OneFlow's ``oneflow.typing``)."""

from jobflow._src.runtime.typing import Bundle as Bundle
from jobflow._src.runtime.typing import Callback as Callback
from jobflow._src.runtime.typing import Future as Future
from jobflow._src.runtime.typing import ListNumpy as ListNumpy
from jobflow._src.runtime.typing import Numpy as Numpy
from jobflow._src.runtime.typing import Placeholder as Placeholder

__all__ = [
    "Numpy",
    "ListNumpy",
    "Callback",
    "Bundle",
    "Future",
    "Placeholder",
]

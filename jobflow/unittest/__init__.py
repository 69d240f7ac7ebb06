"""``flow.unittest``: OneFlow's test helpers (``TestCase``, ``skip_unless_*``, ``env``)."""

from jobflow._src.cli.oneflow_unittest import TestCase as TestCase
from jobflow._src.cli.oneflow_unittest import num_nodes_required as num_nodes_required
from jobflow._src.cli.oneflow_unittest import register_test_cases as register_test_cases
from jobflow._src.cli.oneflow_unittest import skip_unless_1n1d as skip_unless_1n1d
from jobflow._src.cli.oneflow_unittest import skip_unless_1n2d as skip_unless_1n2d
from jobflow._src.cli.oneflow_unittest import skip_unless_1n4d as skip_unless_1n4d
from jobflow._src.cli.oneflow_unittest import skip_unless_2n1d as skip_unless_2n1d
from jobflow._src.cli.oneflow_unittest import skip_unless_2n2d as skip_unless_2n2d
from jobflow._src.cli.oneflow_unittest import skip_unless_2n4d as skip_unless_2n4d
from jobflow.unittest import env as env

__all__ = [
    "TestCase",
    "env",
    "num_nodes_required",
    "register_test_cases",
    "skip_unless_1n1d",
    "skip_unless_1n2d",
    "skip_unless_1n4d",
    "skip_unless_2n1d",
    "skip_unless_2n2d",
    "skip_unless_2n4d",
]

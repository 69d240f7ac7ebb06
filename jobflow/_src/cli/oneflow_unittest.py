"""``flow.unittest``: OneFlow's test helpers, so OneFlow's own job tests run on jobflow.

The names and environment variables are OneFlow v0.4's (``oneflow/python/framework/
unittest.py``): ``ONEFLOW_TEST_DEVICE_NUM`` (default 1), ``ONEFLOW_TEST_NODE_LIST``
(comma-separated hosts), ``ONEFLOW_TEST_WORLD_SIZE``, ``ONEFLOW_TEST_ENABLE_EAGER``,
``ONEFLOW_TEST_ENABLE_TYPING_CHECK``, ``ONEFLOW_TEST_LOG_DIR``. :class:`TestCase` starts
every test with a fresh default session. OneFlow's launching of worker processes for
multi-node tests is not reproduced: a multi-node test runs under ``jobflow launch``.
"""

from __future__ import annotations

import importlib.util
import os
import unittest
from collections.abc import Callable
from typing import Any

from jobflow._src.graph import runtime_knobs as _knobs
from jobflow._src.runtime import session as _session

__all__ = [
    "TestCase",
    "register_test_cases",
    "num_nodes_required",
    "skip_unless_1n1d",
    "skip_unless_1n2d",
    "skip_unless_1n4d",
    "skip_unless_2n1d",
    "skip_unless_2n2d",
    "skip_unless_2n4d",
    "eager_execution_enabled",
    "typing_check_enabled",
    "node_list",
    "has_node_list",
    "node_size",
    "has_world_size",
    "world_size",
    "device_num",
]


def eager_execution_enabled() -> bool:
    """``ONEFLOW_TEST_ENABLE_EAGER == "1"``: the tests ask for OneFlow's eager mode."""
    return os.getenv("ONEFLOW_TEST_ENABLE_EAGER") == "1"


def typing_check_enabled() -> bool:
    """``ONEFLOW_TEST_ENABLE_TYPING_CHECK == "1"``."""
    return os.getenv("ONEFLOW_TEST_ENABLE_TYPING_CHECK") == "1"


def node_list() -> list[str]:
    """The hosts of ``ONEFLOW_TEST_NODE_LIST`` (it must be set)."""
    nodes = os.getenv("ONEFLOW_TEST_NODE_LIST")
    if not nodes:
        raise RuntimeError("flow.unittest.env.node_list(): ONEFLOW_TEST_NODE_LIST is not set")
    return nodes.split(",")


def has_node_list() -> bool:
    """Whether ``ONEFLOW_TEST_NODE_LIST`` is set."""
    return bool(os.getenv("ONEFLOW_TEST_NODE_LIST"))


def node_size() -> int:
    """How many nodes the tests run on (the node list's length, else 1)."""
    return len(node_list()) if has_node_list() else 1


def has_world_size() -> bool:
    """Whether ``ONEFLOW_TEST_WORLD_SIZE`` is set (it must be a number)."""
    value = os.getenv("ONEFLOW_TEST_WORLD_SIZE")
    if value and not value.isdigit():
        raise ValueError(f"env var ONEFLOW_TEST_WORLD_SIZE must be a number; got {value!r}")
    return bool(value)


def world_size() -> int:
    """``ONEFLOW_TEST_WORLD_SIZE`` as an int."""
    return int(os.environ["ONEFLOW_TEST_WORLD_SIZE"])


def device_num() -> int:
    """Devices per node the tests use: ``ONEFLOW_TEST_DEVICE_NUM`` (default 1)."""
    value = os.getenv("ONEFLOW_TEST_DEVICE_NUM")
    return int(value) if value else 1


class TestCase(unittest.TestCase):
    """OneFlow's ``flow.unittest.TestCase``: each test starts with a fresh default session
    (and the log directory of ``ONEFLOW_TEST_LOG_DIR``, recorded only). Tests that ask
    for OneFlow's eager mode (``ONEFLOW_TEST_ENABLE_EAGER=1``) are skipped."""

    def setUp(self):
        log_dir = os.getenv("ONEFLOW_TEST_LOG_DIR")
        if log_dir:
            _knobs.log_dir(log_dir)
        if eager_execution_enabled():
            raise unittest.SkipTest("OneFlow's eager mode is not available in jobflow")
        _session.clear_default_session()


def _skip_unless(n: int, d: int) -> Callable:
    if node_size() == n and device_num() == d:
        return lambda func: func
    return unittest.skip(f"only runs when node_size is {n} and device_num is {d}")


def skip_unless_1n1d() -> Callable:
    """Runs the test only on 1 node with 1 device (``ONEFLOW_TEST_DEVICE_NUM``)."""
    return _skip_unless(1, 1)


def skip_unless_1n2d() -> Callable:
    """Runs the test only on 1 node with 2 devices."""
    return _skip_unless(1, 2)


def skip_unless_1n4d() -> Callable:
    """Runs the test only on 1 node with 4 devices."""
    return _skip_unless(1, 4)


def skip_unless_2n1d() -> Callable:
    """Runs the test only on 2 nodes with 1 device each."""
    return _skip_unless(2, 1)


def skip_unless_2n2d() -> Callable:
    """Runs the test only on 2 nodes with 2 devices each."""
    return _skip_unless(2, 2)


def skip_unless_2n4d() -> Callable:
    """Runs the test only on 2 nodes with 4 devices each."""
    return _skip_unless(2, 4)


def num_nodes_required(num_nodes: int) -> Callable[[Callable], Callable]:
    """Marks a test function with the node count it needs (for :func:`register_test_cases`)."""

    def decorator(f):
        f.__oneflow_test_case_num_nodes_required__ = num_nodes
        return f

    return decorator


class _ClearDefaultSession:
    def setUp(self):
        _session.clear_default_session()


def register_test_cases(
    scope: dict[str, Any],
    directory: str,
    filter_by_num_nodes: Callable[[int], bool],
    base_class: type = unittest.TestCase,
    test_case_mixin: type = _ClearDefaultSession,
) -> None:
    """Makes one ``TestCase`` class in ``scope`` per ``test*.py`` file of ``directory``,
    from its ``test*`` functions whose required node count passes ``filter_by_num_nodes``."""
    for f in sorted(os.listdir(directory)):
        path = os.path.join(directory, f)
        if not (os.path.isfile(path) and f.startswith("test") and f.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(f[:-3], path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        methods = {
            name: getattr(module, name)
            for name in dir(module)
            if name.startswith("test")
            and callable(getattr(module, name))
            and filter_by_num_nodes(
                getattr(getattr(module, name), "__oneflow_test_case_num_nodes_required__", 1)
            )
        }
        scope[f[:-3]] = type(f[:-3], (test_case_mixin, base_class), methods)

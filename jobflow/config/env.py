"""The process environment (``flow.env``): devices and multi-process start-up."""

from __future__ import annotations

__all__ = ["init"]


def init() -> None:
    """Starts the environment. A single process needs nothing; JAX starts lazily."""

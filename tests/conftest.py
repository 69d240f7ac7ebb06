"""Strict test settings: 8 fake CPU devices, rank promotion raises, warnings are errors
(pyproject), and every test starts with a fresh default session and seed 0."""

import os

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

import jobflow as flow  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_session():
    flow.clear_default_session()
    flow.config.seed(0)
    yield
    flow.clear_default_session()

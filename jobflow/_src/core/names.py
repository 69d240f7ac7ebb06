"""The store names of jobflow's own state (``System-*``), in one place.

Model variables are named by the user (``namespace-...-name``); optimizer slots are
``<var>-<slot>``; everything else jobflow keeps in the store is named here, with
OneFlow's names where OneFlow had the same state.
"""

from __future__ import annotations

__all__ = [
    "SYSTEM_PREFIX",
    "STEP_COUNTER_PREFIX",
    "step_counter",
    "rng",
    "skipped_steps",
    "consecutive_skipped_steps",
    "loss_scale",
    "optimizer_prefix",
    "data_position",
]

SYSTEM_PREFIX = "System-"
STEP_COUNTER_PREFIX = "System-Train-TrainStep-"  # + the job name


def step_counter(job_name: str) -> str:
    """A train job's step counter (OneFlow's name): int32, starts at 0."""
    return STEP_COUNTER_PREFIX + job_name


def rng(job_name: str) -> str:
    """A job's PRNG key data (uint32 (2,)), split once per call."""
    return f"System-RNG-{job_name}"


def skipped_steps(job_name: str) -> str:
    """How many steps of the job were skipped as non-finite (all of them)."""
    return f"System-Train-SkippedSteps-{job_name}"


def consecutive_skipped_steps(job_name: str) -> str:
    """How many steps in a row were skipped (reset by a finite step)."""
    return f"System-Train-ConsecutiveSkippedSteps-{job_name}"


def loss_scale(job_name: str, field: str) -> str:
    """A field of the dynamic loss-scale state (OneFlow's name)."""
    return f"System-Train-DynamicLossScale-{job_name}-{field}"


def optimizer_prefix(job_name: str, index: int) -> str:
    """Prefix of optimizer ``index``'s state leaves that belong to no variable (optax
    counts, a stateful schedule's state: ``<prefix>-lr-<field>``)."""
    return f"System-Optimizer-{job_name}-{index}"


def data_position(job_name: str) -> str:
    """The position of a job's in-job data pipeline (uint8 JSON, zero padded): the next
    batch and its sources' state, saved and loaded with the variables."""
    return f"System-Data-{job_name}"

"""XLA compiler options jobflow passes when it compiles a job's step (issue 15, measured in
docs/performance.md, "Convolution nets on the CPU").

**Convolutions on the CPU run on XLA's Eigen kernels, not YNNPACK.** jax 0.10's CPU
backend hands dots, convolutions and reductions to YNNPACK by default
(``xla_cpu_experimental_ynn_fusion_type`` = individual dots, individual convolutions,
reductions). Its convolutions often run on one thread, while XLA's Eigen convolutions
split each convolution over every core of the intra-op pool; the work per step is about
the same (LeNet: +8% CPU time), so on 2 cores LeNet's step takes 0.67x the wall time.
jobflow therefore compiles CPU programs with that list minus the convolutions (dots and
reductions stay on YNNPACK). The numbers change by float rounding only (another
summation order inside each convolution).

The option is left out when the user's ``XLA_FLAGS`` sets the flag (theirs wins), when
``ENABLED["eigen_cpu_conv"]`` is False, for programs on other platforms, and where the
installed jaxlib does not know the option (checked once by compiling a trivial program).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp

__all__ = ["ENABLED", "all_cpu", "compiler_options"]

ENABLED = {"eigen_cpu_conv": True}

_FLAG = "xla_cpu_experimental_ynn_fusion_type"
# jax 0.10's default list (dots, convolutions, reductions) without the convolutions
_CPU_OPTIONS: dict[str, str | bool] = {_FLAG: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


@functools.cache
def _supported(options: tuple) -> bool:
    """Whether this jaxlib compiles a CPU program with ``options``."""
    try:
        cpu = jax.devices("cpu")[0]
        arg = jax.ShapeDtypeStruct((2,), jnp.float32, sharding=jax.sharding.SingleDeviceSharding(cpu))
        jax.jit(lambda x: x + 1).lower(arg).compile(compiler_options=dict(options))
    except Exception:  # an unknown option or value: this jaxlib has no such switch
        return False
    return True


def all_cpu(devices) -> bool:
    """Whether a program runs on CPU devices only (and on some)."""
    return bool(devices) and all(d.platform == "cpu" for d in devices)


def compiler_options(devices) -> dict[str, str | bool]:
    """The ``compiler_options`` for a program running on ``devices`` (empty: XLA's defaults)."""
    if not ENABLED["eigen_cpu_conv"] or _FLAG in os.environ.get("XLA_FLAGS", ""):
        return {}
    if not all_cpu(devices):
        return {}
    return dict(_CPU_OPTIONS) if _supported(tuple(_CPU_OPTIONS.items())) else {}

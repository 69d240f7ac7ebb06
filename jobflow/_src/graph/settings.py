"""Session-wide settings (``flow.config``) and per-job settings (``flow.function_config``)."""

from __future__ import annotations

import numbers

import jax

__all__ = [
    "seed",
    "get_seed",
    "cpu_device_num",
    "gpu_device_num",
    "enable_legacy_model_io",
    "legacy_model_io_enabled",
]

_settings = {"seed": 0, "gpu_device_num": None, "cpu_device_num": None}


def seed(value: int) -> None:
    """Sets the session seed (default 0): variables are initialized from (seed, name)
    and each job's random stream starts from (seed, job name) unless its
    ``function_config.seed`` overrides it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"flow.config.seed(value) needs an int >= 0; got {value!r}")
    _settings["seed"] = int(value)


def get_seed() -> int:
    """The session seed set by :func:`seed` (0 by default)."""
    return int(_settings["seed"] or 0)


def cpu_device_num(n: int) -> None:
    """Runs jobs without a placement on ``n`` CPU devices per process (OneFlow's meaning).

    The default placement (``scope.default_placement``) becomes CPU devices ``0..n-1`` of
    every process when no accelerator is used (none present, or ``gpu_device_num(0)``):
    a consistent-view job then splits its batch over the ``n`` devices, a mirrored-view
    job takes ``n`` arrays per ``tp.ListNumpy`` argument. Before JAX starts (the first
    job or array), this also makes JAX expose ``n`` CPU devices; afterwards JAX must
    already have at least ``n`` (``XLA_FLAGS=--xla_force_host_platform_device_count``).

    Raises:
      ValueError: ``n`` is not an int >= 1, or JAX already started with fewer devices.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"flow.config.cpu_device_num(n) needs an int >= 1; got {n!r}")
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except RuntimeError:  # JAX has started: its CPU devices are fixed
        have = len(jax.devices("cpu"))
        if have < n:
            raise ValueError(
                f"flow.config.cpu_device_num({n}): JAX has already started with {have} CPU "
                f"device(s); call it before the first job runs or any JAX array is made (or "
                f"set XLA_FLAGS=--xla_force_host_platform_device_count={n})"
            ) from None
    _settings["cpu_device_num"] = int(n)


def gpu_device_num(n: int) -> None:
    """Runs jobs without a placement on the first ``n`` local GPUs of every process (0:
    on the CPU, ``cpu_device_num`` devices). Without a call, every local GPU is used."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"flow.config.gpu_device_num(n) needs an int >= 0; got {n!r}")
    _settings["gpu_device_num"] = int(n)


def enable_legacy_model_io(enabled: bool = True) -> None:
    """Accepted for OneFlow compatibility (jobflow has one checkpoint API); recorded for
    :func:`legacy_model_io_enabled`."""
    _settings["legacy_model_io"] = bool(enabled)


def legacy_model_io_enabled() -> bool:
    """What :func:`enable_legacy_model_io` set last (False by default, as in OneFlow)."""
    return bool(_settings.get("legacy_model_io", False))

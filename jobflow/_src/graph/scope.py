"""Name scopes, placements and logical views (``flow.scope``).

* :func:`namespace` prefixes variable names: ``with flow.scope.namespace("a"):``
  ``get_variable("w")`` creates ``a-w``.
* :func:`placement` names the devices a job runs on, as OneFlow writes them:
  ``placement("cpu", "0:0")``, ``placement("gpu", "0:0-3")``,
  ``placement("gpu", ["0:0-3", "1:0-3"])`` (machine index = JAX process index).
* :func:`consistent_view` / :func:`mirrored_view` choose how inputs map to devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import re
import threading
from collections.abc import Iterator, Sequence

import jax
import numpy as np

from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import ArgumentError

__all__ = [
    "namespace",
    "current_namespace",
    "placement",
    "Placement",
    "consistent_view",
    "mirrored_view",
    "LogicalView",
    "default_placement",
    "available_devices",
    "fresh_stacks",
    "mesh_for",
    "current_view",
    "DATA_AXIS",
    "MODEL_AXIS",
]

_local = threading.local()


_STACKS = ("ns", "placement", "view")  # this thread's open namespaces, placements, views


def _stack(name):
    if not hasattr(_local, name):
        setattr(_local, name, [])
    return getattr(_local, name)


@contextlib.contextmanager
def fresh_stacks():
    """Runs the block with empty namespace, placement and view stacks on this thread, and
    restores the caller's stacks afterwards (a job body is traced the same way whatever
    scopes the code that calls the job has open)."""
    saved = {k: _stack(k) for k in _STACKS}
    for k in _STACKS:
        setattr(_local, k, [])
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(_local, k, v)


# ----------------------------------------------------------------------------- namespace


@contextlib.contextmanager
def namespace(name: str) -> Iterator[None]:
    """Prefixes the names of variables created inside with ``name-``.

    Namespaces nest: ``namespace("a")`` inside ``namespace("b")`` gives ``b-a-<var>``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"namespace(name) needs a non-empty string; got {name!r}")
    stack = _stack("ns")
    stack.append(name)
    try:
        yield
    finally:
        stack.pop()


def current_namespace() -> str:
    """The current namespace prefix joined with ``-`` ('' outside any namespace)."""
    return "-".join(_stack("ns"))


# ----------------------------------------------------------------------------- placement

_TAGS = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "tpu": "tpu"}
_IDS_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def _platform_devices(platform: str) -> list:
    from jobflow._src.graph import env as _env

    _env.ensure_initialized()  # several processes join before JAX's devices are first listed
    try:
        return list(jax.devices(platform))
    except RuntimeError:
        return []


def available_devices() -> str:
    """A one-line description of the devices JAX can see, e.g. ``cpu 0:0-7``."""
    parts = []
    for tag in ("cpu", "gpu", "tpu"):
        devs = _platform_devices(tag)
        by_proc: dict[int, int] = {}
        for d in devs:
            by_proc[d.process_index] = by_proc.get(d.process_index, 0) + 1
        for proc, n in sorted(by_proc.items()):
            parts.append(f"{tag} {proc}:0-{n - 1}" if n > 1 else f"{tag} {proc}:0")
    return ", ".join(parts) or "none"


@dataclasses.dataclass(frozen=True)
class Placement:
    """A set of devices: ``device_tag`` ("cpu"/"gpu") and machine:device ranges.

    Use it as ``function_config.default_placement_scope(placement)`` or as a context
    manager in a job body. A job runs one program over the union of the devices of all
    the placements it names; a placement naming part of them is a layout hint
    (``docs/placement.md``, "Several placements in one job").
    """

    device_tag: str
    machine_device_ids: tuple
    hierarchy: tuple | None = None

    def devices(self) -> list:
        """The JAX devices this placement names, in mesh order.

        Raises:
          ValueError: if a named device does not exist (the message lists those that do).
        """
        platform = _TAGS[self.device_tag]
        devs = _platform_devices(platform)
        by_proc: dict[int, list] = {}
        for d in devs:
            by_proc.setdefault(d.process_index, []).append(d)
        out = []
        for machine, lo, hi in self.machine_device_ids:
            local = sorted(by_proc.get(machine, []), key=lambda d: d.id)
            if hi >= len(local):
                raise ValueError(
                    f"placement({self.device_tag!r}, {self._ids_text()}) names device "
                    f"{machine}:{hi}, which does not exist; available devices: "
                    f"{available_devices()}"
                )
            out.extend(local[lo : hi + 1])
        if len(set(out)) != len(out):
            raise ValueError(f"placement {self._ids_text()} names a device twice")
        if self.hierarchy is not None and int(np.prod(self.hierarchy)) != len(out):
            raise ValueError(
                f"placement({self.device_tag!r}, {self._ids_text()}, hierarchy={self.hierarchy!r}) "
                f"names {len(out)} devices, but the hierarchy has {int(np.prod(self.hierarchy))}; "
                f"the product of the hierarchy must equal the device count"
            )
        return out

    def mesh(self) -> jax.sharding.Mesh:
        """The job mesh of this placement: :func:`mesh_for` its devices and hierarchy."""
        return mesh_for(self.devices(), self.hierarchy)

    def _ids_text(self) -> str:
        return repr([f"{m}:{lo}" if lo == hi else f"{m}:{lo}-{hi}" for m, lo, hi in self.machine_device_ids])

    def __enter__(self):
        _stack("placement").append(self)
        ctx = _trace.current()
        if ctx is not None:
            ctx.placements.append(self)
        return self

    def __exit__(self, *exc):
        _stack("placement").pop()
        return False


def _check_hierarchy(hierarchy) -> tuple | None:
    if hierarchy is None:
        return None
    ok = isinstance(hierarchy, (list, tuple)) and 1 <= len(hierarchy) <= 2
    ok = ok and all(
        not isinstance(h, bool) and isinstance(h, numbers.Integral) and int(h) >= 1 for h in hierarchy
    )
    if not ok:
        raise ArgumentError(
            f"placement hierarchy must be None or a list of one or two ints >= 1 "
            f"((data, model) for a 2-D mesh); got hierarchy={hierarchy!r}"
        )
    return tuple(int(h) for h in hierarchy)


def placement(
    device_tag: str, machine_device_ids: str | Sequence[str] = "0:0", hierarchy: Sequence[int] | None = None
) -> Placement:
    """Names devices as OneFlow does.

    Args:
      device_tag: ``"cpu"`` or ``"gpu"`` (``"cuda"`` and ``"tpu"`` are accepted too).
      machine_device_ids: ``"M:D"``, ``"M:D1-D2"`` or a list of them; ``M`` is the
        process (machine) index, ``D`` the device index within that process.
      hierarchy: None (a one-axis mesh ``"data"``), ``(n,)`` (the same), or ``(d, m)``:
        a 2-D mesh with axes ``("data", "model")`` of ``d`` rows and ``m`` columns over
        the devices in order (device ``i`` at row ``i // m``, column ``i % m``); ``d * m``
        must equal the device count. The batch splits over ``"data"``, split variables
        over ``"model"`` (``docs/placement.md``).
    """
    if not isinstance(device_tag, str) or device_tag.lower() not in _TAGS:
        raise ValueError(f"placement device_tag must be one of {sorted(_TAGS)}; got {device_tag!r}")
    ids = [machine_device_ids] if isinstance(machine_device_ids, str) else machine_device_ids
    if not isinstance(ids, (list, tuple)) or not ids:
        raise ValueError(
            f"placement machine_device_ids must be a string like '0:0-3' or a list of them; "
            f"got {machine_device_ids!r}"
        )
    parsed = []
    for item in ids:
        m = _IDS_RE.match(item) if isinstance(item, str) else None
        if m is None:
            raise ValueError(f"placement machine_device_ids entries look like '0:0' or '0:0-3'; got {item!r}")
        machine, lo = int(m.group(1)), int(m.group(2))
        hi = int(m.group(3)) if m.group(3) is not None else lo
        if hi < lo:
            raise ValueError(f"placement range {item!r} is empty (end before start)")
        parsed.append((machine, lo, hi))
    return Placement(_TAGS[device_tag.lower()], tuple(parsed), _check_hierarchy(hierarchy))


def default_placement() -> Placement:
    """OneFlow's default: every local accelerator (at most ``flow.config.gpu_device_num``)
    of every process, else CPU devices ``0..n-1`` of every process with
    ``n = flow.config.cpu_device_num`` (default 1: ``cpu 0:0`` in one process)."""
    from jobflow._src.graph import settings as _config

    limit = _config._settings["gpu_device_num"]
    for tag in ("gpu", "tpu"):
        devs = [d for d in _platform_devices(tag) if d.process_index == jax.process_index()]
        if devs and limit != 0:
            n = len(devs) if limit is None else min(limit, len(devs))
            return placement(tag, [f"{p}:0-{n - 1}" for p in range(jax.process_count())])
    n = _config._settings["cpu_device_num"] or 1
    devices = "0" if n == 1 else f"0-{n - 1}"
    return placement("cpu", [f"{p}:{devices}" for p in range(jax.process_count())])


def current_view() -> LogicalView | None:
    """The innermost view entered on this thread (``with flow.scope.mirrored_view():``)."""
    stack = _stack("view")
    return stack[-1] if stack else None


def current_placement() -> Placement | None:
    stack = _stack("placement")
    return stack[-1] if stack else None


DATA_AXIS = "data"
MODEL_AXIS = "model"


def mesh_for(devices, hierarchy: tuple | None = None) -> jax.sharding.Mesh:
    """The mesh of a job on ``devices``: one axis ``"data"``, or with a 2-D ``hierarchy``
    ``(d, m)`` the axes ``("data", "model")`` with the devices in row-major order."""
    if hierarchy is None or len(hierarchy) == 1:
        return jax.sharding.Mesh(np.asarray(devices, dtype=object), (DATA_AXIS,))
    grid = np.asarray(devices, dtype=object).reshape(tuple(hierarchy))
    return jax.sharding.Mesh(grid, (DATA_AXIS, MODEL_AXIS))


# ---------------------------------------------------------------------------- logical view


@dataclasses.dataclass(frozen=True)
class LogicalView:
    """How a job's inputs map onto its devices: ``consistent`` or ``mirrored``.

    A job runs in one view, chosen with ``cfg.default_logical_view(view)``. Entering a
    view in a job body is allowed when it is the job's view, and an error otherwise.
    """

    kind: str

    def __enter__(self):
        ctx = _trace.current()
        if ctx is not None:
            job_view = ctx.config.settings["default_logical_view"]
            if job_view.kind != self.kind:
                raise ValueError(
                    f"job {ctx.job_name!r} runs in the {job_view.kind} view and cannot enter "
                    f"flow.scope.{self.kind}_view() in its body; a job has one view, chosen with "
                    f"cfg.default_logical_view(flow.scope.{self.kind}_view())"
                )
        _stack("view").append(self)
        return self

    def __exit__(self, *exc):
        _stack("view").pop()
        return False


def consistent_view() -> LogicalView:
    """One global array per input, split along its batch axis across the devices."""
    return LogicalView("consistent")


def mirrored_view() -> LogicalView:
    """One array per device per input (``tp.ListNumpy.Placeholder``): the body runs once
    per device on that device's arrays; gradients are averaged across devices."""
    return LogicalView("mirrored")

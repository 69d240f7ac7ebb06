"""The process environment (``flow.env``): one process, or several on ``jax.distributed``.

    flow.env.init()           # reads the environment (below); a single process needs nothing
    flow.env.init(coordinator_address="10.0.0.1:8476", num_processes=2, process_id=0)

With several processes every process runs the same script; together they form one JAX
runtime whose devices are all processes' devices (process ``p`` is OneFlow's machine
``p`` in ``placement("gpu", ["0:0-3", "1:0-3"])``). XLA's collectives carry the
traffic: NCCL on GPUs, gloo over TCP on CPUs.

Arguments that are not given are read from the environment, in this order:

* ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` (``jobflow launch``
  sets these);
* ``MASTER_ADDR`` + ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK`` (``torchrun``,
  ``python -m oneflow.distributed.launch``).

A job calls :func:`ensure_initialized` before it first touches devices, so a script started
by a launcher works without calling ``init()`` itself, as long as it has not used JAX
devices before its first job call.

OneFlow's own multi-node set-up maps onto the same thing::

    flow.env.machine([{"addr": "10.0.0.1"}, {"addr": "10.0.0.2"}])
    flow.env.ctrl_port(9988)

runs every listed machine's script as one process of ``jax.distributed``: the first
machine's ``addr:ctrl_port`` is the coordinator, the machine count is the number of
processes, and this process's index is ``JAX_PROCESS_ID`` or ``RANK`` when set, else the
position of the machine whose address is this host's name or one of its addresses. The
first job call (or ``flow.env.init()``) starts it. ``flow.env.data_port`` is accepted and
recorded only (jax.distributed needs one port). ``ctrl_port_agent`` / ``data_port_agent``
entries are ignored.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax

__all__ = [
    "init",
    "ensure_initialized",
    "get_rank",
    "get_world_size",
    "from_environment",
    "machine",
    "ctrl_port",
]

_ADDRESS_RE = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:(\d+)$")


class _Request(NamedTuple):
    """Multi-process settings: all None means a single process."""

    coordinator_address: str | None
    num_processes: int | None
    process_id: int | None
    source: str  # where the values came from, for error messages


def _env_int(name: str, environ) -> int | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer; got {raw!r}") from None


def from_environment(environ: Mapping[str, str] | None = None) -> _Request:
    """The multi-process settings the environment asks for (all None if it asks for none)."""
    environ = os.environ if environ is None else environ
    if environ.get("JAX_NUM_PROCESSES") or environ.get("JAX_PROCESS_ID"):
        return _Request(
            environ.get("JAX_COORDINATOR_ADDRESS") or None,
            _env_int("JAX_NUM_PROCESSES", environ),
            _env_int("JAX_PROCESS_ID", environ),
            "JAX_* environment variables",
        )
    if environ.get("WORLD_SIZE"):
        addr, port = environ.get("MASTER_ADDR"), environ.get("MASTER_PORT")
        return _Request(
            f"{addr}:{port}" if addr and port else None,
            _env_int("WORLD_SIZE", environ),
            _env_int("RANK", environ),
            "MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK",
        )
    return _Request(None, None, None, "the environment")


_machines: dict = {"addrs": [], "ctrl_port": None}


def machine(*val) -> None:
    """OneFlow's ``flow.env.machine(...)``: the machines that run this script together.

    Takes address strings or ``{"addr": ...}`` dicts, as several arguments or one list;
    addresses must be distinct. See the module docstring for how they map onto
    ``jax.distributed``.
    """
    if len(val) == 1 and isinstance(val[0], (list, tuple)):
        val = tuple(val[0])
    addrs = []
    for m in val:
        addr = m.get("addr") if isinstance(m, dict) else m
        if not isinstance(addr, str) or not addr:
            raise TypeError(f"flow.env.machine: each machine is an address or {{'addr': address}}; got {m!r}")
        if addr in addrs:
            raise ValueError(f"flow.env.machine: the address {addr!r} is listed twice")
        addrs.append(addr)
    _machines["addrs"] = addrs


def ctrl_port(val: int) -> None:
    """OneFlow's control port: the coordinator's port of ``jax.distributed`` on the first
    machine of :func:`machine`."""
    if isinstance(val, bool) or not isinstance(val, int) or not 0 < val < 65536:
        raise TypeError(f"flow.env.ctrl_port(val) needs an int port in (0, 65536); got {val!r}")
    _machines["ctrl_port"] = val


def _local_addresses() -> set:
    """This host's names and addresses."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


def _machine_id(addrs: list, environ) -> int | None:
    """This process's machine index: ``JAX_PROCESS_ID`` / ``RANK``, else the address match."""
    for name in ("JAX_PROCESS_ID", "RANK"):
        if environ.get(name):
            return _env_int(name, environ)
    local = _local_addresses()
    found = [i for i, a in enumerate(addrs) if a in local]
    return found[0] if len(found) == 1 else None


def from_machines(environ=None) -> _Request:
    """The settings ``flow.env.machine`` + ``flow.env.ctrl_port`` ask for (all None if unset)."""
    environ = os.environ if environ is None else environ
    addrs, port = _machines["addrs"], _machines["ctrl_port"]
    if len(addrs) < 2:
        return _Request(None, None, None, "flow.env.machine")
    if port is None:
        raise ValueError(f"flow.env.machine lists {len(addrs)} machines; set flow.env.ctrl_port(port) too")
    pid = _machine_id(addrs, environ)
    if pid is None:
        raise ValueError(
            f"flow.env.machine: cannot tell which of {addrs} this host is; set JAX_PROCESS_ID "
            f"(or RANK) to this machine's index"
        )
    return _Request(f"{addrs[0]}:{port}", len(addrs), pid, "flow.env.machine and flow.env.ctrl_port")


def _configured(environ=None) -> _Request:
    """The environment's multi-process settings, else those of ``flow.env.machine``."""
    env = from_environment(environ)
    return env if env.num_processes is not None else from_machines(environ)


def _resolve(coordinator_address, num_processes, process_id, environ=None) -> _Request:
    """Arguments completed from the environment, checked; all None means one process."""
    args = (coordinator_address, num_processes, process_id)
    env = _configured(environ)
    addr, n, pid = (
        a if a is not None else e
        for a, e in zip(args, (env.coordinator_address, env.num_processes, env.process_id))
    )
    source = "flow.env.init arguments" if None not in args else f"flow.env.init arguments and {env.source}"
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"flow.env.init num_processes must be an int >= 1; got {n!r} (from {source})")
    if (n is None or n == 1) and pid in (None, 0):
        return _Request(None, None, None, source)  # a single process
    if n is None:
        raise ValueError(f"flow.env.init got process_id={pid!r} but no num_processes (from {source})")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < n:
        raise ValueError(
            f"flow.env.init process_id must be an int in [0, {n}) for num_processes={n}; got {pid!r} "
            f"(from {source})"
        )
    port = _ADDRESS_RE.match(addr) if isinstance(addr, str) else None
    if port is None or not 0 < int(port[1]) < 65536:
        raise ValueError(
            f"flow.env.init coordinator_address must be 'host:port' (process 0's address and a free "
            f"port) for {n} processes; got {addr!r} (from {source})"
        )
    return _Request(str(addr), n, pid, source)


def init(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Sequence[int] | None = None,
    initialization_timeout: int = 300,
) -> None:
    """Starts the environment: one process, or ``num_processes`` on ``jax.distributed``.

    Args:
      coordinator_address: ``"host:port"`` of process 0, where it starts the coordinator.
      num_processes: how many processes take part (1: a single process, nothing to start).
      process_id: this process's index in ``[0, num_processes)``; OneFlow's machine id.
      local_device_ids: the local accelerators this process uses (default: all).
      initialization_timeout: seconds to wait for every process to connect.

    Must run before anything uses JAX devices. Calling it again with the same settings
    does nothing; with different ones it raises.

    Raises:
      ValueError: settings that are missing or out of range (naming where they came from).
      RuntimeError: JAX devices were already in use, or init ran before with other settings.
    """
    req = _resolve(coordinator_address, num_processes, process_id)
    if jax.distributed.is_initialized():
        want = (req.num_processes or 1, req.process_id or 0)
        have = (jax.process_count(), jax.process_index())
        if want != have:
            raise RuntimeError(
                f"flow.env.init: this process already runs as process {have[1]} of {have[0]}; "
                f"asked for process {want[1]} of {want[0]}"
            )
        return
    if req.num_processes is None:
        return
    try:
        jax.distributed.initialize(
            req.coordinator_address,
            req.num_processes,
            req.process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=initialization_timeout,
            cluster_detection_method="deactivate",
        )
    except RuntimeError as e:
        if "must be called before" in str(e):
            raise RuntimeError(
                f"flow.env.init({req.num_processes} processes) must run before anything uses JAX "
                f"devices (jax.devices(), a job call, jax.numpy on arrays); call it at the top of the "
                f"script. ({e})"
            ) from None
        raise


_ensured = False


def ensure_initialized() -> None:
    """Runs :func:`init` from the environment once, if it asks for several processes.

    Jobs call this before they first choose devices, so a script started by
    ``jobflow launch`` needs no explicit ``flow.env.init()``.
    """
    global _ensured
    if _ensured:
        return
    if not jax.distributed.is_initialized() and _configured().num_processes not in (None, 1):
        init()
    _ensured = True


def get_rank() -> int:
    """This process's index (OneFlow's ``flow.env.get_rank()``; ``jax.process_index()``)."""
    ensure_initialized()
    return jax.process_index()


def get_world_size() -> int:
    """How many processes take part (``jax.process_count()``)."""
    ensure_initialized()
    return jax.process_count()

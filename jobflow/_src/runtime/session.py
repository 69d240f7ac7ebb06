"""The default session: the variable store and the registered jobs.

Every variable (model weights, optimizer slots, step counters, RNG keys) is a named
array in the session's store. Jobs read from and write to the store; jobs that use the
same name share the array. ``flow.clear_default_session()`` drops all of it.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jobflow._src.graph.variables import VariableSpec
from jobflow._src.ops import summary as _summary
from jobflow._src.runtime import dispatch as _dispatch
from jobflow._src.runtime import sharding as _sharding

__all__ = [
    "Session",
    "default_session",
    "clear_default_session",
    "sync_default_session",
    "get_all_variables",
    "load_variables",
    "Blob",
    "StoreAccess",
]

_ids = itertools.count()


class Blob(np.ndarray):
    """A numpy array that also has OneFlow's ``.numpy()``."""

    def numpy(self) -> np.ndarray:
        return self.view(np.ndarray)


def _as_host(value) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value)


class Session:
    """Holds the variable store and the jobs defined since the last clear."""

    def __init__(self):
        self.id = next(_ids)
        self.specs: dict[str, VariableSpec] = {}
        self.store: _dispatch.Store = _dispatch.Store()  # counts its writes for the jobs' state caches
        self.jobs: dict[str, Any] = {}
        self._executor = None
        self._lock = threading.Lock()

    # -- async results ----------------------------------------------------------------
    @property
    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """One worker thread that runs result callbacks in call order."""
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="jobflow-callbacks"
                )
            return self._executor

    def sync(self) -> None:
        """Waits for every queued callback and every pending computation."""
        if self._executor is not None:
            self._executor.submit(lambda: None).result()
        jax.block_until_ready(list(self.store.values()))

    def close(self) -> None:
        """Finishes queued callbacks and lets the jobs drop what they hold of this session."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for job in list(self.jobs.values()):
            job._release(self.id)

    # -- variables --------------------------------------------------------------------
    def check_specs(self, specs) -> list[VariableSpec]:
        """Returns the specs not yet in the store; raises on any conflict (changes nothing)."""
        new = []
        for spec in specs:
            old = self.specs.get(spec.name)
            if old is None:
                new.append(spec)
            elif old.conflicts_with(spec):
                raise ValueError(
                    f"variable {spec.name!r} is already defined with {old.describe()}; "
                    f"now requested with {spec.describe()}"
                )
        return new

    def add(self, specs, seed: int, sharding_for) -> None:
        """Initializes and stores new variables (host numpy -> device).

        ``sharding_for(spec)`` gives the sharding each new array is placed with.
        """
        new = self.check_specs(specs)
        values = {s.name: np.asarray(s.init(seed), dtype=s.dtype) for s in new}
        for s in new:
            if values[s.name].shape != s.shape:
                raise ValueError(
                    f"the initializer of {s.name!r} returned shape {values[s.name].shape}; expected {s.shape}"
                )
        for s in new:
            self.store[s.name] = jax.device_put(values[s.name], sharding_for(s))
            self.specs[s.name] = s

    def initialize_jobs(self) -> None:
        """Discovers every registered job (as OneFlow initializes its session)."""
        for job in list(self.jobs.values()):
            job._ensure_discovered()

    def get_all(self) -> dict[str, Blob]:
        self.initialize_jobs()
        return {name: _sharding.to_numpy(arr).view(Blob) for name, arr in self.store.items()}

    def check_values(
        self, values: Mapping[str, Any], ignore_mismatch: bool = True
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        """Checks ``{name: array}`` against the variables; changes nothing.

        Returns ``(host arrays to load, problems)``: unknown names (unless
        ``ignore_mismatch``), unreadable values and shape or dtype mismatches.
        """
        if not isinstance(values, Mapping):
            raise TypeError(
                f"load_variables(value_dict) needs a dict name -> array; got {type(values).__name__}"
            )
        self.initialize_jobs()
        unknown = sorted(n for n in values if n not in self.specs)
        problems = []
        if unknown and not ignore_mismatch:
            problems.append(f"unknown variables (ignore_mismatch=False): {', '.join(unknown)}")
        host = {}
        for name, value in values.items():
            if name not in self.specs:
                continue
            spec = self.specs[name]
            try:
                arr = _as_host(value)
            except Exception as e:
                problems.append(f"{name}: cannot read value ({e})")
                continue
            if arr.shape != spec.shape or arr.dtype != spec.dtype:
                problems.append(
                    f"{name}: expected shape {spec.shape} dtype {spec.dtype.name}, got shape "
                    f"{arr.shape} dtype {arr.dtype.name}"
                )
                continue
            host[name] = arr
        return host, problems

    def assign(self, host: Mapping[str, np.ndarray]) -> None:
        """Puts checked host arrays (from :meth:`check_values`) into the store."""
        for name, arr in host.items():
            old = self.store[name]
            self.store[name] = jax.device_put(arr, old.sharding)

    def load(self, values: Mapping[str, Any], ignore_mismatch: bool = True) -> None:
        host, problems = self.check_values(values, ignore_mismatch)
        if problems:
            raise ValueError("load_variables loaded nothing:\n  " + "\n  ".join(problems))
        self.assign(host)


_default: Session | None = None
_default_lock = threading.Lock()


class StoreAccess:
    """Reads and writes named arrays of one session's store: the handle the runtime gives
    the optimizer layer (``build_plans(state_access=...)``) so that a schedule stepped from
    the host (``ReduceLROnPlateau.step``) changes its stored state without importing the
    runtime. Holds the session weakly; ``live()`` is False once it is not the default."""

    def __init__(self, session: Session):
        self._session = weakref.ref(session)

    def live(self) -> bool:
        sess = self._session()
        return sess is not None and sess is _default

    def read(self, name: str) -> jax.Array:
        return self._session().store[name]

    def write(self, name: str, value) -> None:
        store = self._session().store
        old = store[name]
        store[name] = jax.device_put(jax.numpy.asarray(value, old.dtype), old.sharding)


def default_session() -> Session:
    global _default
    current = _default  # read without the lock: every job call asks
    if current is not None:
        return current
    with _default_lock:
        if _default is None:
            _default = Session()
        return _default


def clear_default_session() -> None:
    """Drops every job and variable; the next job call starts from scratch."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()


def sync_default_session() -> None:
    """Waits until every queued job call and result callback has finished, and writes
    pending summaries (``flow.summary``) to disk."""
    default_session().sync()
    _summary.flush_all()


def get_all_variables() -> dict[str, Blob]:
    """``{name: array}`` for every variable, optimizer slot and system counter.

    Registered jobs that have not run yet are traced first so that their variables
    exist (OneFlow initializes its session the same way).
    """
    return default_session().get_all()


def load_variables(value_dict: Mapping[str, Any], ignore_mismatch: bool = True) -> None:
    """Sets variables from ``{name: array}`` (numpy arrays or objects with ``.numpy()``).

    Every value must match its variable's shape and dtype exactly. Names that match no
    variable are ignored if ``ignore_mismatch`` (OneFlow's default), else reported. On
    any problem nothing is loaded and the error lists every problem.
    """
    default_session().load(value_dict, ignore_mismatch)

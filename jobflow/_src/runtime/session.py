"""The default session: the variable store and the registered jobs.

Every variable (model weights, optimizer slots, step counters, RNG keys) is a named
array in the session's store. Jobs read from and write to the store; jobs that use the
same name share the array. ``flow.clear_default_session()`` drops all of it.

Threads. The store's read-modify-write is serialized by one re-entrant lock
(``Store.lock``): a job call holds it while it gathers the state, dispatches the
compiled step (asynchronous: the device work runs after the lock is released) and
stores the new state; reads of the whole store (``get_all_variables``, a checkpoint),
writes (``load_variables``, a checkpoint load) and the creation of a job's state hold it
too. Calls from several threads therefore run in some serial order, each on the state
the previous one left.

Result callbacks (``tp.Callback``, ``Future.async_get``) run in call order on one
worker thread. An exception a callback raises is kept and re-raised as a
``CallbackError`` (chained to it) at the next job call or ``sync_default_session()``;
``clear_default_session()`` re-raises what is left after clearing, and at interpreter
exit what was never re-raised is printed to stderr. Inside a callback,
``sync_default_session()`` and ``checkpoint.save()`` wait for the device work only (the
callbacks queued after the running one cannot run before it returns).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import sys
import threading
import traceback
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jobflow._src.core.blob import Blob as Blob
from jobflow._src.core.errors import CallbackError
from jobflow._src.graph.variables import VariableSpec
from jobflow._src.ops import summary as _summary
from jobflow._src.runtime import data_feed as _data_feed
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
_callback_thread = threading.local()  # ``active`` is True while a result callback runs


def in_callback() -> bool:
    """True on the worker thread while it runs a result callback."""
    return getattr(_callback_thread, "active", False)


def _as_host(value) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value)


class Session:
    """Holds the variable store and the jobs defined since the last clear."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.specs: dict[str, VariableSpec] = {}
        self.store: _dispatch.Store = _dispatch.Store()  # counts its writes for the jobs' state caches
        self.jobs: dict[str, Any] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # the executor and the callback errors
        self.callback_errors: list[BaseException] = []  # raised by callbacks, not yet re-raised
        self.data: dict[str, Any] = {}  # System-Data-<job> -> the job's flow.data pipeline
        self.layout_warnings: set[tuple[str, str]] = set()  # (job, variable): uneven splits warned of

    @property
    def lock(self) -> threading.RLock:
        """The store's lock: held by every read-modify-write of the store (module docstring)."""
        return self.store.lock

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

    def submit_callback(self, fn) -> None:
        """Queues ``fn()`` on the worker thread; an exception it raises is kept for
        :meth:`raise_callback_errors`."""
        self.executor.submit(self._run_callback, fn)

    def _run_callback(self, fn) -> None:
        _callback_thread.active = True
        try:
            fn()
        except BaseException as e:  # kept, re-raised in the caller's thread
            with self._lock:
                self.callback_errors.append(e)
        finally:
            _callback_thread.active = False

    def raise_callback_errors(self) -> None:
        """Raises a ``CallbackError`` chained to the first exception a callback raised
        since the last call (all of them in ``errors``), and forgets them."""
        if not self.callback_errors:  # the common case, read without the lock
            return
        with self._lock:
            errors, self.callback_errors = self.callback_errors, []
        if errors:
            raise CallbackError(errors) from errors[0]

    def sync(self) -> None:
        """Waits for every queued callback (except inside one: those queued after it
        cannot run yet) and every pending computation."""
        if self._executor is not None and not in_callback():
            self._executor.submit(lambda: None).result()
        with self.lock:  # no call donates the arrays while they are waited for
            jax.block_until_ready(list(self.store.values()))

    def close(self) -> None:
        """Finishes queued callbacks and lets the jobs drop what they hold of this session."""
        if self._executor is not None:
            self._executor.shutdown(wait=not in_callback())  # a thread cannot join itself
            self._executor = None
        for job in list(self.jobs.values()):
            job._release(self.id)
        for pipe in self.data.values():
            pipe.close()

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
            # a copy (see assign): an initializer may return an array that its caller keeps
            self.store[s.name] = jax.device_put(np.array(values[s.name]), sharding_for(s))
            self.specs[s.name] = s

    def initialize_jobs(self) -> None:
        """Discovers every registered job (as OneFlow initializes its session).

        A job whose discovery fails (its body raises, its variables conflict) is skipped
        with a warning: saving, listing and loading the other jobs' variables never depend
        on an unrelated job's body. The broken job raises its error when it is called.
        """
        for job in list(self.jobs.values()):
            try:
                job._ensure_discovered()
            except Exception as e:  # the job's own error; it surfaces when the job is called
                warnings.warn(
                    f"job {job.name!r} was skipped: defining its variables raised "
                    f"{type(e).__name__}: {e}. Its variables are not in the store until the job is "
                    f"fixed (redefine it) and called or compiled.",
                    UserWarning,
                    stacklevel=4,
                )

    def get_all(self) -> dict[str, Blob]:
        with self.lock:  # a consistent snapshot; no call donates the arrays meanwhile
            self.initialize_jobs()
            _data_feed.flush(self)  # the pipelines' positions, into their entries
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
        problems += _data_feed.check(self, host)
        return host, problems

    def assign(self, host: Mapping[str, np.ndarray], owned: bool = False) -> None:
        """Puts checked host arrays (from :meth:`check_values`) into the store. Unless
        ``owned`` (the arrays are the caller's private ones, a checkpoint reader's), each is
        copied first: on the CPU ``jax.device_put`` uses an array whose data starts on a
        64-byte boundary in place (even with ``may_alias=False``, jax 0.10), and changing
        the caller's array later must not change a variable."""
        with self.lock:
            for name, arr in host.items():
                old = self.store[name]
                self.store[name] = jax.device_put(arr if owned else np.array(arr), old.sharding)
            _data_feed.restore(self, host)  # pipelines continue from loaded positions

    def load(self, values: Mapping[str, Any], ignore_mismatch: bool = True) -> None:
        with self.lock:  # checked and assigned with no call in between
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

    def _store(self) -> _dispatch.Store:
        sess = self._session()
        if sess is None:
            raise RuntimeError("the session of this schedule's state was cleared")
        return sess.store

    def read(self, name: str) -> jax.Array:
        store = self._store()
        with store.lock:
            return store[name]

    def write(self, name: str, value) -> None:
        store = self._store()
        with store.lock:
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
    """Drops every job and variable; the next job call starts from scratch.

    Raises ``CallbackError`` (after clearing) when a result callback of the old session
    raised and no job call or sync re-raised it yet.
    """
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()
        old.raise_callback_errors()


def sync_default_session() -> None:
    """Waits until every queued job call and result callback has finished.

    Raises ``CallbackError`` when a result callback raised since the last job call or
    sync (chained to its exception). Inside a callback it waits for the device work only.
    """
    sess = default_session()
    sess.sync()
    _summary.flush_all()
    if not in_callback():
        sess.raise_callback_errors()


@atexit.register
def _report_lost_callback_errors() -> None:
    """Prints the callback exceptions nobody re-raised before the interpreter exits."""
    sess = _default
    if sess is None or not sess.callback_errors:
        return
    print("jobflow: result callbacks raised and no job call or sync followed:", file=sys.stderr)
    for e in sess.callback_errors:
        traceback.print_exception(e, file=sys.stderr)


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

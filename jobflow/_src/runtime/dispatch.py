"""The per-call path of a compiled job, kept short: what a call costs beyond XLA's own dispatch.

A call of a compiled job (``Job.__call__`` in ``job.py``) does, in order:

1. *signature*: for plain numpy arguments (no keywords), ``(shape, dtype)`` of each one is
   looked up among the signatures that passed the full input checks before
   (:func:`signature`); a hit skips the checks (they would pass again: they depend on
   nothing else) and goes straight to the compiled program. Anything else (keywords, JAX
   arrays, lists, casts, a new shape) takes the checked path of
   ``definition.JobDefinition.check_inputs``.
2. *inputs*: numpy arguments are handed to the compiled program, whose C++ dispatch puts
   them on the devices with the program's input shardings (one transfer, no separate
   ``device_put``). Mirrored (``tp.ListNumpy``) arguments and arguments split across
   processes are placed by :meth:`jobflow._src.runtime.sharding.InputLayout.place`
   instead. A call that does not wait for its result copies numpy inputs first
   (:func:`owned`).
3. :func:`run`: when nothing wrote to the store since the program's last call, the state
   that call returned is passed again as it is; otherwise (:func:`gather`) the store's
   arrays are gathered, resharded where another job left them with another layout. The
   program runs asynchronously; the store takes the new state (donated buffers are
   replaced, :func:`store_result`), the step's scalars stay packed on the device until
   ``last_info`` is read (:class:`InfoPacker`, :class:`PackedInfo`).
4. the outputs are converted as the return annotation says (only ``tp.Numpy``-style
   annotations wait for the device; the others return :func:`deferred_result`).

This module calls nothing above it: a program is any object with the attributes of
``program.Program``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core.errors import ArgumentError
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import typing as tp

__all__ = [
    "Store",
    "signature",
    "owned",
    "takes_numpy",
    "gather_state",
    "gather",
    "store_result",
    "run",
    "deferred_result",
    "host_converter",
    "InfoPacker",
    "PackedInfo",
]


def signature(args) -> tuple:
    """``((shape, dtype), ...)`` of the arguments that are exactly numpy arrays.

    Arguments of other types are left out, so the signature of a call with any of them is
    shorter than the job's argument count and matches no recorded signature.
    """
    return tuple([(a.shape, a.dtype) for a in args if type(a) is np.ndarray])


def owned(inputs) -> list:
    """The inputs with every numpy array copied (also each array of a mirrored argument).

    On the CPU, JAX may use a numpy argument's buffer in place (zero-copy), and its
    transfers run asynchronously: until the step has read an input, the caller must not
    change it. A call that waits for its result (``tp.Numpy`` annotations) is done with its
    inputs when it returns; a call that does not wait takes copies first, so the caller
    may refill its buffers as soon as any call returns.
    """
    return [_copy(a) for a in inputs]


def _copy(a):
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, _sharding.MirroredInput):
        return _sharding.MirroredInput(tuple(_copy(x) for x in a.arrays), a.shape)
    return a  # JAX arrays are immutable


def takes_numpy(layouts) -> bool:
    """True when the compiled program can take numpy arguments directly: every argument is
    one global array (consistent view) whose devices all belong to this process."""
    return all(not lay.mirrored and lay.sharding.is_fully_addressable for lay in layouts)


def gather_state(store: dict, names, shardings: dict) -> dict:
    """``{name: store[name]}`` laid out with ``shardings[name]`` (``reshard`` leaves arrays
    that already have it as they are)."""
    return {n: _sharding.reshard(store[n], shardings[n]) for n in names}


def gather(program, store) -> tuple[dict, dict]:
    """The ``(mutable, readonly)`` state of a call of ``program``, gathered from the store.

    Used when something wrote to the store since the program's last call (its version
    differs); otherwise the call passes that call's new state and read-only state again
    as they are (``program.state``: no lookups, no layout checks).
    """
    shardings = program.state_shardings
    return gather_state(store, program.mutable, shardings), gather_state(store, program.readonly, shardings)


def store_result(program, store, new: dict, readonly: dict) -> None:
    """Writes a call's new state to the store and remembers it for the program's next call."""
    dict.update(store, new)
    store.version += 1
    program.version = store.version
    program.state = (new, readonly)


def run(program, store, inputs: list, guard=None):
    """``(outputs, PackedInfo)`` of one call of ``program`` on placed ``inputs`` and the
    store's state; the store takes the new state.

    ``guard``: the job's ``StepGuard`` when it bounds consecutive skipped steps; its limit
    is checked before anything runs (``NonFiniteStepsError``, nothing changed) and the
    call's info is recorded for the next check.
    """
    with store.lock:  # gather, donate and store with no other call or read in between
        if guard is not None:
            guard.check_limit(store)
        if program.version == store.version:  # nothing else wrote since the program's last call
            mutable, readonly = program.state
        else:
            mutable, readonly = gather(program, store)
        new, out, info = program.compiled(mutable, readonly, inputs)
        # The device is busy now: the bookkeeping below overlaps with it.
        store_result(program, store, new, readonly)
        info = PackedInfo(program.packer, info)
        if guard is not None:
            guard.record(info)
    return out, info


def deferred_result(job_name: str, kind: str, session, out, convert):
    """What a call that does not wait returns, by the return annotation's ``kind``:
    ``"none"``: None; ``"callback"``: a registrar ``f`` (``f(cb)`` runs ``cb(result)`` on
    the session's worker thread); else a :class:`jobflow.typing.Future`. An exception a
    callback raises is kept by the session (``Session.submit_callback``)."""
    if kind == "none":
        return None
    if kind == "callback":

        def register(callback):
            if not callable(callback):
                raise ArgumentError(
                    f"job {job_name!r} returns a callback registrar; pass it a callable, got {callback!r}"
                )
            session.submit_callback(lambda: callback(convert(out)))

        return register
    return tp.Future(out, convert, session.submit_callback)


def host_converter(structure, mirrored: bool, local: bool, stacked: bool):
    """The function turning a program's outputs into what the call returns (numpy).

    ``stacked``: every output has a leading step axis (``run_steps``). A single
    ``tp.Numpy`` result of a program on this process's devices is ``np.asarray``;
    everything else goes through ``runtime.typing.to_host``.
    """
    if structure == "leaf" and local and not mirrored:
        return np.asarray
    return functools.partial(tp.to_host, structure, mirrored=mirrored, stacked=stacked)


# ------------------------------------------------------------------------------ the store


class Store(dict):
    """The session's variable store: ``{name: jax.Array}`` that counts its writes in
    ``version``.

    A program remembers the state it passed and got back at its last call together with
    the version after it; when nothing else wrote since, its next call reuses that state
    as is. Every mutating method bumps the version (:func:`store_result` writes with
    ``dict.update`` and bumps it itself). ``lock`` (re-entrant) is held by every
    read-modify-write of the store: a job call (:func:`run`), whole-store reads and writes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = 0
        self.lock = threading.RLock()  # serializes read-modify-writes (runtime/session.py)

    def __setitem__(self, key, value):
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.version += 1
        super().__delitem__(key)

    def update(self, *args, **kwargs):
        self.version += 1
        super().update(*args, **kwargs)

    def pop(self, *args):
        self.version += 1
        return super().pop(*args)

    def popitem(self):
        self.version += 1
        return super().popitem()

    def setdefault(self, key, default=None):
        self.version += 1
        return super().setdefault(key, default)

    def clear(self):
        self.version += 1
        super().clear()

    def __ior__(self, other):  # type: ignore[misc]  # mypy holds it to dict.__or__'s widening type
        self.update(other)
        return self


# ------------------------------------------------------------------------------ step info


class InfoPacker:
    """Packs a step's info scalars (``lr``, ``loss``, ``step``, ...) into one byte vector.

    Every output of a compiled program costs a device buffer and a Python array object at
    each call; the info of a train step has several tiny ones. Inside the program
    :meth:`pack` bitcasts each leaf to bytes and concatenates them into one ``uint8``
    vector (one output); on the host :meth:`unpack` views the bytes as the original
    dtypes again, bit for bit. The layout is recorded when the program is traced.
    """

    def __init__(self) -> None:
        self.layout: list = []  # (key, dtype, shape, offset, nbytes)

    def pack(self, info: dict):
        """The info as one uint8 vector, or None when it is empty (inside a traced step)."""
        if not info:
            self.layout = []
            return None
        parts, layout, offset = [], [], 0
        for key, value in info.items():
            value = jnp.asarray(value)
            raw = value.astype(jnp.uint8) if value.dtype == jnp.bool_ else value
            flat = jnp.ravel(raw)
            if raw.dtype.itemsize > 1:
                flat = jnp.ravel(jax.lax.bitcast_convert_type(flat, jnp.uint8))
            layout.append((key, np.dtype(value.dtype), tuple(value.shape), offset, flat.size))
            parts.append(flat)
            offset += flat.size
        self.layout = layout
        return jnp.concatenate(parts)

    def unpack(self, packed) -> dict:
        """``{key: numpy value}`` from a packed vector (on the host)."""
        if packed is None:
            return {}
        raw = _sharding.to_numpy(packed)
        return self.unpack_row(raw[-1] if raw.ndim == 2 else raw)  # one row per step: the last step's

    def unpack_row(self, raw: np.ndarray) -> dict:
        """``{key: numpy value}`` from one step's packed bytes on the host."""
        out = {}
        for key, dtype, shape, offset, nbytes in self.layout:
            piece = raw[offset : offset + nbytes]
            value = piece.astype(bool) if dtype == np.bool_ else piece.view(dtype)
            out[key] = value.reshape(shape)
        return out


class PackedInfo(Mapping):
    """The info of one call: a read-only mapping unpacked (once) on first access."""

    def __init__(self, packer: InfoPacker, packed):
        self._packer = packer
        self._packed = packed
        self._raw: np.ndarray | None = None  # the packed bytes on the host, once read
        self._values: dict | None = None

    def _host(self):
        """The packed bytes on the host (one row per step for ``run_steps``), or None."""
        if self._packed is not None:
            self._raw, self._packed = _sharding.to_numpy(self._packed), None
        return self._raw

    def _unpacked(self) -> dict:
        if self._values is None:
            raw = self._host()
            self._values = {} if raw is None else self._packer.unpack_row(raw[-1] if raw.ndim == 2 else raw)
        return self._values

    def is_ready(self) -> bool:
        """True when the step has finished (reading the values would not wait)."""
        return self._packed is None or self._packed.is_ready()

    def block_until_ready(self) -> None:
        if self._packed is not None:
            self._packed.block_until_ready()

    def copy_to_host_async(self) -> None:
        """Starts copying the packed vector to the host (no wait)."""
        if self._packed is not None and hasattr(self._packed, "copy_to_host_async"):
            self._packed.copy_to_host_async()

    @property
    def num_steps(self) -> int:
        """Steps of the call (``run_steps``: K; otherwise 1), known without waiting."""
        packed = self._packed if self._packed is not None else self._raw
        return 1 if packed is None or packed.ndim == 1 else int(packed.shape[0])

    def rows(self) -> list[dict]:
        """``[{key: numpy value}]``, one per step of the call (``run_steps``: each of its
        steps; otherwise one). Waits for the step."""
        raw = self._host()
        if raw is None:
            return []
        return [self._packer.unpack_row(r) for r in (raw if raw.ndim == 2 else raw[None])]

    def __getitem__(self, key):
        return self._unpacked()[key]

    def __iter__(self):
        return iter(self._unpacked())

    def __len__(self):
        return len(self._unpacked())

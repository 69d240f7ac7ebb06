"""Checkpoints: save, read and load every variable of the session, atomically.

    flow.checkpoint.save("ckpt")                           # all variables: ckpt/model.safetensors
    flow.checkpoint.load("ckpt")                           # exact resume; checks everything
    flow.load_variables(flow.checkpoint.get("ckpt"))       # OneFlow's idiom
    flow.checkpoint.save("ckpt.safetensors")               # one file (the path ends with .safetensors)
    flow.checkpoint.save("oneflow_dir", format="oneflow")  # OneFlow's directory layout

A checkpoint holds every named array of the store (``flow.get_all_variables()``): model
variables, optimizer slots, each train job's step counter, each job's RNG key, and any
other state kept in the store (loss scale, schedule state). Nothing is special-cased by
kind, so loading it and calling the same jobs continues bitwise identically.

Formats (details in docs/checkpoints.md):

* ``"jobflow"`` (default): one safetensors file with a CRC-32C per variable, in a
  directory (``<path>/model.safetensors``: a checkpoint path is a directory, as OneFlow
  users expect), or the file itself when the path ends with ``.safetensors``. Reading it
  cannot execute code; damage is detected and named. Reading accepts either, and the
  path of the ``.safetensors`` file inside a directory.

Reading either format refuses hostile input with a :class:`CheckpointError`: links and
non-regular files inside the checkpoint, oversized headers and ``meta`` files, and any
header field that is malformed or inconsistent with the file (docs/reliability.md).
* ``"oneflow"``: OneFlow's legacy directory, ``<name>/out`` + ``<name>/meta`` +
  ``snapshot_done``, read and written so that OneFlow users can move weights both ways.

Saving is atomic (see :mod:`jobflow._atomic`): a crash or ``SIGKILL`` at any moment leaves
the previous checkpoint at ``path`` (or nothing, if there was none), never a partial one.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
import stat
from collections.abc import Mapping
from typing import Any

import numpy as np

from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core.counters import INT32_MAX  # step counters are int32 and never negative
from jobflow._src.core.names import STEP_COUNTER_PREFIX
from jobflow._src.core.names import step_counter as step_counter_name
from jobflow._src.core.version import __version__
from jobflow._src.graph import env as _env
from jobflow._src.io import atomic as _atomic
from jobflow._src.io import checkpoint_io as _io
from jobflow._src.io import oneflow_layout as _of
from jobflow._src.io import safe_files as _safe
from jobflow._src.io import safetensors_file as _sf
from jobflow._src.io.checkpoint_io import FORMATS as FORMATS
from jobflow._src.io.checkpoint_io import CheckpointError as CheckpointError
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime.session import Blob, _as_host, default_session

__all__ = [
    "save",
    "get",
    "load",
    "describe",
    "CheckpointManager",
    "CheckpointError",
    "LoadReport",
    "CheckpointInfo",
    "VariableInfo",
    "RawVariable",
    "FORMATS",
]


class RawVariable:
    """A OneFlow variable saved without a ``meta`` file: bytes of unknown shape and dtype.

    :func:`load` takes its shape and dtype from the variable it is loaded into;
    :meth:`numpy` raises, as OneFlow's ``FileBackendVariableBlob`` does.
    """

    shape = None
    dtype = None

    def __init__(self, file: str, nbytes: int) -> None:
        self.file = file
        self.nbytes = nbytes

    def numpy(self) -> np.ndarray:
        raise RuntimeError(
            f"{self.file} has no meta file, so its shape and dtype are unknown; "
            f"flow.checkpoint.load(path) takes them from the variable it is loaded into"
        )

    def __repr__(self):
        return f"RawVariable({self.file!r}, nbytes={self.nbytes})"


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What :func:`load` did: the names it loaded and the names it ignored (unknown here)."""

    loaded: tuple[str, ...]
    ignored: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class VariableInfo:
    """One variable of a checkpoint, as stored. ``shape``/``dtype`` are None for a
    :class:`RawVariable`; ``kind`` (model / slot / system) is None where not recorded."""

    name: str
    shape: tuple | None
    dtype: str | None
    nbytes: int
    kind: str | None


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`describe` found: the variables, the step counters ``{job: step}`` and,
    with ``verify=True`` or for damaged files, the problems. ``readable`` is False when
    the file could not be parsed at all (then ``variables`` is empty)."""

    path: str
    format: str
    variables: tuple[VariableInfo, ...]
    step_counters: dict[str, int]
    problems: tuple[str, ...]
    readable: bool = True  # False: the file itself could not be parsed (see ``problems``)

    @property
    def total_bytes(self) -> int:
        return sum(v.nbytes for v in self.variables)


# ---------------------------------------------------------------------------- reading


@dataclasses.dataclass
class _Contents:
    names: list[str]  # every variable the checkpoint lists, damaged ones included
    arrays: dict[str, np.ndarray]  # the intact ones
    raw: dict[str, RawVariable]  # OneFlow variables without meta
    problems: list[str]
    readable: bool = True  # False: the file itself could not be parsed


def _abspath(path, action: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint.{action}(path) must be a str or os.PathLike; got {path!r}")
    return os.path.abspath(os.fspath(path))


def _model_file(path: str, action: str) -> str | None:
    """``path/model.safetensors`` when ``path`` is a jobflow checkpoint directory (None
    when it has no such entry); a link or a non-regular file there is refused."""
    file = os.path.join(path, _io.MODEL_FILE)
    try:
        mode = os.lstat(file).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CheckpointError(
            action, path, [f"{_io.MODEL_FILE} cannot be examined ({e.strerror})"], "not read"
        ) from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(
            action, path, [f"{_io.MODEL_FILE} is {_safe.kind_of(mode)}, not a regular file"], "not read"
        )
    return file


def _locate(path: str, action: str) -> tuple[str, str]:
    """``(format, file to read)``; restores a replacement interrupted mid-way first.

    ``path`` itself may be a link (the user named it); it must lead to a regular file (a
    jobflow checkpoint file or any safetensors file), a jobflow checkpoint directory
    (``model.safetensors`` inside) or a OneFlow directory, not to a FIFO, a device or a
    socket. The file to read is ``path`` itself except for a jobflow directory.
    """
    if not os.path.lexists(path):
        try:
            _atomic.recover(path)
        except OSError:
            pass
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint.{action}({path!r}): no such file or directory") from None
    except OSError as e:
        raise CheckpointError(action, path, [f"it cannot be examined ({e.strerror})"], "not read") from None
    if stat.S_ISREG(mode):
        return "jobflow", path
    if not stat.S_ISDIR(mode):
        raise CheckpointError(
            action, path, [f"it is {_safe.kind_of(mode)}, not a checkpoint file or directory"], "not read"
        )
    model = _model_file(path, action)
    if model is not None:
        return "jobflow", model
    try:
        layout = _of.is_layout(path)
    except ValueError as e:
        raise CheckpointError(action, path, [str(e)], "not read") from None
    if not layout:
        raise CheckpointError(
            action,
            path,
            [
                f"a directory without {_io.MODEL_FILE} (a jobflow checkpoint) or OneFlow "
                f"variables (<name>/out files) or snapshot_done"
            ],
            "not a checkpoint",
        )
    return "oneflow", path


def _counter_problems(values: Mapping[str, Any]) -> list[str]:
    """Step counters whose value is outside [0, 2**31 - 1] (a negative counter would make
    the next Adam step divide by zero; a larger one does not fit the int32 it is)."""
    problems = []
    for name, value in sorted(values.items()):
        if not name.startswith(STEP_COUNTER_PREFIX) or not isinstance(value, np.ndarray):
            continue
        if value.dtype.kind not in "biuf" or not value.size:
            continue
        if not np.all((value >= 0) & (value <= INT32_MAX)):
            shown = value.reshape(-1)[0] if value.size == 1 else f"in [{value.min()}, {value.max()}]"
            problems.append(
                f"{_safe.label(name)}: step counter {shown} is outside [0, {INT32_MAX}] (2**31 - 1)"
            )
    return problems


def _read_oneflow(path: str) -> _Contents:
    scan = _of.scan_dir(path)
    arrays, problems = {}, list(scan.problems)
    for name, (shape, dtype) in scan.entries.items():
        try:
            arr, problem = _of.from_oneflow(name, _of.read_var(path, name, shape, dtype), _dtypes.canonical)
        except ValueError as e:
            arr, problem = None, str(e)
        if problem:
            problems.append(problem)
        else:
            assert arr is not None  # None comes with a problem
            arrays[name] = arr
    raw = {n: RawVariable(os.path.join(path, n, _of.DATA), size) for n, size in scan.untyped.items()}
    return _Contents(scan.names, arrays, raw, problems)


def _read(path: str, action: str) -> _Contents:
    fmt, file = _locate(path, action)
    if fmt == "jobflow":
        try:
            arrays, problems = _sf.read(file)
        except ValueError as e:
            return _Contents([], {}, {}, [str(e)], readable=False)
        contents = _Contents(sorted(arrays), arrays, {}, problems)
    else:
        try:
            contents = _read_oneflow(path)
        except ValueError as e:  # the directory itself could not be listed
            return _Contents([], {}, {}, [str(e)], readable=False)
    contents.problems += _counter_problems(contents.arrays)
    if fmt == "oneflow":  # (the jobflow format checks its values itself)
        contents.problems += _safe.value_problems(contents.arrays)
    return contents


def get(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a checkpoint: ``{name: array}`` (numpy arrays with OneFlow's ``.numpy()``).

    ``path`` is a jobflow checkpoint (directory or file), any safetensors file, or a OneFlow checkpoint
    directory. jobflow files are verified against their checksums; OneFlow directories
    must have ``snapshot_done`` and ``out`` sizes that match their ``meta``. OneFlow's
    ``System-*`` variables of shape (1,) come back as scalars and 64-bit values as the
    dtype JAX stores (int64 -> int32 unless x64 is on; out-of-range values are an error),
    so ``flow.load_variables(flow.checkpoint.get(path))`` works as in OneFlow. Variables
    without a ``meta`` file come back as :class:`RawVariable`.

    Raises:
      FileNotFoundError: nothing at ``path``.
      CheckpointError: the checkpoint is damaged; the error lists every problem.
    """
    path = _abspath(path, "get")
    contents = _read(path, "get")
    if contents.problems:
        raise CheckpointError("get", path, contents.problems, "the checkpoint is damaged")
    out: dict[str, Any] = {n: np.asarray(a).view(Blob) for n, a in contents.arrays.items()}
    out.update(contents.raw)
    return dict(sorted(out.items()))


def _resolve_raw(raw: RawVariable, spec, name: str) -> tuple[np.ndarray | None, str | None]:
    """Reads a meta-less OneFlow variable with the shape and dtype of ``spec``.

    OneFlow may have written a 64-bit type where JAX stores 32 bits (and shape (1,) for a
    ``System-*`` scalar); those sizes are accepted too and converted exactly.
    """
    size = int(np.prod(spec.shape, dtype=np.int64))
    candidates = [spec.dtype] + [
        np.dtype(w)
        for w in ("int64", "uint64", "float64")
        if _dtypes.canonical(w) == spec.dtype and np.dtype(w) != spec.dtype
    ]
    root = os.path.dirname(os.path.dirname(raw.file))
    for dtype in candidates:
        if raw.nbytes == size * dtype.itemsize:
            try:
                arr = _of.read_var(root, name, tuple(spec.shape), dtype)
            except ValueError as e:
                return None, str(e)
            return _of.from_oneflow(name, arr, _dtypes.canonical)
    return None, (
        f"{name}: {raw.file} has {raw.nbytes} bytes and no meta file; the variable has shape "
        f"{spec.shape} dtype {spec.dtype.name} = {size * spec.dtype.itemsize} bytes"
    )


def load(
    path: str | os.PathLike[str], *, ignore_mismatch: bool = True, allow_missing: bool = False
) -> LoadReport:
    """Loads a checkpoint into the session's variables, all or nothing.

    Registered jobs are discovered first (as OneFlow initializes its session), so their
    variables exist; a job whose placeholders have ``None`` dimensions must be called or
    compiled with example arguments before its variables can be loaded.

    Every problem is collected before anything changes: damaged files (checksums,
    truncation, a missing ``snapshot_done``), names the session does not define (unless
    ``ignore_mismatch``), session variables the checkpoint lacks (unless
    ``allow_missing``), shape or dtype mismatches, and a checkpoint none of whose
    variables exists here. On any problem a :class:`CheckpointError` lists them all and
    the store is unchanged.

    Args:
      path: a jobflow checkpoint (directory or file), a safetensors file or a OneFlow directory.
      ignore_mismatch: ignore checkpoint variables the session does not define (OneFlow's
        default, e.g. optimizer slots when only a predict job is defined).
      allow_missing: allow session variables that the checkpoint lacks (they keep their
        values). False by default: an exact resume needs every variable.

    Returns:
      a :class:`LoadReport` with the loaded and the ignored names.
    """
    path = _abspath(path, "load")
    for arg, value in (("ignore_mismatch", ignore_mismatch), ("allow_missing", allow_missing)):
        if not isinstance(value, bool):
            raise TypeError(f"checkpoint.load({arg}) must be True or False; got {value!r}")
    sess = default_session()
    contents = _read(path, "load")
    problems = list(contents.problems)
    if not contents.readable:
        raise CheckpointError("load", path, problems, "nothing was loaded, the variables are unchanged")
    with sess.lock:  # checked and assigned with no job call in between (runtime/session.py)
        return _load_contents(sess, path, contents, problems, ignore_mismatch, allow_missing)


def _load_contents(sess, path: str, contents: _Contents, problems: list, ignore_mismatch, allow_missing):
    """The part of :func:`load` after reading: checks everything, then assigns."""
    values: dict[str, Any] = dict(contents.arrays)
    sess.initialize_jobs()
    for name, raw in contents.raw.items():
        if name not in sess.specs:
            values[name] = raw  # unknown: ignored or reported below
            continue
        arr, problem = _resolve_raw(raw, sess.specs[name], name)
        if problem:
            problems.append(problem)
        else:
            values[name] = arr
            problems += _counter_problems({name: arr})
    host, more = sess.check_values(values, ignore_mismatch)
    problems += more
    missing = sorted(n for n in sess.specs if n not in contents.names)
    if missing and not allow_missing:
        problems.append(f"variables with no value: {', '.join(missing)}")
    ignored = sorted(n for n in values if n not in sess.specs)
    if values and not problems and not host:
        problems.append(
            f"none of the checkpoint's {len(values)} variables is defined in this session; define the "
            f"jobs (and call or compile those with None dimensions) before loading"
        )
    if problems:
        raise CheckpointError("load", path, problems, "nothing was loaded, the variables are unchanged")
    sess.assign(host, owned=True)  # the reader's own arrays: no copy needed
    return LoadReport(tuple(sorted(host)), tuple(ignored))


# ---------------------------------------------------------------------------- saving


def _check_format(fmt, where: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"{where}(format) must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}")
    return fmt


def _host_values(var_dict) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """C-contiguous host arrays of ``var_dict`` (all variables if None), their kinds and
    the problems (names that are not str, unreadable values)."""
    sess = default_session()
    if var_dict is None:
        sess.sync()
        var_dict = sess.get_all()
    elif not isinstance(var_dict, Mapping):
        raise TypeError(
            f"checkpoint.save(var_dict) must be a dict name -> array or None; got {type(var_dict).__name__}"
        )
    arrays, problems = {}, []
    for name, value in var_dict.items():
        if not isinstance(name, str):
            problems.append(f"{name!r}: variable names must be str")
            continue
        try:
            arrays[name] = np.asarray(_as_host(value).view(np.ndarray), order="C")
        except Exception as e:
            problems.append(f"{name}: cannot read value ({e})")
    kinds = {n: sess.specs[n].kind for n in arrays if n in sess.specs}
    return arrays, kinds, problems


def save(
    path: str | os.PathLike[str],
    var_dict: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    format: str = "jobflow",
    durable: bool = True,
) -> None:
    """Saves variables to ``path``, atomically.

    Args:
      path: the directory to write (a path ending with ``.safetensors``: the file, for
        ``format="jobflow"``). Its parent directories are created. A jobflow directory
        holds one file, ``model.safetensors``; an existing empty directory is filled.
      var_dict: ``{name: array}`` to save; None (default) saves every variable of every
        job (registered jobs that have not run yet are discovered first, as in OneFlow).
      overwrite: replace an existing checkpoint at ``path``. False (default) raises
        FileExistsError when ``path`` exists (an empty directory counts as nothing, as in
        OneFlow). Checked before anything is written.
      format: ``"jobflow"`` (one safetensors file with checksums) or ``"oneflow"``
        (OneFlow's ``<name>/out`` + ``<name>/meta`` + ``snapshot_done`` directory;
        ``System-*`` scalars are written with shape (1,), their int32 as int64).
      durable: True (default): the new checkpoint is on the disk when ``save`` returns
        (``fsync``), so the guarantee below holds across a power loss too. False skips
        the ``fsync``s: ``save`` returns once the bytes are with the operating system
        (several times faster on a slow disk); a crash or kill of the process still
        leaves the complete previous or the complete new checkpoint, but a power loss or
        an OS crash soon after may leave the previous one, or a damaged file, which
        ``load`` refuses (checksums, sizes) instead of loading.

    Guarantee: whenever the process stops, ``path`` holds the complete previous
    checkpoint (or nothing, if there was none) or the complete new one.

    Raises:
      FileExistsError: ``path`` exists and ``overwrite`` is False.
      CheckpointError: some value cannot be stored (the error lists them); nothing written.
    """
    path = _abspath(path, "save")
    _check_format(format, "checkpoint.save")
    for arg, value in (("overwrite", overwrite), ("durable", durable)):
        if not isinstance(value, bool):
            raise TypeError(f"checkpoint.save({arg}) must be True or False; got {value!r}")
    if not overwrite and _atomic.is_occupied(path):
        raise FileExistsError(
            f"checkpoint.save({path!r}): it already exists; pass overwrite=True to replace it "
            f"atomically, or choose another path"
        )
    arrays, kinds, problems = _host_values(var_dict)  # a collective with several processes
    writer = _io.prepare(
        path,
        arrays,
        kinds=kinds,
        format=format,
        version=__version__,
        problems=tuple(problems),
        durable=durable,
    )
    _on_primary(
        "save", path, lambda: _atomic.write_atomically(path, writer, overwrite=overwrite, durable=durable)
    )


def _on_primary(action: str, path: str, fn) -> None:
    """Runs ``fn()`` in process 0 only. With several processes every process waits for it
    (a collective) and raises if it failed, so all of them agree on what is on disk."""
    error = None
    if _env.get_rank() == 0:
        try:
            fn()
        except BaseException as e:
            error = e
    ok = error is None
    if _env.get_world_size() > 1:
        from jax.experimental import multihost_utils

        ok = bool(multihost_utils.broadcast_one_to_all(np.array(ok)))
    if error is not None:
        raise error
    if not ok:
        raise RuntimeError(
            f"checkpoint.{action}({path!r}): process 0 failed (its error says why); "
            f"the previous state on disk is unchanged"
        )


# ---------------------------------------------------------------------------- describing


def _step_counters(values: Mapping[str, np.ndarray]) -> dict[str, int]:
    """``{job: step}`` for the integer step counters among ``values``."""
    return {
        n[len(STEP_COUNTER_PREFIX) :]: int(np.asarray(v).reshape(-1)[0])
        for n, v in sorted(values.items())
        if n.startswith(STEP_COUNTER_PREFIX) and np.size(v) == 1 and np.asarray(v).dtype.kind in "biu"
    }


def _describe_jobflow(path: str, file: str) -> CheckpointInfo:
    try:
        entries, meta = _sf.read_header(file)
    except ValueError as e:
        return CheckpointInfo(path, "jobflow", (), {}, (str(e),), readable=False)
    kinds = _sf.read_kinds(meta)
    variables = tuple(
        VariableInfo(n, shape, dtype, nbytes, kinds.get(n)) for n, (shape, dtype, nbytes) in entries.items()
    )
    problems: list[str] = []
    try:
        counters = _step_counters(
            _sf.read_some(file, [n for n in entries if n.startswith(STEP_COUNTER_PREFIX)])
        )
    except ValueError as e:
        counters, problems = {}, [f"cannot read the step counters ({e})"]
    return CheckpointInfo(path, "jobflow", variables, counters, tuple(problems))


def _describe_oneflow(path: str) -> CheckpointInfo:
    try:
        scan = _of.scan_dir(path)
    except ValueError as e:
        return CheckpointInfo(path, "oneflow", (), {}, (str(e),), readable=False)
    variables = [
        VariableInfo(n, shape, dt.name, int(np.prod(shape, dtype=np.int64)) * dt.itemsize, None)
        for n, (shape, dt) in scan.entries.items()
    ] + [VariableInfo(n, None, None, size, None) for n, size in scan.untyped.items()]
    counters, problems = {}, list(scan.problems)
    for name in (n for n in scan.entries if n.startswith(STEP_COUNTER_PREFIX)):
        try:
            counters.update(_step_counters({name: _of.read_var(path, name, *scan.entries[name])}))
        except ValueError as e:
            problems.append(str(e))
    variables.sort(key=lambda v: v.name)
    return CheckpointInfo(path, "oneflow", tuple(variables), counters, tuple(problems))


def describe(path: str | os.PathLike[str], *, verify: bool = False) -> CheckpointInfo:
    """Lists a checkpoint's variables (shape, dtype, bytes, kind) and step counters.

    Reads only headers, ``meta`` files and the step counters; ``verify=True`` also reads
    every variable and checks it (checksums, conversions, step counter range) and reports
    the problems in ``CheckpointInfo.problems`` instead of raising. A file that cannot be
    parsed at all gives ``readable=False``, no variables and the reason as the one problem.
    """
    path = _abspath(path, "describe")
    fmt, file = _locate(path, "describe")
    info = _describe_jobflow(path, file) if fmt == "jobflow" else _describe_oneflow(path)
    if verify and info.readable:
        info = dataclasses.replace(info, problems=tuple(_read(path, "describe").problems))
    return info


# ---------------------------------------------------------------------------- manager


class CheckpointManager:
    """Saves a checkpoint every ``save_interval_steps`` steps into one directory and keeps
    the newest ``max_to_keep``.

    ::

        manager = flow.checkpoint.CheckpointManager("ckpts", max_to_keep=3, save_interval_steps=100)
        if manager.latest_step() is not None:
            manager.restore()                  # resume from the newest checkpoint
        for x, y in batches:
            train_job(x, y)
            manager.save()                     # saves when the step counter is a multiple of 100

    Checkpoints are named ``ckpt-<step, 8 digits>.safetensors`` (``ckpt-<step>`` directories
    for ``format="oneflow"``). The step is the train job's step counter after the update
    (``System-Train-TrainStep-<job>``), or the ``step`` given. Each save is atomic
    (:func:`save`); old checkpoints are deleted only after the new one is complete, and
    are renamed away before being deleted, so a stop at any moment leaves only complete
    checkpoints under their names. Leftovers of interrupted saves are cleaned up when the
    manager is created and at each save. One manager per directory at a time; with several
    processes (``jobflow launch``) every process calls the manager and process 0 writes.

    Args:
      directory: where the checkpoints go (created on the first save).
      max_to_keep: how many of the newest checkpoints (by step) to keep; None keeps all.
      save_interval_steps: :meth:`save` without ``force`` saves only at steps that are a
        multiple of this.
      job: the train job (or its name) whose step counter numbers the checkpoints; None
        uses the only step counter in the session.
      format: ``"jobflow"`` or ``"oneflow"``, as in :func:`save`.
      durable: as in :func:`save` (False: no ``fsync``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_to_keep: int | None = 5,
        save_interval_steps: int = 1,
        job: Any = None,
        format: str = "jobflow",
        durable: bool = True,
    ) -> None:
        self.directory = _abspath(directory, "CheckpointManager")
        if max_to_keep is not None and (
            not isinstance(max_to_keep, numbers.Integral) or isinstance(max_to_keep, bool) or max_to_keep < 1
        ):
            raise ValueError(
                f"CheckpointManager(max_to_keep) must be None or an int >= 1; got {max_to_keep!r}"
            )
        if (
            not isinstance(save_interval_steps, numbers.Integral)
            or isinstance(save_interval_steps, bool)
            or save_interval_steps < 1
        ):
            raise ValueError(
                f"CheckpointManager(save_interval_steps) must be an int >= 1; got {save_interval_steps!r}"
            )
        if job is not None and not isinstance(job, str) and not hasattr(job, "name"):
            raise TypeError(f"CheckpointManager(job) must be a train job, a job name or None; got {job!r}")
        if not isinstance(durable, bool):
            raise TypeError(f"CheckpointManager(durable) must be True or False; got {durable!r}")
        self.durable: bool = durable
        self.max_to_keep: int | None = None if max_to_keep is None else int(max_to_keep)
        self.save_interval_steps: int = int(save_interval_steps)
        self.job_name: str | None = None if job is None else (job if isinstance(job, str) else job.name)
        self.format: str = _check_format(format, "CheckpointManager")
        self._suffix: str = ".safetensors" if format == "jobflow" else ""
        self._pattern: re.Pattern[str] = re.compile(r"^ckpt-(\d+)" + re.escape(self._suffix) + "$")
        _on_primary("CheckpointManager", self.directory, self._tidy)

    def _tidy(self) -> None:
        if os.path.isdir(self.directory):
            _atomic.tidy(self.directory)

    def path(self, step: int) -> str:
        """The checkpoint path for ``step``."""
        return os.path.join(self.directory, f"ckpt-{int(step):08d}{self._suffix}")

    def all_steps(self) -> list[int]:
        """The steps that have a checkpoint, ascending."""
        try:
            entries = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(m[1]) for m in map(self._pattern.match, entries) if m)

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def current_step(self) -> int:
        """The train job's step counter (the number of updates applied so far)."""
        store = default_session().store
        if self.job_name is not None:
            name = step_counter_name(self.job_name)
            if name not in store:
                raise RuntimeError(
                    f"CheckpointManager: job {self.job_name!r} has no step counter yet; "
                    f"call or compile the train job first, or pass step="
                )
            return int(_sharding.to_numpy(store[name]))
        counters = sorted(n for n in store if n.startswith(STEP_COUNTER_PREFIX))
        if len(counters) != 1:
            found = ", ".join(counters) or "none"
            raise RuntimeError(
                f"CheckpointManager: cannot tell which step counter numbers the checkpoints "
                f"(found: {found}); pass job= to the manager or step= to save"
            )
        return int(_sharding.to_numpy(store[counters[0]]))

    def _step(self, step, where: str) -> int:
        if step is None:
            return self.current_step()
        if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 0:
            raise ValueError(f"CheckpointManager.{where}(step) must be an int >= 0 or None; got {step!r}")
        return int(step)

    def should_save(self, step: int | None = None) -> bool:
        """Whether :meth:`save` would save at ``step``: a multiple of the interval, not saved yet."""
        step = self._step(step, "should_save")
        return step % self.save_interval_steps == 0 and step not in self.all_steps()

    def save(self, step: int | None = None, *, force: bool = False) -> bool:
        """Saves all variables as checkpoint ``step`` if :meth:`should_save`, or always
        with ``force`` (replacing an existing checkpoint of that step); then deletes the
        oldest beyond ``max_to_keep``. Returns whether it saved."""
        step = self._step(step, "save")
        if not (force or self.should_save(step)):
            return False
        _on_primary("CheckpointManager.save", self.directory, self._tidy)
        save(self.path(step), overwrite=force, format=self.format, durable=self.durable)
        _on_primary("CheckpointManager.save", self.directory, self._prune)
        return True

    def _prune(self) -> None:
        if self.max_to_keep is not None:
            for old in self.all_steps()[: -self.max_to_keep]:
                _atomic.delete(self.path(old))

    def restore(
        self, step: int | None = None, *, ignore_mismatch: bool = True, allow_missing: bool = False
    ) -> int:
        """Loads checkpoint ``step`` (default: the newest) with :func:`load`; returns the step.

        Raises FileNotFoundError when there is no checkpoint to restore.
        """
        steps = self.all_steps()
        if step is None:
            if not steps:
                raise FileNotFoundError(f"CheckpointManager.restore(): no checkpoints in {self.directory!r}")
            step = steps[-1]
        step = self._step(step, "restore")
        if step not in steps:
            raise FileNotFoundError(
                f"CheckpointManager.restore(step={step}): no such checkpoint in "
                f"{self.directory!r} (steps: {steps})"
            )
        load(self.path(step), ignore_mismatch=ignore_mismatch, allow_missing=allow_missing)
        return step

    def __repr__(self):
        return (
            f"CheckpointManager({self.directory!r}, max_to_keep={self.max_to_keep}, "
            f"save_interval_steps={self.save_interval_steps}, format={self.format!r})"
        )

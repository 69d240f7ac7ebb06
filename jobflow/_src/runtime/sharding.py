"""Where a job's arrays live on its devices: every sharding decision of jobflow, in one place.

A job runs on a one-axis mesh (axis ``"data"``) over its placement's devices, or, when its
placement has a 2-D ``hierarchy=(d, m)``, on a ``(d, m)`` mesh with axes ``("data",
"model")``. All communication is XLA's: jobflow only chooses ``NamedSharding`` objects and, in the mirrored
view, runs the body per device with ``jax.shard_map``; XLA inserts the all-reduces,
all-gathers and slices.

Inputs
  * consistent view (``tp.Numpy.Placeholder``): the global array is split along the
    placeholder's ``batch_axis`` over ``"data"`` (replicated on a single device or
    without a batch axis).
  * mirrored view (``tp.ListNumpy.Placeholder``): one array per device; jobflow stacks
    them along a new leading axis that is split over ``"data"``, so device ``i`` holds
    exactly the ``i``-th array of the list (no host-side concatenation).

State (variables, optimizer slots, counters, RNG keys)
  * a variable with a layout (``get_variable(distribute=...)``, ``parallel_distribution``,
    ``layers.dense(model_distribute=...)``; :func:`layout_spec`): ``split(k)`` splits its
    axis ``k`` over ``"data"`` on a one-axis mesh and over ``"model"`` on a 2-D mesh
    (replicated over ``"data"``); a two-entry layout ``[d_data, d_model]`` names both
    mesh axes; a split axis its devices do not divide is kept whole (replicated) on them,
    with a ``LayoutWarning`` (XLA cannot split unevenly as OneFlow does); ``broadcast()`` replicates it whatever the ZeRO switches say. Its optimizer
    slots of its shape take its sharding (``plan.py``);
  * replicated on every device (the default, and ``auto()``);
  * ``function_config.shard_optimizer_state(True)``: optimizer slots are split over
    ``"data"`` along their first dimension divisible by the device count (ZeRO-1/2);
  * ``function_config.shard_variables(True)``: trainable variables too (ZeRO-3 / FSDP
    style: XLA all-gathers a variable where the body uses it).
  Arrays without such a dimension (scalars, a bias of size 3 on 8 devices) stay
  replicated. On a 2-D mesh the ZeRO switches split over all its devices.

Host results
  :func:`to_numpy` returns the whole logical array in every process, gathering the
  pieces of arrays split across processes (a collective: every process must ask).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jobflow._src.core import tracebacks as _tracebacks
from jobflow._src.core.errors import JobDefinitionError, JobInputError, LayoutWarning
from jobflow._src.graph import distribute as _dist
from jobflow._src.graph import scope as _scope

__all__ = [
    "AXIS",
    "MODEL_AXIS",
    "is_mirrored",
    "data_size",
    "layout_spec",
    "check_layouts",
    "split_spec",
    "state_sharding",
    "constrain",
    "InputLayout",
    "MirroredInput",
    "mirrored_input",
    "check_views",
    "input_layouts",
    "per_device",
    "to_numpy",
    "reshard",
    "local_pieces",
    "host_leaf",
    "host_list",
    "bytes_per_device",
]

AXIS = _scope.DATA_AXIS  # "data": the batch's mesh axis
MODEL_AXIS = _scope.MODEL_AXIS  # "model": a 2-D mesh's axis for split variables


def is_mirrored(config) -> bool:
    """True when a job's ``function_config`` chose ``flow.scope.mirrored_view()``."""
    return config.settings["default_logical_view"].kind == "mirrored"


# ---------------------------------------------------------------------------------- state


def data_size(mesh) -> int:
    """How many pieces the batch splits into: the size of the mesh axis ``"data"``."""
    return int(mesh.shape[AXIS])


def split_spec(shape: Sequence[int], n: int, axes: str | tuple = AXIS) -> P:
    """``P`` splitting the first dimension of ``shape`` that ``n`` divides over the mesh
    axes ``axes`` (of ``n`` devices in all); ``P()`` if none.

    A dimension qualifies when ``size % n == 0`` (and ``size >= n``), so every device gets
    an equal, non-empty piece; ``n == 1`` always gives ``P()``.
    """
    if n > 1:
        for axis, size in enumerate(shape):
            if size >= n and size % n == 0:
                return P(*([None] * axis), axes)
    return P()


def layout_spec(mesh, layout: tuple, ndim: int) -> P | None:
    """The ``PartitionSpec`` of a state array of rank ``ndim`` with ``layout`` on ``mesh``
    (``graph.distribute.partition_spec``); None when the layout leaves the choice to jobflow."""
    return _dist.partition_spec(mesh.axis_names, layout, ndim)


def check_layouts(job_name: str, specs, mesh, mirrored: bool, warned: set) -> None:
    """Raises ``JobDefinitionError`` unless every variable's layout fits the job: a split
    needs the consistent view and a two-entry layout a 2-D mesh.

    A split axis whose size the devices it is split over do not divide (OneFlow splits it
    unevenly; XLA's shardings cannot) is kept whole on those devices instead
    (:func:`state_sharding`): a :class:`~jobflow.errors.LayoutWarning` names the variable,
    the axis, its size and the device count, once per job and variable (``warned`` holds
    the ``(job, variable)`` pairs already warned of, and gets the new ones).
    """
    for spec in specs:
        layout = _dist.mesh_layout(mesh.axis_names, spec.distribute)
        if not layout:
            continue
        text = _dist.layout_text(spec.distribute)
        if len(layout) > len(mesh.axis_names):
            raise JobDefinitionError(
                f"job {job_name!r} variable {spec.name!r} has the 2-D layout {text}, but the job's "
                f"placement is one-dimensional; give the placement hierarchy=(data, model)"
            )
        splits = [(a, d) for a, d in zip(mesh.axis_names, layout) if isinstance(d, _dist.SplitDistribute)]
        if splits and mirrored:
            raise JobDefinitionError(
                f"job {job_name!r} variable {spec.name!r} has distribute={text}, which needs the "
                f"consistent view: in the mirrored view every device holds its own whole copy of a "
                f"variable; use flow.scope.consistent_view() or drop the split"
            )
        for axis in sorted({d.axis for _, d in splits}):
            names = [a for a, d in splits if d.axis == axis]
            n = int(np.prod([mesh.shape[a] for a in names]))
            size = spec.shape[axis]
            if size % n == 0 or (job_name, spec.name) in warned:
                continue
            warned.add((job_name, spec.name))
            over = "" if len(mesh.axis_names) == 1 else f" (mesh axis {', '.join(map(repr, names))})"
            warnings.warn(
                f"job {job_name!r} variable {spec.name!r} (shape {spec.shape}) has distribute={text}: "
                f"its axis {axis} has size {size}, which does not divide across the {n} devices it "
                f"is split over{over}. OneFlow splits it unevenly; XLA cannot, so jobflow stores the "
                f"variable and its optimizer slots whole along axis {axis} on those devices "
                f"(replicated: the values are the same, the memory is not divided)",
                LayoutWarning,
                stacklevel=_tracebacks.user_stacklevel(),
            )


def _whole_where_uneven(spec: P, shape: Sequence[int], mesh) -> P:
    """``spec`` without the mesh axes of each dimension of ``shape`` they do not divide:
    that dimension is kept whole (replicated) instead of split unevenly."""
    entries = []
    for dim, entry in enumerate(spec):
        names = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        n = int(np.prod([mesh.shape[a] for a in names]))
        entries.append(None if names and shape[dim] % n else entry)
    while entries and entries[-1] is None:
        entries.pop()
    return P(*entries)


def state_sharding(mesh, spec, config) -> NamedSharding:
    """The sharding of one state array (a ``graph.variables.VariableSpec``) in a job.

    An array whose layout (``spec.distribute``) says split or broadcast gets
    :func:`layout_spec`, less the splits of dimensions their devices do not divide (kept
    whole: :func:`check_layouts` warns). Otherwise optimizer slots are split when the job's config has
    ``shard_optimizer_state``, trainable variables when it has ``shard_variables`` (over
    all the mesh's devices); all else is replicated.
    """
    explicit = layout_spec(mesh, spec.distribute, len(spec.shape)) if spec.distribute else None
    if explicit is not None:
        return NamedSharding(mesh, _whole_where_uneven(explicit, spec.shape, mesh))
    settings = config.settings
    split = (spec.kind == "slot" and settings["shard_optimizer_state"]) or (
        spec.kind == "model" and spec.trainable and settings["shard_variables"]
    )
    axes = mesh.axis_names[0] if len(mesh.axis_names) == 1 else tuple(mesh.axis_names)
    return NamedSharding(mesh, split_spec(spec.shape, mesh.size, axes) if split else P())


def constrain(values: dict, shardings: dict) -> dict:
    """Pins each new state value to its store sharding inside the compiled step."""
    return {
        n: jax.lax.with_sharding_constraint(v, shardings[n]) if n in shardings else v
        for n, v in values.items()
    }


# --------------------------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class MirroredInput:
    """The checked value of a ``tp.ListNumpy.Placeholder``: one array per device.

    ``shape`` is the per-device shape (the placeholder's shape, ``None`` dims filled in).
    """

    arrays: tuple
    shape: tuple


def mirrored_input(where: str, value, check: Callable) -> MirroredInput:
    """Checks a mirrored argument: a list/tuple of arrays of one shape, each ``check``-ed.

    ``check(where_i, array)`` validates and casts one array (the consistent-view check).
    """
    if not isinstance(value, (list, tuple)) or not value:
        raise JobInputError(
            f"{where}: a tp.ListNumpy.Placeholder takes a non-empty list with one numpy array "
            f"per device; got {type(value).__name__}"
        )
    arrays = tuple(check(f"{where}[{i}]", a) for i, a in enumerate(value))
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) > 1:
        raise JobInputError(
            f"{where}: the per-device arrays must all have one shape; got shapes "
            f"{[tuple(a.shape) for a in arrays]}"
        )
    return MirroredInput(arrays, tuple(arrays[0].shape))


def check_views(job_name: str, placeholders, mirrored: bool) -> None:
    """A consistent job takes ``tp.Numpy`` placeholders; a mirrored job takes ``tp.ListNumpy``
    ones (one array per device) and ``tp.Numpy`` ones, whose batch is split evenly over the
    devices (each device's body sees its slice, as in OneFlow's mirrored view)."""
    for name, ph in placeholders:
        if ph.mirrored and not mirrored:
            raise JobDefinitionError(
                f"job {job_name!r} argument {name!r} is a tp.ListNumpy.Placeholder (one array per "
                f"device), which needs the mirrored view: "
                f"cfg.default_logical_view(flow.scope.mirrored_view())"
            )
        if mirrored and not ph.mirrored and ph.batch_axis is None:
            raise JobDefinitionError(
                f"job {job_name!r} runs in the mirrored view, so its tp.Numpy.Placeholder argument "
                f"{name!r} is split over the devices along its batch axis; it needs a batch_axis"
            )


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """How one argument of one input signature is laid out on the job's mesh.

    Attributes:
      sharding: the ``NamedSharding`` of the array the compiled step receives.
      shape: that array's (global) shape; ``(n, *shape)`` for a mirrored argument.
      dtype: its dtype.
      mirrored: True for a ``tp.ListNumpy`` argument.
    """

    sharding: NamedSharding
    shape: tuple
    dtype: np.dtype
    mirrored: bool

    @property
    def aval(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(self.shape, self.dtype, sharding=self.sharding)

    @property
    def local_spec(self) -> P:
        """The ``PartitionSpec`` of the argument inside the per-device body."""
        return self.sharding.spec

    def place(self, where: str, x):
        """Puts a checked argument on the devices (one global array in every process)."""
        if not self.mirrored:
            return jax.device_put(x, self.sharding)
        devices = _local_devices_in_order(self.sharding, self.shape)
        if len(x.arrays) != len(devices):
            raise JobInputError(
                f"{where}: the mirrored view takes one array per device of the job's placement "
                f"on this process ({len(devices)}: {', '.join(map(str, devices))}); got a list of "
                f"{len(x.arrays)}"
            )
        pieces = [jax.device_put(np.asarray(a)[None], d) for a, d in zip(x.arrays, devices)]
        return jax.make_array_from_single_device_arrays(self.shape, self.sharding, pieces)


def _local_devices_in_order(sharding, shape) -> list:
    """This process's devices of ``sharding``, ordered by the piece of axis 0 they hold."""
    index = sharding.addressable_devices_indices_map(shape)
    return sorted(index, key=lambda d: index[d][0].start or 0)


def input_layouts(mesh, placeholders, shapes, mirrored: bool) -> list[InputLayout]:
    """The layout of every argument for one input signature (``shapes``): the batch axis
    split over ``"data"`` (replicated over ``"model"`` on a 2-D mesh)."""
    n = data_size(mesh)
    out = []
    for (_, ph), shape in zip(placeholders, shapes):
        shape = tuple(shape)
        if mirrored and ph.mirrored:
            out.append(InputLayout(NamedSharding(mesh, P(AXIS)), (n, *shape), ph.dtype, True))
            continue
        spec = P()
        if (n > 1 or mirrored) and ph.batch_axis is not None and shape:
            axes: list[str | None] = [None] * len(shape)
            axes[ph.batch_axis] = AXIS
            spec = P(*axes)
        out.append(InputLayout(NamedSharding(mesh, spec), shape, ph.dtype, False))
    return out


# ------------------------------------------------------------------ the mirrored-view body


def per_device(fn: Callable, mesh, layouts: list[InputLayout]) -> Callable:
    """Runs ``fn(shared, key, inputs, scale) -> (outputs, averaged)`` once per device
    (mirrored view).

    * ``shared`` (variables) and ``scale`` (the loss scale) are replicated; ``key`` (an RNG
      key or None) is folded with the device index, so each device draws its own random
      numbers;
    * ``inputs`` are the per-device arrays (device ``i`` sees the ``i``-th list element);
    * ``outputs`` come back stacked along a new leading axis (one entry per device);
    * floating leaves of ``averaged`` (gradients, the loss, batch-norm statistics) are
      averaged over the devices with ``jax.lax.pmean`` (one XLA all-reduce); with equal
      per-device batches the averaged gradient is the gradient of the global mean loss.
    """

    def local(shared, key, inputs, scale):
        inputs = [x[0] if lay.mirrored else x for x, lay in zip(inputs, layouts)]
        if key is not None:
            key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
        outputs, averaged = fn(shared, key, inputs, scale)
        outputs = jax.tree.map(lambda o: jnp.expand_dims(o, 0), outputs)
        averaged = jax.tree.map(
            lambda v: jax.lax.pmean(v, AXIS) if jnp.issubdtype(v.dtype, jnp.inexact) else v, averaged
        )
        return outputs, averaged

    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(), [lay.local_spec for lay in layouts], P()),
        out_specs=(P(AXIS), P()),
        check_vma=False,
    )


# ----------------------------------------------------------------------------------- host


def to_numpy(x) -> np.ndarray:
    """The whole logical value of ``x`` as numpy, in every process.

    Arrays split across processes are gathered with
    ``jax.experimental.multihost_utils.process_allgather`` (every process must call).
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def reshard(x: jax.Array, sharding) -> jax.Array:
    """``x`` with ``sharding``: ``jax.device_put``, or through the host where JAX cannot move
    an array between different device sets of several processes (every process must call)."""
    if x.sharding == sharding:
        return x
    if x.is_fully_addressable or x.sharding.device_set == sharding.device_set:
        return jax.device_put(x, sharding)
    return jax.device_put(to_numpy(x), sharding)


def local_pieces(x) -> list[np.ndarray]:
    """The pieces of ``x`` on this process's devices, in mesh order (``tp.ListNumpy``)."""
    order = list(x.sharding.mesh.devices.flat) if isinstance(x.sharding, NamedSharding) else []

    def key(shard):
        return (
            tuple(i.start or 0 for i in shard.index),
            order.index(shard.device) if shard.device in order else 0,
        )

    return [np.asarray(s.data) for s in sorted(x.addressable_shards, key=key)]


def host_leaf(x, mirrored: bool, stacked: bool = False) -> np.ndarray:
    """A ``tp.Numpy`` result; in the mirrored view the per-device results concatenated
    along axis 0 (per-device scalars give a vector with one entry per device).

    ``stacked``: ``x`` has a leading step axis (``Job.run_steps``) before the device axis;
    each step's result is converted as above.
    """
    arr = to_numpy(x)
    lead = 1 if stacked else 0
    if mirrored and arr.ndim >= lead + 2:
        d = arr.shape[lead]
        arr = arr.reshape(*arr.shape[:lead], d * arr.shape[lead + 1], *arr.shape[lead + 2 :])
    return arr


def host_list(x, mirrored: bool, stacked: bool = False) -> list[np.ndarray]:
    """A ``tp.ListNumpy`` result: one array per device of this process (its piece of a
    consistent result; exactly what the body returned there in the mirrored view).

    ``stacked``: ``x`` has a leading step axis (``Job.run_steps``); each device's array
    keeps it.
    """
    pieces = local_pieces(x)
    if not mirrored:
        return pieces
    return [p[:, 0] for p in pieces] if stacked else [p[0] for p in pieces]


def bytes_per_device(arrays) -> dict:
    """``{device: bytes}`` that ``arrays`` occupy on each addressable device (from their shards)."""
    out: dict = {}
    for a in arrays:
        for s in a.addressable_shards:
            out[s.device] = out.get(s.device, 0) + s.data.nbytes
    return out

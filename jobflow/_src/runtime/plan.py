"""What one input signature of a job needs before it can compile: a :class:`Plan`, made once.

Where it sits in a call: the first call of a job with new input shapes (or ``compile()``,
or a session initializing its jobs) asks :func:`make_plan`, which, in order,

1. checks the views and the gradient-accumulation split of the shapes;
2. *discovers* the body (:func:`discover`): one abstract run under ``jax.eval_shape``
   that records the variables, the ``minimize`` call, the non-trainable variables ops
   update, whether the body draws random numbers, and the placements it enters;
3. chooses the devices (:func:`job_devices`: the union of the job's placements) and the
   mesh, and checks that the batch divides across them;
4. creates in the store, all or nothing, the variables and the job's system state (RNG
   key, step counter, loss-scale state and skip counters of its one :class:`StepGuard`),
   then the optimizer slots of the optimizer plans (``optimizer.base.build_plans``);
5. names the state the step writes (*mutable*, donated) and reads (*readonly*), and
   fixes the state's and the inputs' shardings.

``program.compile_program`` then builds the step (``step.py``) from the plan.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Any

import jax
import numpy as np

from jobflow._src.core import names as store_names
from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import JobDefinitionError
from jobflow._src.graph import distribute as _distribute
from jobflow._src.graph import env as _env
from jobflow._src.graph import scope as _scope
from jobflow._src.graph.variables import VariableSpec
from jobflow._src.optimizer.base import OptimizerPlan, build_plans
from jobflow._src.runtime import data_feed as _data_feed
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import steps as _steps
from jobflow._src.runtime.session import StoreAccess
from jobflow._src.runtime.step_guard import StepGuard

__all__ = ["Discovery", "Plan", "discover", "job_devices", "job_mesh", "make_plan"]


@dataclasses.dataclass(frozen=True)
class Discovery:
    """What one abstract run of the body found."""

    specs: dict  # name -> VariableSpec (model variables), in creation order
    minimize_calls: list  # [(optimizer, [losses])]: exactly one for a train job
    update_names: list  # non-trainable variables ops write (batch-norm statistics)
    uses_rng: bool
    placements: list  # placements entered in the body
    out_avals: Any
    label_args: tuple = ()  # (argument index, num_classes, op) of arguments used as labels
    gather_sites: dict = dataclasses.field(default_factory=dict)  # name -> [ids ShapeDtypeStruct]
    data_nodes: tuple = ()  # the dense outputs of the body's flow.data ops, in order (hidden inputs)
    data_placements: tuple = ()  # placements entered around flow.data ops (the host runs them)

    @property
    def optimizer(self):
        """The optimizer ``minimize`` was called on (train jobs)."""
        return self.minimize_calls[0][0]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything one input signature of a job compiles from; the store already holds its state.

    Attributes:
      shapes: the per-step input shapes (one tuple per argument).
      discovery: the :class:`Discovery` of the body for those shapes.
      devices / mesh: where the job runs (a one-axis mesh over ``devices``, or a 2-D
        ``("data", "model")`` mesh for a placement with a hierarchy).
      optimizer_plans: the ``OptimizerPlan`` list of a train job (empty for predict).
      guard: the job's :class:`StepGuard` (train jobs; None for predict).
      var_names: the model variables the body reads.
      grad_names: the variables the optimizers update (differentiated).
      mutable: the state the step writes, sorted (donated and returned).
      readonly: the rest of the state the step reads, sorted.
      shardings: ``{state name: NamedSharding}`` of ``mutable + readonly``.
      layouts: one ``sharding.InputLayout`` per argument.
      amp_dtype: the low dtype of mixed precision on these devices, or None.
      gathered: the row-sparse tables, ``{name: [ids ShapeDtypeStruct per gather site]}``
        (:func:`row_sparse_tables`).
      definition: the job's definition as the step sees it: with one hidden placeholder
        per flow.data output after the arguments (``data_feed.attach``).
      data: the ``data_feed.DataFeed`` of those hidden inputs, or None.
    """

    shapes: tuple
    discovery: Discovery
    devices: list
    mesh: Any
    optimizer_plans: list[OptimizerPlan]
    guard: StepGuard | None
    var_names: list[str]
    grad_names: list[str]
    mutable: list[str]
    readonly: list[str]
    shardings: dict
    layouts: list
    amp_dtype: Any
    gathered: dict = dataclasses.field(default_factory=dict)
    definition: Any = None
    data: Any = None


# ------------------------------------------------------------------------------ discovery


def discover(definition, shapes) -> Discovery:
    """Runs the body once abstractly on inputs of ``shapes`` and records what it uses.

    Raises :class:`JobDefinitionError` when a train job calls ``minimize`` not exactly once.
    """
    ctx = _trace.TraceContext(
        definition.name, definition.is_train, True, definition.config, amp_dtype=definition.amp_dtype()
    )

    label_args: list = []

    def body(*xs):
        with _trace.active(ctx), _scope.fresh_stacks():
            out = definition.fn(*xs)
        definition.return_spec.check(definition.name, out)
        label_args.extend(_label_args(ctx.label_ranges, xs))
        losses = [l for _, ls in ctx.minimize_calls for l in ls]
        return out, losses, dict(ctx.updates)

    avals = [jax.ShapeDtypeStruct(s, ph.dtype) for s, (_, ph) in zip(shapes, definition.placeholders)]
    out_avals, _, _ = jax.eval_shape(body, *avals)
    if definition.is_train:
        _check_minimize(definition.name, len(ctx.minimize_calls))
    return Discovery(
        dict(ctx.specs),
        ctx.minimize_calls,
        list(ctx.updates),
        ctx._rng_count > 0,
        ctx.placements,
        out_avals,
        tuple(label_args),
        dict(ctx.gather_sites),
        tuple(ctx.data.dense) if ctx.data is not None else (),
        tuple(ctx.data.placements) if ctx.data is not None else (),
    )


def _label_args(label_ranges, args) -> list:
    """``[(argument index, num_classes, op)]`` for the recorded labels that are arguments
    of the body themselves (``args``: the body's traced arguments)."""
    return [(i, n, op) for labels, n, op in label_ranges for i, x in enumerate(args) if labels is x]


def _check_minimize(job_name: str, calls: int) -> None:
    if calls == 0:
        raise JobDefinitionError(
            f"train job {job_name!r} does not call Optimizer.minimize(loss); add e.g. "
            f"flow.optimizer.SGD(0.1).minimize(loss), or declare the job type='predict'"
        )
    if calls > 1:
        raise JobDefinitionError(
            f"train job {job_name!r} calls minimize {calls} times; use one "
            f"optimizer, or flow.optimizer.CombinedOptimizer([...]).minimize(loss) for "
            f"several optimizers on disjoint variables"
        )


def _named_placements(definition, disc: Discovery) -> list:
    """The job's ``default_placement_scope`` then the placements its body enters, each once.

    A CPU placement the body entered around ``flow.data`` ops does not count: OneFlow's
    programs put their data ops under one (the host runs them in any case) and their model
    under another placement or none (the default placement)."""
    chosen = definition.config.settings["default_placement_scope"]
    entered = [p for p in disc.placements if not (p.device_tag == "cpu" and p in disc.data_placements)]
    return list(dict.fromkeys([*([chosen] if chosen is not None else []), *entered]))


def _used_placements(definition, disc: Discovery) -> list:
    """``[(placement, devices)]`` of the placements the job runs on: those it names (CPU ones
    dropped when accelerator ones are named too), else the default placement."""
    named = _named_placements(definition, disc)
    if not named:
        default = _scope.default_placement()
        return [(default, default.devices())]
    resolved = [(p, p.devices()) for p in named]
    platforms = {d.platform for _, devs in resolved for d in devs}
    if len(platforms) > 1:
        resolved = [(p, devs) for p, devs in resolved if p.device_tag != "cpu"]
        platforms = {d.platform for _, devs in resolved for d in devs}
    if len(platforms) > 1:
        raise JobDefinitionError(
            f"job {definition.name!r} names placements on several kinds of accelerator "
            f"({sorted(map(repr, (p for p, _ in resolved)))}); one job runs on one kind of device"
        )
    return resolved


def _union(used: list) -> list:
    """The devices of ``used`` (:func:`_used_placements`), each once, in order of appearance."""
    return list(dict.fromkeys(d for _, devs in used for d in devs))


def job_devices(definition, disc: Discovery) -> list:
    """The devices of the job: the union of its placements, else the default placement.

    The placements are its ``default_placement_scope`` and those its body enters; the
    union keeps the order in which devices first appear (the config's placement first,
    then the body's in the order entered). Every placement is resolved, so one that names a
    missing device raises (a ``"gpu"`` placement on a machine without GPUs, too). A job
    that names accelerator and CPU placements runs on the accelerators' devices: its CPU
    placements are layout hints (``docs/placement.md``, "Several placements in one job").
    """
    return _union(_used_placements(definition, disc))


def _hierarchy(job_name: str, used: list, count: int) -> tuple | None:
    """The mesh shape the placements ``used`` give (they must agree, and its product must
    equal the union's ``count`` devices), else None (one axis)."""
    given = list(dict.fromkeys(p.hierarchy for p, _ in used if p.hierarchy))
    if not given:
        return None
    if len(given) > 1 or int(np.prod(given[0])) != count:
        raise JobDefinitionError(
            f"job {job_name!r} runs on {count} devices (the union of its placements) "
            f"but its placements give the hierarchies {given}; give one hierarchy whose product is "
            f"{count}, on one of them"
        )
    return given[0]


def job_mesh(definition, disc: Discovery):
    """The job's mesh over :func:`job_devices`: one axis ``"data"``, or ``("data", "model")``
    for a 2-D hierarchy (the consistent view only: a mirrored body runs once per device)."""
    used = _used_placements(definition, disc)  # resolved once: the devices and the hierarchy
    devices = _union(used)
    hierarchy = _hierarchy(definition.name, used, len(devices))
    mesh = _scope.mesh_for(devices, hierarchy)
    if definition.mirrored and len(mesh.axis_names) > 1:
        raise JobDefinitionError(
            f"job {definition.name!r} runs in the mirrored view on a placement with "
            f"hierarchy={hierarchy}; the mirrored view runs the body once per device and "
            f"takes a one-dimensional placement (drop the hierarchy or use the consistent view)"
        )
    return mesh


# ------------------------------------------------------------------------- row-sparse tables

ROW_SPARSE = True  # False: every lazy variable updates densely (masked); for tests and benchmarks


def row_sparse_tables(definition, disc: Discovery, plans: list[OptimizerPlan], shapes, mesh=None) -> dict:
    """The embedding tables of a train job that get row-sparse gradients and updates
    (``optimizer/sparse_rows.py``), ``{name: [ids ShapeDtypeStruct per gather site]}``,
    and sets each plan's ``gathered``.

    A table qualifies when its optimizer leaves untouched rows unchanged and is elementwise
    along rows (``OptimizerPlan.row_sparse_candidates``), the body reads it with
    ``flow.gather`` along axis 0 and in no other way (:func:`_only_gathered`, one more
    abstract trace), and the job runs in one program per step: not in the mirrored view,
    without gradient accumulation. Any other lazy variable updates densely (masked rows),
    with the same numbers.
    """
    if not (ROW_SPARSE and definition.is_train) or definition.mirrored or definition.accumulation_steps > 1:
        return {}
    specs = disc.specs
    candidates = [
        n
        for p in plans
        for n in p.row_sparse_candidates()
        if n in disc.gather_sites and len(specs[n].shape) >= 1 and specs[n].shape[0] > 0
    ]
    if not candidates:
        return {}
    chosen = {
        n: list(disc.gather_sites[n]) for n in _only_gathered(definition, disc, candidates, shapes, mesh)
    }
    for p in plans:
        p.gathered = [n for n in p.var_names if n in chosen]
    return chosen


def row_shapes(spec_shape, dtype, sites) -> list:
    """The ``ShapeDtypeStruct`` of the rows each gather site of a table reads."""
    return [jax.ShapeDtypeStruct(tuple(s.shape) + tuple(spec_shape[1:]), dtype) for s in sites]


def _only_gathered(definition, disc: Discovery, candidates: list[str], shapes, mesh) -> list[str]:
    """The ``candidates`` that the body uses only through ``flow.gather``: traced once more
    (``jax.make_jaxpr``) with each such gather answering with an input that is not the
    table, a table whose input the program never reads has no other use."""
    specs = disc.specs
    tables = [jax.ShapeDtypeStruct(specs[n].shape, specs[n].dtype) for n in candidates]
    others = {n: jax.ShapeDtypeStruct(s.shape, s.dtype) for n, s in specs.items() if n not in candidates}
    rows = {n: row_shapes(specs[n].shape, specs[n].dtype, disc.gather_sites[n]) for n in candidates}
    avals = [jax.ShapeDtypeStruct(s, ph.dtype) for s, (_, ph) in zip(shapes, definition.placeholders)]

    def probe(tables, others, rows, *xs):
        ctx = _trace.TraceContext(
            definition.name,
            definition.is_train,
            False,
            definition.config,
            variables={**others, **dict(zip(candidates, tables))},
            rng=jax.random.key(0),
            amp_dtype=definition.amp_dtype(),
            mesh=mesh,
            row_grads=rows,
            row_probe=True,
        )
        with _trace.active(ctx), _scope.fresh_stacks():
            out = definition.fn(*xs)
        return out, [l for _, ls in ctx.minimize_calls for l in ls], dict(ctx.updates)

    jaxpr = jax.make_jaxpr(probe)(tables, others, rows, *avals).jaxpr
    read = {id(v) for eqn in jaxpr.eqns for v in eqn.invars} | {id(v) for v in jaxpr.outvars}
    return [n for n, v in zip(candidates, jaxpr.invars) if id(v) not in read]


# ---------------------------------------------------------------------------- system state


def _system_spec(name, shape, dtype, init, job_name, kind="system") -> VariableSpec:
    return VariableSpec(
        name=name,
        shape=shape,
        dtype=np.dtype(dtype),
        init=init,
        trainable=False,
        kind=kind,
        origin=f"job {job_name!r}",
    )


def rng_key_data(seed: int, job_name: str) -> np.ndarray:
    """A job's initial RNG key data: ``fold_in(key(seed), crc32(job name) & 0x7FFFFFFF)``."""
    salt = zlib.crc32(job_name.encode()) & 0x7FFFFFFF
    return np.asarray(jax.random.key_data(jax.random.fold_in(jax.random.key(seed), salt)))


def system_specs(definition, disc: Discovery, guard: StepGuard | None) -> list[VariableSpec]:
    """The job's own state: its RNG key (when the body draws random numbers); for a train
    job the step counter (int32, starts at 0) and the guard's loss-scale state and counters."""
    name, seed = definition.name, definition.seed
    out = []
    if disc.uses_rng:
        out.append(
            _system_spec(store_names.rng(name), (2,), np.uint32, lambda _s: rng_key_data(seed, name), name)
        )
    if guard is not None:
        out.append(
            _system_spec(
                store_names.step_counter(name), (), np.int32, lambda _s: np.zeros((), np.int32), name
            )
        )
        out.extend(
            _system_spec(n, (), v.dtype, lambda _s, _v=v: _v, name) for n, v in guard.initial_state().items()
        )
    return out


class _InitialValue:
    """The initializer of an optimizer slot: its value, computed from the variables.

    It hands the value out once and then drops it, so the store holds the only copy
    (keeping it would hold a second set of slots, e.g. Adam's m and v, for good).
    """

    def __init__(self, value):
        self._value = value

    def __call__(self, _seed):
        value, self._value = self._value, None
        if value is None:
            raise RuntimeError("an optimizer slot's initial value was already used")
        return _sharding.to_numpy(value)


def _optimizer_plans(definition, session, disc: Discovery) -> list[OptimizerPlan]:
    """The optimizer plans of the job's optimizer; stateful schedules reach their state in
    ``session``'s store through a ``StoreAccess`` handle (schedules never import the runtime)."""
    specs = disc.specs
    trainable = [n for n, s in specs.items() if s.trainable]
    avals = {n: jax.ShapeDtypeStruct(s.shape, s.dtype) for n, s in specs.items()}
    regularizers = {n: s.regularizer for n, s in specs.items()}
    access = StoreAccess(session)
    sparse = definition.config.settings["indexed_slices_optimizer_conf"] or ()
    return build_plans(
        disc.optimizer,
        trainable,
        avals,
        definition.name,
        regularizers,
        state_access=access,
        row_sparse_names=sparse,
    )


def _slot_owner(slot: str, var_names) -> str | None:
    """The longest variable name ``v`` in ``var_names`` with ``slot`` starting ``<v>-``."""
    ends = [i for i, c in enumerate(slot) if c == "-"]
    return next((slot[:i] for i in reversed(ends) if slot[:i] in var_names), None)


def _slot_layout(slot: str, shape: tuple, owners: set, var_specs: dict) -> tuple:
    """The layout a slot takes from its variable (the longest of ``owners``, the plan's
    variables in ``var_specs``, that the slot's name ``<var>-...`` starts with): the slot of
    a variable with a split layout and of the variable's shape shares it; others have none."""
    owner_name = _slot_owner(slot, owners)
    if owner_name is None:
        return ()
    owner = var_specs[owner_name]
    has_split = any(isinstance(d, _distribute.SplitDistribute) for d in owner.distribute)
    return owner.distribute if has_split and tuple(owner.shape) == shape else ()


def _slot_specs(definition, plans, values=None, var_specs=None) -> list[VariableSpec]:
    """The specs of the optimizer slots; ``values`` (``{slot name: initial value}``, taken)
    gives their initializers, else they have none (for the checks before anything is made).
    ``var_specs`` (the job's variables) gives each slot its variable's split layout."""
    var_specs = var_specs or {}
    owners = [set(plan.var_names).intersection(var_specs) for plan in plans]
    return [
        dataclasses.replace(
            _system_spec(
                n,
                tuple(a.shape),
                a.dtype,
                None if values is None else _InitialValue(values.pop(n)),
                definition.name,
                kind="slot",
            ),
            distribute=_slot_layout(n, tuple(a.shape), own, var_specs),
        )
        for plan, own in zip(plans, owners)
        for n, a in zip(plan.slot_names, plan.slot_avals)
    ]


def _check_own_names(specs: list[VariableSpec]) -> None:
    """Raises when two of a job's new state arrays share a name with different shapes or
    dtypes (a variable named like another's optimizer slot, ``<var>-<slot>``)."""
    seen: dict[str, VariableSpec] = {}
    for spec in specs:
        old = seen.setdefault(spec.name, spec)
        if old is not spec and old.conflicts_with(spec):
            raise JobDefinitionError(
                f"variable {spec.name!r} is defined with {old.describe()} and needed as "
                f"{spec.describe()}; rename the variable"
            )


def create_state(session, definition, disc, system, plans, sharding_for) -> None:
    """Puts the new variables and system state in the store, then the optimizer slots
    (their initial values are computed from the stored variables).

    Every spec, slots included, is checked against the store and against the others
    before anything is added: a conflict leaves the store untouched.
    """
    specs = [*disc.specs.values(), *system]
    everything = [*specs, *_slot_specs(definition, plans)]
    _check_own_names(everything)
    session.check_specs(everything)
    session.add(specs, definition.seed, sharding_for)
    for plan in plans:
        values = plan.init_slots({n: session.store[n] for n in plan.var_names})
        session.add(_slot_specs(definition, [plan], values, disc.specs), definition.seed, sharding_for)


# ---------------------------------------------------------------------------- state names


def state_names(definition, disc, plans, guard) -> tuple[list[str], list[str]]:
    """``(mutable, readonly)``, each sorted: the state a step writes and the rest it reads.

    Every job reads its model variables and its RNG key (written: split once per call). A
    train job also reads and writes its step counter, the optimizers' variables and slots,
    the variables ops update, and the guard's state.
    """
    name = definition.name
    rng = [store_names.rng(name)] if disc.uses_rng else []
    names = set(disc.specs) | set(rng)
    mutable = set(rng)
    if guard is not None:
        mutable.add(store_names.step_counter(name))
        for p in plans:
            mutable.update(p.var_names)
            mutable.update(p.slot_names)
        mutable.update(disc.update_names)
        mutable.update(guard.state_names)
    mutable_names = sorted(mutable)
    return mutable_names, sorted(names - set(mutable_names))


# -------------------------------------------------------------------------------- the plan


def _state_shardings(definition, session, disc, plans, sharding_for, names) -> dict:
    """``{name: NamedSharding}`` of the state the job uses, from this job's own specs (its
    variables' layouts, its slots') where it has them, else the store's: a job that lays a
    shared variable out differently from the job that created it reads it resharded."""
    own = {s.name: s for s in _slot_specs(definition, plans, None, disc.specs)}
    own.update(disc.specs)
    return {n: sharding_for(own.get(n, session.specs[n])) for n in names}


def make_plan(definition, session, shapes, on_discovery=None) -> Plan:
    """The :class:`Plan` of ``definition`` for per-step input ``shapes``; creates its state
    in ``session``'s store (see the module docstring for the order). ``on_discovery()`` is
    called just before the abstract run of the body."""
    _env.ensure_initialized()
    _sharding.check_views(definition.name, definition.placeholders, definition.mirrored)
    micro = definition.accumulation_steps
    _steps.check_accumulation(definition.name, definition.placeholders, shapes, micro, 1, definition.mirrored)
    if on_discovery is not None:
        on_discovery()
    disc = discover(definition, _steps.micro_shapes(definition.placeholders, shapes, micro))
    feed, extra = None, []
    if disc.data_nodes:  # hidden inputs after the arguments
        definition, shapes, feed, data_spec = _data_feed.attach(definition, session, disc.data_nodes, shapes)
        extra = [data_spec]
    mesh = job_mesh(definition, disc)
    devices = list(mesh.devices.flat)
    definition.check_divisible(shapes, _sharding.data_size(mesh))
    _steps.check_accumulation(
        definition.name,
        definition.placeholders,
        shapes,
        micro,
        _sharding.data_size(mesh),
        definition.mirrored,
    )
    _sharding.check_layouts(
        definition.name, disc.specs.values(), mesh, definition.mirrored, session.layout_warnings
    )
    guard = (
        StepGuard.for_job(definition.name, disc.optimizer, definition.config) if definition.is_train else None
    )
    plans = _optimizer_plans(definition, session, disc) if guard is not None else []
    gathered = row_sparse_tables(
        definition, disc, plans, _steps.micro_shapes(definition.placeholders, shapes, micro), mesh
    )
    sharding_for = functools.partial(_sharding.state_sharding, mesh, config=definition.config)
    create_state(
        session, definition, disc, [*system_specs(definition, disc, guard), *extra], plans, sharding_for
    )
    if feed is not None:
        _data_feed.register(session, feed)
    mutable, readonly = state_names(definition, disc, plans, guard)
    return Plan(
        shapes=shapes,
        discovery=disc,
        devices=devices,
        mesh=mesh,
        optimizer_plans=plans,
        guard=guard,
        var_names=list(disc.specs),
        grad_names=[n for p in plans for n in p.var_names],
        mutable=mutable,
        readonly=readonly,
        shardings=_state_shardings(definition, session, disc, plans, sharding_for, (*mutable, *readonly)),
        layouts=_sharding.input_layouts(mesh, definition.placeholders, shapes, definition.mirrored),
        amp_dtype=definition.amp_dtype(devices),
        gathered=gathered,
        definition=definition,
        data=feed,
    )

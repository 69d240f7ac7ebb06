"""``@global_function``: a job function traced once into one compiled XLA program.

Execution model (see DESIGN.md):

1. *Definition*: the signature's placeholders and the return annotation are read; the job
   registers in the default session under the function's name.
2. *Discovery* (first call, ``compile()``, or any call with a new input signature): the
   body runs abstractly (``jax.eval_shape``) and records its variables, optimizers and
   placement. New variables are initialized on the host and put in the store.
3. *The compiled step*: ``step(mutable_state, readonly_state, inputs) -> (mutable_state,
   outputs, info)`` is traced once per input signature and compiled with the mutable
   state donated. For a train job the body runs inside ``jax.value_and_grad`` and the
   optimizer update, the schedule ``lr(step)`` and the step counter run in the same
   program.
4. *Call*: inputs are checked (clear errors; nothing changes on failure), put on the
   job's devices, the program runs, the store is updated, and outputs are returned as
   the return annotation says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import typing
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jobflow._src.core import trace as _trace
from jobflow._src.core.counters import increment
from jobflow._src.core.names import rng as rng_name
from jobflow._src.core.names import step_counter as step_counter_name
from jobflow._src.graph import env as _env
from jobflow._src.graph import scope as _scope
from jobflow._src.graph.function_config import FunctionConfig
from jobflow._src.graph.variables import VariableSpec
from jobflow._src.optimizer.base import OptimizerPlan, apply_plans, build_plans
from jobflow._src.runtime import dispatch as _dispatch
from jobflow._src.runtime import session as _session
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import step_guard as _step_guard
from jobflow._src.runtime import steps as _steps
from jobflow._src.runtime import typing as tp

__all__ = ["global_function", "Job"]


def _system_spec(name, shape, dtype, init, job_name, kind="system"):
    return VariableSpec(
        name=name,
        shape=shape,
        dtype=np.dtype(dtype),
        init=init,
        trainable=False,
        kind=kind,
        origin=f"job {job_name!r}",
    )


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


def _annotations(fn) -> dict:
    """The function's annotations, evaluated (also under ``from __future__ import annotations``)."""
    try:
        return typing.get_type_hints(fn)
    except Exception as e:
        raw = dict(getattr(fn, "__annotations__", {}))
        if any(isinstance(v, str) for v in raw.values()):
            raise TypeError(
                f"job {fn.__name__!r}: its annotations are strings (from __future__ import annotations) "
                f"and cannot be evaluated ({e}); placeholders must be built from names visible at "
                f"module level, or drop the __future__ import in that module"
            ) from None
        return raw


@contextlib.contextmanager
def _fresh_scopes():
    """Traces start with empty namespace/placement stacks, whatever the caller has open."""
    saved = {k: getattr(_scope._local, k, []) for k in ("ns", "placement", "view")}
    for k in saved:
        setattr(_scope._local, k, [])
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(_scope._local, k, v)


@dataclasses.dataclass
class _Discovery:
    """What one abstract run of the body found."""

    specs: dict  # name -> VariableSpec (model variables)
    minimize_calls: list
    update_names: list
    uses_rng: bool
    placements: list
    out_avals: Any


@dataclasses.dataclass
class _Program:
    """A compiled step for one input signature."""

    compiled: Any
    lowered: Any
    mutable: list  # names donated and returned
    readonly: list
    state_shardings: dict  # name -> NamedSharding
    inputs: list  # one _sharding.InputLayout per argument
    devices: list
    direct: bool = False  # numpy arguments go straight to `compiled`, which copies them to the devices
    packer: Any = None  # _dispatch.InfoPacker of the info output
    to_host: Any = None  # outputs -> what the call returns (numpy), see _dispatch.host_converter
    version: int = -1  # the store's version after this program's last call
    state: Any = None  # (mutable, readonly) state of that call, valid while the version holds


class Job:
    """A compiled job. Call it with numpy arrays, one per placeholder.

    Attributes:
      name: the job's name (the function's ``__name__``).
      type: ``"train"`` or ``"predict"``.
      num_traces: how many times the compiled step was traced (once per distinct input
        signature; it never grows with the learning rate, loss scale or step).
      num_discovery_traces: how many abstract discovery runs of the body happened.
    """

    def __init__(self, fn, type: str, config: FunctionConfig):
        self.fn = fn
        self.name = fn.__name__
        self.type = type
        self.config = config
        hints = _annotations(fn)
        self.placeholders = self._read_placeholders(fn, hints)
        ret = hints.get("return", tp._NO_ANNOTATION)
        self.return_spec = tp.parse_return(ret, self.name)
        self._waits = self.return_spec.kind == "sync"  # a call waits for (and converts) its result
        self.num_traces = 0
        self.num_discovery_traces = 0
        self._session_id = None
        self._programs: dict = {}
        self._discoveries: dict = {}
        self._last_program: _Program | None = None
        self._last_info: dict | None = None
        self._direct: dict = {}  # _dispatch.signature(args) -> _Program, for checked numpy arguments
        self._guard: _step_guard.StepGuard | None = None
        functools.update_wrapper(self, fn)
        _session.default_session().jobs[self.name] = self

    # -- definition -------------------------------------------------------------------
    def _read_placeholders(self, fn, hints):
        sig = inspect.signature(fn)
        out = []
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"job {fn.__name__!r}: *args/**kwargs are not supported; "
                    f"annotate each argument with tp.Numpy.Placeholder(shape, dtype)"
                )
            ann = hints.get(p.name, p.annotation)
            if not isinstance(ann, tp.Placeholder):
                raise TypeError(
                    f"job {fn.__name__!r}: argument {p.name!r} must be annotated with "
                    f"tp.Numpy.Placeholder(shape, dtype=...); got {ann!r}"
                )
            if p.default is not p.empty:
                raise TypeError(f"job {fn.__name__!r}: argument {p.name!r} cannot have a default value")
            out.append((p.name, ann))
        return out

    # -- session binding --------------------------------------------------------------
    def _session(self) -> _session.Session:
        sess = _session.default_session()
        if self._session_id != sess.id:  # new session (after clear_default_session)
            self._session_id = sess.id
            self._programs.clear()
            self._discoveries.clear()
            self._direct.clear()
            self._last_program = None
            self._last_info = None
            self._guard = None
            sess.jobs.setdefault(self.name, self)
        return sess

    def _release(self, session_id) -> None:
        """Drops the state arrays the job's programs keep from their last call in session
        ``session_id`` (called when that session closes)."""
        if session_id == self._session_id:
            for program in self._programs.values():
                program.version, program.state = -1, None

    @property
    def mirrored(self) -> bool:
        """True when the job runs in the mirrored view (``tp.ListNumpy`` inputs)."""
        return _sharding.is_mirrored(self.config)

    @property
    def seed(self) -> int:
        from jobflow._src.graph import settings as _config

        s = self.config.settings["seed"]
        return _config.get_seed() if s is None else s

    # -- inputs -----------------------------------------------------------------------
    def _check_inputs(self, args, kwargs, stacked: bool = False) -> list:
        """The checked (and cast) arguments; ``stacked``: each is a stack of batches along a
        new leading axis (``run_steps``)."""
        n = len(self.placeholders)
        names = [name for name, _ in self.placeholders]
        if len(args) > n:
            raise TypeError(
                f"job {self.name!r} takes {n} argument{'s' if n != 1 else ''} ({', '.join(names)}); "
                f"got {len(args)}"
            )
        values = list(args) + [None] * (n - len(args))
        for k, v in kwargs.items():
            if k not in names:
                raise TypeError(f"job {self.name!r} has no argument {k!r}; its arguments are {names}")
            i = names.index(k)
            if i < len(args):
                raise TypeError(f"job {self.name!r} got argument {k!r} twice")
            values[i] = v
        missing = [names[i] for i in range(n) if i >= len(args) and names[i] not in kwargs]
        if missing:
            raise TypeError(
                f"job {self.name!r} is missing argument(s) {missing}; it takes ({', '.join(names)})"
            )
        if stacked:
            return [
                self._check_one(name, _steps.stacked_placeholder(ph), v, "run_steps argument")
                for (name, ph), v in zip(self.placeholders, values)
            ]
        return [self._check_one(name, ph, v) for (name, ph), v in zip(self.placeholders, values)]

    def _check_one(self, name, ph: tp.Placeholder, x, what: str = "argument"):
        where = f"job {self.name!r} {what} {name!r}"
        if ph.mirrored:
            return _sharding.mirrored_input(where, x, functools.partial(self._check_array, ph=ph))
        return self._check_array(where, x, ph)

    def _check_array(self, where, x, ph: tp.Placeholder):
        if isinstance(x, np.generic):
            x = np.asarray(x)
        if not isinstance(x, (np.ndarray, jax.Array)):
            raise TypeError(f"{where}: expected a numpy array with {ph.describe()}; got {type(x).__name__}")
        if x.ndim != ph.ndim:
            raise ValueError(
                f"{where}: expected rank {ph.ndim} ({ph.describe()}); got shape {tuple(x.shape)} (rank {x.ndim})"
            )
        if any(d is not None and d != s for d, s in zip(ph.shape, x.shape)):
            raise ValueError(f"{where}: expected {ph.describe()}; got shape {tuple(x.shape)}")
        want = ph.dtype
        got = np.dtype(x.dtype)
        if got != want:
            same_kind = got.kind == want.kind or (
                got.kind in "iu" and want.kind in "iu" and np.can_cast(got, want, "safe")
            )
            if want.kind == "f" and got.kind == "V":  # bfloat16 and friends
                same_kind = True
            if not same_kind:
                raise TypeError(
                    f"{where}: expected dtype {want.name}; got {got.name} (a different kind of number)"
                )
            x = x.astype(want)
        return x

    # -- discovery --------------------------------------------------------------------
    def _abstract_inputs(self, shapes) -> list:
        return [jax.ShapeDtypeStruct(s, ph.dtype) for s, (_, ph) in zip(shapes, self.placeholders)]

    def _amp_dtype(self, devices=None):
        """The low dtype white-list ops use, or None when AMP is off."""
        settings = self.config.settings
        if not settings["enable_auto_mixed_precision"]:
            return None
        if settings["amp_dtype"] is not None:
            return settings["amp_dtype"]
        platform = (devices or jax.devices())[0].platform
        return jnp.float16 if platform == "gpu" else jnp.bfloat16

    def _discover(self, shapes) -> _Discovery:
        ctx = _trace.TraceContext(
            self.name, self.type == "train", True, self.config, amp_dtype=self._amp_dtype()
        )

        def body(*xs):
            with _trace.active(ctx), _fresh_scopes():
                out = self.fn(*xs)
            self.return_spec.check(self.name, out)
            losses = [l for _, ls in ctx.minimize_calls for l in ls]
            return out, losses, dict(ctx.updates)

        self.num_discovery_traces += 1
        out_avals, _, _ = jax.eval_shape(body, *self._abstract_inputs(shapes))
        if self.type == "train":
            if not ctx.minimize_calls:
                raise RuntimeError(
                    f"train job {self.name!r} does not call Optimizer.minimize(loss); add e.g. "
                    f"flow.optimizer.SGD(0.1).minimize(loss), or declare the job type='predict'"
                )
            if len(ctx.minimize_calls) > 1:
                raise RuntimeError(
                    f"train job {self.name!r} calls minimize {len(ctx.minimize_calls)} times; use one "
                    f"optimizer, or flow.optimizer.CombinedOptimizer([...]).minimize(loss) for "
                    f"several optimizers on disjoint variables"
                )
        return _Discovery(
            dict(ctx.specs),
            ctx.minimize_calls,
            list(ctx.updates),
            ctx._rng_count > 0,
            ctx.placements,
            out_avals,
        )

    def _ensure_discovered(self):
        """Discovers the job once (for session initialization before any call)."""
        self._session()
        if self._discoveries:
            return
        if any(d is None for _, ph in self.placeholders for d in ph.shape):
            return  # needs real inputs to know its shapes; discovered at the first call
        self._prepare(tuple(ph.shape for _, ph in self.placeholders))

    # -- placement --------------------------------------------------------------------
    def _devices(self, disc: _Discovery) -> list:
        chosen = self.config.settings["default_placement_scope"]
        named = set(disc.placements) | ({chosen} if chosen is not None else set())
        if len(named) > 1:
            raise ValueError(
                f"job {self.name!r} uses several placements (its default_placement_scope and those "
                f"entered in its body: {sorted(map(repr, named))}); jobflow compiles a job into one "
                f"program on one set of devices"
            )
        return (named.pop() if named else _scope.default_placement()).devices()

    # -- preparing a signature: discovery, variables, plans ---------------------------
    def _prepare(self, shapes):
        """Discovers the body for ``shapes`` and creates the variables it needs."""
        sess = self._session()
        if shapes in self._discoveries:
            return self._discoveries[shapes]
        _env.ensure_initialized()
        _sharding.check_views(self.name, self.placeholders, self.mirrored)
        micro = self._accumulation_steps()
        _steps.check_accumulation(self.name, self.placeholders, shapes, micro, 1, self.mirrored)
        disc = self._discover(_steps.micro_shapes(self.placeholders, shapes, micro))  # what the body sees
        devices = self._devices(disc)
        self._check_divisible(shapes, devices)
        _steps.check_accumulation(self.name, self.placeholders, shapes, micro, len(devices), self.mirrored)
        mesh = _scope.mesh_for(devices)
        sharding_for = functools.partial(_sharding.state_sharding, mesh, config=self.config)
        specs = dict(disc.specs)
        system = []
        if disc.uses_rng:
            name = rng_name(self.name)
            seed = self.seed
            system.append(
                _system_spec(
                    name,
                    (2,),
                    np.uint32,
                    lambda _s, _n=self.name, _seed=seed: np.asarray(
                        jax.random.key_data(
                            jax.random.fold_in(jax.random.key(_seed), zlib.crc32(_n.encode()) & 0x7FFFFFFF)
                        )
                    ),
                    self.name,
                )
            )
        plans = []
        if self.type == "train":
            system.append(
                _system_spec(
                    step_counter_name(self.name), (), np.int32, lambda _s: np.zeros((), np.int32), self.name
                )
            )
            self._guard = self._step_guard(disc)
            system.extend(
                _system_spec(n, (), v.dtype, lambda _s, _v=v: _v, self.name)
                for n, v in self._guard.initial_state().items()
            )
            plans = self._build_plans(disc, specs)
        # Check everything before changing the store: a failure leaves it untouched.
        sess.check_specs([*specs.values(), *system])
        sess.add([*specs.values(), *system], self.seed, sharding_for)
        for plan in plans:
            params = {n: sess.store[n] for n in plan.var_names}
            values = plan.init_slots(params)
            slot_specs = [
                _system_spec(n, tuple(a.shape), a.dtype, _InitialValue(values.pop(n)), self.name, kind="slot")
                for n, a in zip(plan.slot_names, plan.slot_avals)
            ]
            sess.add(slot_specs, self.seed, sharding_for)
        self._discoveries[shapes] = (disc, devices, mesh, plans)
        return self._discoveries[shapes]

    def _build_plans(self, disc: _Discovery, specs: dict) -> list[OptimizerPlan]:
        top, _ = disc.minimize_calls[0]
        trainable = [n for n, s in specs.items() if s.trainable]
        avals = {n: jax.ShapeDtypeStruct(s.shape, s.dtype) for n, s in specs.items()}
        regularizers = {n: s.regularizer for n, s in specs.items()}
        access = _session.StoreAccess(self._session())
        return build_plans(top, trainable, avals, self.name, regularizers, state_access=access)

    # -- the compiled step ------------------------------------------------------------
    def _accumulation_steps(self) -> int:
        """Micro-batches per call (``function_config.train.gradient_accumulation_steps``)."""
        return self.config.settings["gradient_accumulation_steps"] if self.type == "train" else 1

    def _step_guard(self, disc) -> _step_guard.StepGuard:
        """Loss scale and non-finite steps (jobflow/_step_guard.py)."""
        top, _ = disc.minimize_calls[0]
        return _step_guard.StepGuard.for_job(self.name, top, self.config)

    def _make_step(self, disc: _Discovery, plans, var_names, devices, mesh=None, layouts=None):
        is_train = self.type == "train"
        rng = rng_name(self.name) if disc.uses_rng else None
        step_name = step_counter_name(self.name)
        grad_names = [n for p in plans for n in p.var_names]
        guard = self._step_guard(disc) if is_train else None

        amp = self._amp_dtype(devices)
        traced_optimizer = [None]  # set while the body is traced inside the step

        def run_body(variables, key, inputs):
            ctx = _trace.TraceContext(
                self.name, is_train, False, self.config, variables=variables, rng=key, amp_dtype=amp
            )
            with _trace.active(ctx), _fresh_scopes():
                out = self.fn(*inputs)
            return out, ctx

        def forward(shared, key, inputs, scale):
            """The body (and the gradients of ``scale * loss``): ``(outputs, (updates, loss,
            grads, feeds))``."""
            model, params = shared
            if not is_train:
                out, ctx = run_body(model, key, inputs)
                return out, (dict(ctx.updates), None, None, None)

            def loss_fn(params):
                out, ctx = run_body({**model, **params}, key, inputs)
                traced_optimizer[0] = ctx.minimize_calls[0][0]  # the update runs this trace's optimizer
                losses = [l for _, ls in ctx.minimize_calls for l in ls]
                total = sum(jnp.mean(l.astype(jnp.float32)) for l in losses)
                updates = jax.lax.stop_gradient(dict(ctx.updates))
                return total * scale, (out, updates, total, jax.lax.stop_gradient(dict(ctx.feeds)))

            (_, (out, updates, loss, feeds)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            return out, (updates, loss, grads, feeds)

        micro = self._accumulation_steps()
        if micro > 1:  # the body runs once per micro-batch; gradients are averaged
            axes = _steps.split_axes(self.placeholders)
            forward = _steps.accumulate(
                forward,
                micro,
                axes,
                _steps.micro_shardings(layouts, axes),
                self.config.settings["gradient_accumulator_dtype"],
            )
        if self.mirrored:  # the body runs once per device; gradients are averaged
            forward = _sharding.per_device(forward, mesh, layouts)

        def step(mutable, readonly, inputs):
            self.num_traces += 1
            state = {**readonly, **mutable}
            new, info = {}, {}
            key = None
            if rng is not None:
                k, key = jax.random.split(jax.random.wrap_key_data(state[rng]))
                new[rng] = jax.random.key_data(k)
            model = {n: state[n] for n in var_names}
            params = {n: state[n] for n in grad_names} if is_train else {}
            scale = guard.scale(state) if is_train else jnp.float32(1.0)
            out, (updates, loss, grads, feeds) = forward((model, params), key, inputs, scale)
            if not is_train:
                new.update({n: v for n, v in updates.items() if n in mutable})
                return new, out, info
            grads, finite, guard_info = guard.check(grads, loss, scale)  # unscaled
            counter = state[step_name]
            updated, plan_info = apply_plans(plans, traced_optimizer[0], counter, params, grads, state, feeds)
            updated.update(updates)
            updated[step_name] = increment(counter)
            committed, commit_info = guard.commit(state, finite, updated)  # skips non-finite steps
            new.update(committed)
            info.update(plan_info)
            info.update(guard_info)
            info.update(commit_info)
            info["loss"] = loss
            info["step"] = counter
            return new, out, info

        return step

    def _program(self, shapes, steps: int | None = None) -> _Program:
        """The compiled step for per-step input ``shapes``; with ``steps``, the program
        running that many steps over stacked inputs (``run_steps``)."""
        key = shapes if steps is None else ("run_steps", steps, shapes)
        if key in self._programs:
            return self._programs[key]
        sess = self._session()
        disc, devices, mesh, plans = self._prepare(shapes)
        var_names = list(disc.specs)
        names = set(var_names)
        if disc.uses_rng:
            names.add(rng_name(self.name))
        if self.type == "train":
            names.add(step_counter_name(self.name))
            for p in plans:
                names.update(p.slot_names)
            mutable = {rng_name(self.name), step_counter_name(self.name)} & names
            for p in plans:
                mutable.update(p.var_names)
                mutable.update(p.slot_names)
            mutable.update(disc.update_names)
            guard_names = self._step_guard(disc).state_names
            names.update(guard_names)
            mutable.update(guard_names)
        else:
            mutable = {rng_name(self.name)} & names
        mutable = sorted(mutable)
        readonly = sorted(names - set(mutable))
        shardings = {n: _sharding.state_sharding(mesh, sess.specs[n], self.config) for n in names}
        layouts = _sharding.input_layouts(mesh, self.placeholders, shapes, self.mirrored)
        step = self._make_step(disc, plans, var_names, devices, mesh, layouts)

        packer = _dispatch.InfoPacker()

        def pinned_step(mutable, readonly, inputs):
            new, out, info = step(mutable, readonly, inputs)
            assert new.keys() <= mutable.keys(), sorted(new.keys() - mutable.keys())
            new = {n: new.get(n, mutable[n]) for n in mutable}  # the donated structure (passed again)
            return _sharding.constrain(new, shardings), out, packer.pack(info)  # in the store's layout

        run = pinned_step
        if steps is not None:  # run_steps: the whole step scanned over stacked inputs
            run, layouts = _steps.scan_steps(pinned_step, layouts), _steps.stacked_layouts(layouts, steps)
        jitted = jax.jit(
            run,
            donate_argnums=(0,),
            in_shardings=(
                {n: shardings[n] for n in mutable},
                {n: shardings[n] for n in readonly},
                [lay.sharding for lay in layouts],
            ),
        )

        def aval(n):
            a = sess.store[n]
            return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=shardings[n])

        lowered = jitted.lower(
            {n: aval(n) for n in mutable}, {n: aval(n) for n in readonly}, [lay.aval for lay in layouts]
        )
        local = all(d.process_index == jax.process_index() for d in devices)
        program = _Program(
            lowered.compile(),
            lowered,
            mutable,
            readonly,
            shardings,
            layouts,
            devices,
            direct=local and _dispatch.takes_numpy(layouts),
            packer=packer,
            to_host=_dispatch.host_converter(
                self.return_spec.structure, self.mirrored, local, stacked=steps is not None
            ),
        )
        self._programs[key] = program
        return program

    # -- public API -------------------------------------------------------------------
    def compile(self, *example_args, **example_kwargs) -> Job:
        """Compiles the job ahead of its first call.

        Without arguments the placeholders' shapes are used (they must have no ``None``
        dimension); with example arguments, their shapes.
        """
        if example_args or example_kwargs:
            shapes = tuple(tuple(x.shape) for x in self._check_inputs(example_args, example_kwargs))
        else:
            if any(d is None for _, ph in self.placeholders for d in ph.shape):
                raise ValueError(
                    f"job {self.name!r} has placeholders with None dimensions; pass example "
                    f"arguments to compile(...) to choose their sizes"
                )
            shapes = tuple(ph.shape for _, ph in self.placeholders)
        self._last_program = self._program(shapes)
        return self

    def _place(self, program: _Program, arrays):
        return [
            x
            if program.direct and type(x) is np.ndarray  # the program transfers it
            else lay.place(f"job {self.name!r} argument {name!r}", x)
            for (name, _), lay, x in zip(self.placeholders, program.inputs, arrays)
        ]

    def _check_divisible(self, shapes, devices):
        if len(devices) < 2:
            return
        for (pname, ph), shape in zip(self.placeholders, shapes):
            if ph.mirrored or ph.batch_axis is None or len(shape) == 0:
                continue  # a mirrored argument already is one array per device
            if shape[ph.batch_axis] % len(devices):
                raise ValueError(
                    f"job {self.name!r} argument {pname!r}: the batch axis ({ph.batch_axis}) has size "
                    f"{shape[ph.batch_axis]}, which does not divide across the job's {len(devices)} devices"
                )

    def __call__(self, *args, **kwargs):
        sess = self._session()
        # Fast path: plain numpy arguments with a signature that passed the checks before.
        program = None if kwargs else self._direct.get(_dispatch.signature(args))
        if program is None:
            program, inputs = self._checked_inputs(args, kwargs)
        else:
            inputs = self._own(list(args))
        return self._run(sess, program, inputs)

    def _own(self, arrays: list) -> list:
        """Checked arguments the program may read after the call returns: copies of the
        caller's numpy arrays when the call does not wait (see ``_dispatch.owned``)."""
        return arrays if self._waits else _dispatch.owned(arrays)

    def _run(self, sess, program: _Program, inputs: list):
        """Runs ``program`` on placed inputs and the store's state; updates the store."""
        store = sess.store
        guard = self._guard
        if guard is not None and guard.limited:
            guard.check_limit(store)  # NonFiniteStepsError; nothing has changed
        else:
            guard = None
        if program.version == store.version:  # nothing else wrote since the program's last call
            mutable, readonly = program.state
        else:
            mutable, readonly = _dispatch.gather(program, store)
        new, out, info = program.compiled(mutable, readonly, inputs)
        # The device is busy now: the bookkeeping below overlaps with it.
        _dispatch.store_result(program, store, new, readonly)
        self._last_program = program
        self._last_info = info = _dispatch.PackedInfo(program.packer, info)
        if guard is not None:
            guard.record(info)
        if self._waits:
            return program.to_host(out)
        return self._result(sess, out, program.to_host)

    def run_steps(self, *args, **kwargs):
        """Runs ``K`` steps of the job in one call: ``job.run_steps(x_stack, y_stack)``.

        Every argument is a stack of ``K >= 1`` batches along a new leading axis (shape
        ``(K, *placeholder_shape)``; in the mirrored view each device's array is such a
        stack). One compiled program scans the whole step ``K`` times (``jax.lax.scan``):
        for a train job the forward and backward pass, clipping, ``lr(step)``, the update,
        the step counter (it advances by ``K``) and the RNG. The state afterwards is that
        of ``K`` single calls on the same batches, the outputs agree to float rounding
        (see ``jobflow/_steps.py`` for where XLA compiles the loop differently).

        Returns what a single call returns (as the return annotation says) with every
        output stacked along a new leading axis of size ``K``; ``last_info`` then reports
        the last step. Each distinct ``K`` (and input shape) is traced and compiled once.
        """
        sess = self._session()
        arrays = self._check_inputs(args, kwargs, stacked=True)
        shapes = [tuple(x.shape) for x in arrays]
        k = _steps.steps_of(self.name, [name for name, _ in self.placeholders], shapes)
        program = self._program(tuple(s[1:] for s in shapes), steps=k)
        return self._run(sess, program, self._place(program, self._own(arrays)))

    def _checked_inputs(self, args, kwargs):
        """``(program, placed arguments)`` after the full input checks (may compile)."""
        arrays = self._check_inputs(args, kwargs)
        program = self._program(tuple(tuple(x.shape) for x in arrays))
        key = _dispatch.signature(args)
        unchanged = len(key) == len(args) and all(a is x for a, x in zip(args, arrays))
        if program.direct and not kwargs and unchanged:
            self._direct[key] = program  # numpy arguments that passed the checks as they are
        return program, self._place(program, self._own(arrays))

    def _result(self, sess, out, convert):
        """What a call that does not wait returns: None, a callback registrar or a Future."""
        spec = self.return_spec
        if spec.kind == "none":
            return None
        if spec.kind == "callback":

            def register(callback):
                if not callable(callback):
                    raise TypeError(
                        f"job {self.name!r} returns a callback registrar; pass it a callable, got {callback!r}"
                    )
                sess.executor.submit(lambda: callback(convert(out)))

            return register
        return tp.Future(out, convert, sess.executor)

    # -- inspection -------------------------------------------------------------------
    def _require_program(self) -> _Program:
        if self._last_program is None:
            raise RuntimeError(
                f"job {self.name!r} has not been compiled yet; call it or call .compile() first"
            )
        return self._last_program

    def lower_text(self) -> str:
        """The StableHLO text of the most recently used compiled step."""
        return self._require_program().lowered.as_text()

    def compiled_text(self) -> str:
        """The optimized HLO text XLA produced for the most recently used step."""
        return self._require_program().compiled.as_text()

    @property
    def last_info(self) -> dict:
        """Scalars of the last call, read without retracing (converted on read).

        Train jobs: ``loss``; ``step`` (the counter the update used); ``lr`` (``lr_1``,
        ... for further optimizers; on a skipped step the rate the step would have used);
        ``loss_scale`` (the scale the step used, 1.0 without one); ``skipped`` (True when
        the update was dropped for a non-finite loss or gradient); ``global_grad_norm``
        (all unscaled gradients, before regularization and clipping); ``grad_norm`` when
        clipping is on; ``skipped_steps`` (the job's total) and
        ``consecutive_skipped_steps`` when the job can skip.
        """
        if self._last_info is None:
            raise RuntimeError(f"job {self.name!r} has not run yet")
        return {k: np.asarray(v).item() for k, v in self._last_info.items()}

    @property
    def last_lr(self) -> float:
        """The learning rate the last train step used."""
        info = self.last_info
        if "lr" not in info:
            if self.type == "predict":
                raise RuntimeError(f"job {self.name!r} is a predict job; it has no learning rate")
            raise RuntimeError(
                f"job {self.name!r}'s optimizer has no learning-rate schedule (a complete optax "
                f"optimizer passed to flow.optimizer.Optax without lr_scheduler)"
            )
        return info["lr"]

    @property
    def devices(self) -> list:
        """The devices the most recently used compiled step runs on, in mesh order."""
        return list(self._require_program().devices)

    @property
    def input_shardings(self) -> dict:
        """``{argument: NamedSharding}`` of the last compiled step's inputs (mirrored
        arguments: a leading device axis split over ``"data"``)."""
        program = self._require_program()
        return {name: lay.sharding for (name, _), lay in zip(self.placeholders, program.inputs)}

    @property
    def state_shardings(self) -> dict:
        """``{store name: NamedSharding}`` of the state the last compiled step reads or writes."""
        return dict(self._require_program().state_shardings)

    @property
    def variable_names(self) -> list[str]:
        """The names of the variables (model, slots, system) this job reads or writes."""
        program = self._require_program()
        return sorted(program.mutable + program.readonly)

    def __repr__(self):
        return f"<jobflow.Job {self.name!r} type={self.type!r}>"


def global_function(type: str = "predict", function_config: FunctionConfig | None = None):
    """Declares a job: ``@flow.global_function(type="train", function_config=cfg)``.

    Args:
      type: ``"train"`` (the body must call ``Optimizer.minimize(loss)``) or ``"predict"``.
      function_config: a :class:`~jobflow.config.FunctionConfig`; default settings if None.

    Returns:
      A decorator turning the job function into a :class:`Job`. The job is named after
      the function; defining a job with the name of an existing one replaces it.
    """
    if callable(type) and not isinstance(type, str):  # bare @global_function
        return Job(type, "predict", FunctionConfig())
    if type not in ("train", "predict"):
        raise ValueError(f"global_function(type) must be 'train' or 'predict'; got {type!r}")
    if function_config is None:
        function_config = FunctionConfig()
    if not isinstance(function_config, FunctionConfig):
        raise TypeError(
            f"global_function(function_config) must come from flow.function_config(); got {function_config!r}"
        )

    def decorate(fn):
        if not callable(fn):
            raise TypeError(f"global_function decorates a function; got {fn!r}")
        return Job(fn, type, function_config)

    return decorate

"""``@global_function`` and :class:`Job`: a job function traced once into one compiled XLA program.

Execution model (see DESIGN.md); each step lives in its own module of this package, and a
call goes down through them, never back:

1. *Definition* (``definition.py``): the signature's placeholders and the return
   annotation are read; the job registers in the default session under the function's
   name.
2. *Plan* (``plan.py``, first call, ``compile()``, or any call with a new input
   signature): the body runs abstractly (``jax.eval_shape``) and records its variables,
   optimizer and placement; new variables and the job's system state are created in the
   store; the state names, the shardings and the job's ``StepGuard`` are fixed.
3. *The compiled step* (``step.py``, ``program.py``): ``step(mutable_state,
   readonly_state, inputs) -> (mutable_state, outputs, info)`` is traced once per input
   signature and compiled with the mutable state donated. For a train job the body runs
   inside ``jax.value_and_grad`` and the optimizer update, the schedule ``lr(step)`` and
   the step counter run in the same program.
4. *Call* (``dispatch.py``): inputs are checked (clear errors; nothing changes on
   failure; values too with ``check_input_values``, ``input_checks.py``), put on the
   job's devices, the program runs, the store is updated under the store's lock (calls
   from several threads run in some serial order), and outputs are returned as the
   return annotation says. A call first re-raises what a result callback raised
   (``CallbackError``) and refuses to run inside another job's body.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from jobflow._src.core import gc_pause as _gc_pause
from jobflow._src.core import trace as _trace
from jobflow._src.core import tracebacks as _tracebacks
from jobflow._src.core.dtypes import Float32Value
from jobflow._src.core.errors import JobDefinitionError, JobInputError
from jobflow._src.graph.function_config import FunctionConfig
from jobflow._src.runtime import dispatch as _dispatch
from jobflow._src.runtime import info_summary as _info_summary
from jobflow._src.runtime import session as _session
from jobflow._src.runtime.definition import JobDefinition
from jobflow._src.runtime.plan import Plan, make_plan
from jobflow._src.runtime.program import Program, compile_program
from jobflow._src.runtime.step_guard import StepGuard

__all__ = ["global_function", "Job"]


class Job:
    """A compiled job. Call it with numpy arrays, one per placeholder.

    Attributes:
      name: the job's name (the function's ``__name__``).
      type: ``"train"`` or ``"predict"``.
      num_traces: how many times the compiled step was traced (once per distinct input
        signature; it never grows with the learning rate, loss scale or step).
      num_discovery_traces: how many abstract discovery runs of the body happened.
    """

    def __init__(self, fn: Callable[..., Any], type: str, config: FunctionConfig) -> None:
        _refuse_inside_trace(getattr(fn, "__name__", repr(fn)), "defined")
        self.definition = d = JobDefinition(fn, type, config)
        self.fn, self.name, self.type, self.config = fn, d.name, d.type, d.config
        self.placeholders, self.return_spec = d.placeholders, d.return_spec
        self._waits = d.waits  # a call waits for (and converts) its result
        self.num_traces = 0
        self.num_discovery_traces = 0
        self._session_id: int | None = None
        self._forget()
        functools.update_wrapper(self, fn)
        _session.default_session().jobs[self.name] = self

    # -- session binding ---------------------------------------------------------------
    def _forget(self) -> None:
        """Drops every plan, program and result of the previous session."""
        self._plans: dict[tuple, Plan] = {}  # input shapes -> Plan
        self._programs: dict = {}  # shapes or ("run_steps", K, shapes) -> Program
        self._direct: dict = {}  # dispatch.signature(args) -> Program, for checked numpy arguments
        self._last_program: Program | None = None
        self._last_info = None
        self._guard: StepGuard | None = None  # the StepGuard of the newest plan: skip counts are the job's
        self._limit: StepGuard | None = None  # the same guard when it bounds consecutive skips, else None
        old = getattr(self, "_recorder", None)
        if old is not None:
            old.close()
        self._recorder: _info_summary.InfoRecorder | None = (
            None  # writes each call's info (function_config().summary)
        )
        self._recorder_made = False

    def _session(self) -> _session.Session:
        sess = _session.default_session()
        if self._session_id != sess.id:  # new session (after clear_default_session)
            self._session_id = sess.id
            self._forget()
            sess.jobs.setdefault(self.name, self)
        return sess

    def _release(self, session_id) -> None:
        """Drops the state arrays the job's programs keep from their last call in session
        ``session_id`` (called when that session closes)."""
        if session_id == self._session_id:
            for program in self._programs.values():
                program.version, program.state = -1, None

    def _ensure_discovered(self) -> None:
        """Plans the job once, creating its state (a session initializing its jobs)."""
        self._session()
        shapes = self.definition.static_shapes()
        if not self._plans and shapes is not None:  # None dims: planned at the first call
            self._plan(shapes)

    @property
    def mirrored(self) -> bool:
        """True when the job runs in the mirrored view (``tp.ListNumpy`` inputs)."""
        return self.definition.mirrored

    @property
    def seed(self) -> int:
        return self.definition.seed

    # -- plans and programs --------------------------------------------------------------
    def _discovered(self) -> None:
        self.num_discovery_traces += 1

    def _traced(self) -> None:
        self.num_traces += 1

    def _plan(self, shapes) -> Plan:
        """The plan of per-step input ``shapes`` (made once; it creates the job's state)."""
        sess = self._session()
        with sess.lock:  # one thread plans; the others then find its plan
            plan = self._plans.get(shapes)
            if plan is None:
                plan = make_plan(self.definition, sess, shapes, on_discovery=self._discovered)
                self._plans[shapes] = plan
                if plan.guard is not None:
                    self._guard = plan.guard
                    self._limit = plan.guard if plan.guard.limited else None
        return plan

    def _program(self, shapes, steps: int | None = None) -> Program:
        """The compiled step for per-step input ``shapes``; with ``steps``, the program
        running that many steps over stacked inputs (``run_steps``)."""
        sess = self._session()  # first: a new session drops the old session's programs
        key = shapes if steps is None else ("run_steps", steps, shapes)
        program = self._programs.get(key)
        if program is None:
            with sess.lock, _gc_pause.paused():  # one thread compiles; the others then find its program
                program = self._programs.get(key)
                if program is None:
                    plan = self._plan(shapes)
                    program = compile_program(plan.definition, plan, sess.store, steps, self._traced)
                    self._programs[key] = program
        return program

    # -- calls ---------------------------------------------------------------------------
    @_tracebacks.boundary(lambda job: job.fn)
    def compile(self, *example_args, **example_kwargs) -> Job:
        """Compiles the job ahead of its first call.

        Without arguments the placeholders' shapes are used (they must have no ``None``
        dimension); with example arguments, their shapes.
        """
        _refuse_inside_trace(self.name, "compiled")
        if example_args or example_kwargs:
            arrays = self.definition.check_inputs(example_args, example_kwargs)
            shapes: tuple | None = tuple(tuple(x.shape) for x in arrays)
        else:
            shapes = self.definition.static_shapes()
            if shapes is None:
                raise JobInputError(
                    f"job {self.name!r} has placeholders with None dimensions; pass example "
                    f"arguments to compile(...) to choose their sizes"
                )
        self._last_program = self._program(shapes)
        return self

    @_tracebacks.boundary(lambda job: job.fn)  # user errors show no jobflow frame
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sess = self._session()
        if sess.callback_errors or _trace.current() is not None:
            self._before_call(sess)
        # Fast path: plain numpy arguments with a signature that passed the checks before.
        program = None if kwargs else self._direct.get(_dispatch.signature(args))
        if program is None:
            program, inputs = self._checked_inputs(args, kwargs)
        else:
            if program.value_checks is not None:
                program.value_checks(args)
            inputs = list(args) if self._waits else _dispatch.owned(args)
        return self._run(sess, program, inputs)

    def _before_call(self, sess) -> None:
        """Raises what a result callback raised (not inside a callback: the caller's thread
        gets it), and refuses a call inside a job's trace."""
        _refuse_inside_trace(self.name, "called")
        if not _session.in_callback():
            sess.raise_callback_errors()

    def _checked_inputs(self, args, kwargs):
        """``(program, placed arguments)`` after the full input checks (may compile)."""
        arrays = self.definition.check_inputs(args, kwargs)
        program = self._program(tuple(tuple(x.shape) for x in arrays))
        if program.value_checks is not None:
            program.value_checks(arrays)
        key = _dispatch.signature(args)
        unchanged = len(key) == len(args) and all(a is x for a, x in zip(args, arrays))
        if program.direct and not kwargs and unchanged:
            self._direct[key] = program  # numpy arguments that passed the checks as they are
        return program, self._place(program, self.definition.own(arrays))

    def _place(self, program: Program, arrays) -> list:
        return [
            x
            if program.direct and type(x) is np.ndarray  # the program transfers it
            else lay.place(f"job {self.name!r} argument {name!r}", x)
            for (name, _), lay, x in zip(self.placeholders, program.inputs, arrays)
        ]

    def _run(self, sess, program: Program, inputs: list, steps: int | None = None):
        """Runs ``program`` on placed inputs (and its next flow.data batches) and the store's
        state; returns the call's result."""
        if program.data is not None:
            out, self._last_info = program.data.run(program, sess.store, inputs, self._limit, steps)
        else:
            out, self._last_info = _dispatch.run(program, sess.store, inputs, self._limit)
        self._last_program = program
        if not self._recorder_made:  # made at the first call of the session (after env setup)
            self._recorder, self._recorder_made = _info_summary.recorder_for(self.definition), True
        if self._recorder is not None:
            self._recorder.record(self._last_info)
        if self._waits:
            return program.to_host(out)
        return _dispatch.deferred_result(self.name, self.return_spec.kind, sess, out, program.to_host)

    @_tracebacks.boundary(lambda job: job.fn)
    def run_steps(self, *args: Any, **kwargs: Any) -> Any:
        """Runs ``K`` steps of the job in one call: ``job.run_steps(x_stack, y_stack)``.

        Every argument is a stack of ``K >= 1`` batches along a new leading axis (shape
        ``(K, *placeholder_shape)``; in the mirrored view each device's array is such a
        stack). One compiled program scans the whole step ``K`` times (``jax.lax.scan``):
        for a train job the forward and backward pass, clipping, ``lr(step)``, the update,
        the step counter (it advances by ``K``) and the RNG. The state afterwards is that
        of ``K`` single calls on the same batches, the outputs agree to float rounding
        (see ``jobflow/_src/runtime/steps.py`` for where XLA compiles the loop differently).

        Returns what a single call returns (as the return annotation says) with every
        output stacked along a new leading axis of size ``K``; ``last_info`` then reports
        the last step. Each distinct ``K`` (and input shape) is traced and compiled once.
        """
        sess = self._session()
        self._before_call(sess)
        arrays, k = self.definition.check_stacked_inputs(args, kwargs)
        program = self._program(tuple(tuple(x.shape)[1:] for x in arrays), steps=k)
        if program.value_checks is not None:
            program.value_checks(arrays)
        return self._run(sess, program, self._place(program, self.definition.own(arrays)), k)

    # -- inspection ----------------------------------------------------------------------
    def _require_program(self) -> Program:
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

        Floating-point values are the float32 the step computed, as a ``float`` that prints
        with float32's shortest digits (``0.001``, not ``0.0010000000474974513``) and
        compares equal to that float32 (``np.float32(0.001)``, not the float64 ``0.001``).
        """
        if self._last_info is None:
            raise RuntimeError(f"job {self.name!r} has not run yet")
        return {k: _scalar(v) for k, v in self._last_info.items()}

    @property
    def last_lr(self) -> float:
        """The learning rate the last train step used: the float32 the step computed, printed
        in its shortest form (``0.001``; see :attr:`last_info`)."""
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


def _refuse_inside_trace(name: str, what: str) -> None:
    """Raises when a job is defined, compiled or called while a job body is traced: its
    state would be made of the outer trace's values (JAX tracers) and poison the store."""
    outer = _trace.current()
    if outer is not None:
        raise JobDefinitionError(
            f"job {name!r} is {what} inside the body of job {outer.job_name!r}; a job body cannot "
            f"define or call jobs. Define jobs at module level and call them one after another "
            f"from Python (share variables between them by name)"
        )


def _scalar(value):
    """A step's scalar on the host: bool, int, or a float32 as a :class:`Float32Value`."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and arr.dtype.itemsize <= 4:
        return Float32Value(arr.item())
    return arr.item()


@_tracebacks.boundary()
def global_function(
    type: str | Callable[..., Any] = "predict", function_config: FunctionConfig | None = None
) -> Callable[[Callable[..., Any]], Job] | Job:
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
        raise JobDefinitionError(f"global_function(type) must be 'train' or 'predict'; got {type!r}")
    if function_config is None:
        function_config = FunctionConfig()
    if not isinstance(function_config, FunctionConfig):
        raise JobDefinitionError(
            f"global_function(function_config) must come from flow.function_config(); got {function_config!r}"
        )

    @_tracebacks.boundary()
    def decorate(fn: Callable[..., Any]) -> Job:
        if not callable(fn):
            raise JobDefinitionError(f"global_function decorates a function; got {fn!r}")
        return Job(fn, type, function_config)

    return decorate

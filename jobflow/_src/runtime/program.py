"""A compiled step for one input signature: :class:`Program` and :func:`compile_program`.

Where it sits in a call: ``Job`` asks for the program of a call's input shapes (and
``run_steps`` size); the first time, :func:`compile_program` wraps the pure step of the
signature's :class:`~jobflow._src.runtime.plan.Plan` (``step.build_step``) so that the
new state keeps the donated structure and the store's shardings and the info scalars
come back packed in one vector (``dispatch.InfoPacker``), scans it for ``run_steps``
(``steps.scan_steps``; unrolled for a conv net on the CPU), and lowers and compiles it
with ``jax.jit`` (mutable state donated; the compiler options of ``xla_options``). Every
later call of the signature runs ``Program.compiled`` through ``dispatch.run``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from jobflow._src.runtime import dispatch as _dispatch
from jobflow._src.runtime import input_checks as _input_checks
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import steps as _steps
from jobflow._src.runtime import xla_options as _xla_options
from jobflow._src.runtime.step import build_step

__all__ = ["Program", "compile_program"]


@dataclasses.dataclass
class Program:
    """A compiled step for one input signature.

    Attributes:
      compiled: the XLA executable, ``compiled(mutable, readonly, inputs) -> (new mutable
        state, outputs, packed info)``.
      lowered: its ``jax.stages.Lowered`` (``lower_text``).
      mutable / readonly: the state names it donates and returns / only reads, sorted.
      state_shardings: ``{state name: NamedSharding}`` of both.
      inputs: one ``sharding.InputLayout`` per argument.
      devices: the devices it runs on, in mesh order.
      direct: numpy arguments go straight to ``compiled``, which copies them to the devices.
      packer: the ``dispatch.InfoPacker`` of the info output.
      to_host: outputs -> what the call returns (see ``dispatch.host_converter``).
      value_checks: ``input_checks.ValueChecks`` of the arguments, or None (off).
      version: the store's version after this program's last call.
      state: ``(mutable, readonly)`` state of that call, valid while ``version`` holds.
      data: the ``data_feed.DataFeed`` of the step's hidden inputs (flow.data), or None.
    """

    compiled: Any
    lowered: Any
    mutable: list
    readonly: list
    state_shardings: dict
    inputs: list
    devices: list
    direct: bool = False
    packer: Any = None
    to_host: Any = None
    value_checks: Any = None
    version: int = -1
    state: Any = None
    data: Any = None


def pinned(step: Callable, shardings: dict, packer: _dispatch.InfoPacker) -> Callable:
    """``step`` returning the whole mutable state it took (values it did not write pass
    through) pinned to the store's shardings, and its info packed by ``packer``."""

    def pinned_step(mutable, readonly, inputs):
        new, out, info = step(mutable, readonly, inputs)
        assert new.keys() <= mutable.keys(), sorted(new.keys() - mutable.keys())
        new = {n: new.get(n, mutable[n]) for n in mutable}  # the donated structure (passed again)
        return _sharding.constrain(new, shardings), out, packer.pack(info)  # in the store's layout

    return pinned_step


def _cpu_convolutions(lowered, devices) -> bool:
    """Whether a program for CPU devices holds a convolution."""
    return _xla_options.all_cpu(devices) and "stablehlo.convolution" in lowered.as_text()


def compile_program(definition, plan, store, steps: int | None = None, on_trace=None) -> Program:
    """Compiles the step of ``plan``; with ``steps``, the program running that many steps
    over inputs stacked along a new leading axis (``run_steps``).

    ``store`` gives the state's avals (shape, dtype); ``on_trace()`` runs each time the
    step is traced.
    """
    shardings = plan.shardings
    packer = _dispatch.InfoPacker()
    layouts = plan.layouts if steps is None else _steps.stacked_layouts(plan.layouts, steps)
    mutable = {n: shardings[n] for n in plan.mutable}
    readonly = {n: shardings[n] for n in plan.readonly}

    def aval(n):
        return jax.ShapeDtypeStruct(store[n].shape, store[n].dtype, sharding=shardings[n])

    def lower(unroll=False):
        run = pinned(build_step(definition, plan, on_trace or (lambda: None)), shardings, packer)
        if steps is not None:  # run_steps: the whole step scanned over stacked inputs
            run = _steps.scan_steps(run, plan.layouts, unroll)
        jitted = jax.jit(
            run, donate_argnums=(0,), in_shardings=(mutable, readonly, [lay.sharding for lay in layouts])
        )
        return jitted.lower(
            {n: aval(n) for n in mutable}, {n: aval(n) for n in readonly}, [lay.aval for lay in layouts]
        )

    lowered = lower()
    if steps is not None and steps <= _steps.MAX_UNROLLED and _cpu_convolutions(lowered, plan.devices):
        lowered = lower(unroll=True)  # see runtime/steps.py: XLA's CPU convolutions in loops
    local = all(d.process_index == jax.process_index() for d in plan.devices)
    return Program(
        lowered.compile(compiler_options=_xla_options.compiler_options(plan.devices)),
        lowered,
        list(plan.mutable),
        list(plan.readonly),
        dict(shardings),
        layouts,
        plan.devices,
        direct=local and _dispatch.takes_numpy(layouts),
        packer=packer,
        to_host=_dispatch.host_converter(
            definition.return_spec.structure, definition.mirrored, local, stacked=steps is not None
        ),
        value_checks=_input_checks.value_checks(definition, plan.discovery.label_args),
        data=plan.data,
    )

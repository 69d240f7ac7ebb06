"""Several steps or micro-batches in one compiled program: ``Job.run_steps`` and gradient accumulation.

Both use ``jax.lax.scan``, so the program holds one copy of the step (or of the forward and
backward pass) whatever the number of steps, and memory holds one step's activations.

``job.run_steps(*stacks)``
  every argument is a stack of ``K`` batches along a new leading axis; the compiled program
  scans the whole train step (forward, backward, clipping, ``lr(step)``, the update, the
  step counter, the RNG) ``K`` times and returns each step's outputs stacked along a new
  leading axis. The state after the call is that of ``K`` single calls with the same
  batches (bitwise in our tests of dense models with dropout, a schedule and clipping);
  the outputs agree to float rounding. XLA compiles the loop body on its own: it may
  vectorize a transcendental op differently (last-bit differences in an output).

``function_config.train.gradient_accumulation_steps(n)``
  each call's batch is split along every placeholder's ``batch_axis`` into ``n`` equal
  micro-batches (micro-batch ``i`` is the ``i``-th contiguous slice); the forward and
  backward pass run once per micro-batch inside a scan and the gradients are averaged
  (summed in the accumulator dtype, float32 unless the gradients are wider, then divided
  by ``n``); then one optimizer update runs. So for a loss that is a mean over the batch
  the update equals one update on the whole batch (up to float rounding), the step counter
  and the schedule advance once per call (they count optimizer steps), and memory holds one
  micro-batch's activations plus one accumulator per trainable variable.

**Convolutions on the CPU: run_steps is unrolled.** XLA's CPU backend (jax 0.10) sends
only the convolutions of a program's top level to its fast (Eigen) kernels; one inside a
loop body runs a naive loop nest, 10-40x slower (a LeNet layer's step: 114 ms unrolled,
5139 ms in a 4-step scan). So a CPU ``run_steps`` program whose scan holds a convolution
is lowered a second time with the scan unrolled (``scan_steps(unroll=True)``, chosen by
``program.compile_program``) when ``K <= MAX_UNROLLED``: the program holds K copies of the
step (compile time and XLA's temporary memory grow with K: LeNet at K = 4 needs 50 MiB of
temporaries instead of 31) and runs at the speed of single calls. Larger K stay loops.
Gradient accumulation's scan stays a loop: unrolled, its temporaries grow with the
micro-batches (LeNet, 10 micro-batches: 82 MiB instead of 15, more than the whole batch's
31 MiB without accumulation), which defeats what accumulation is for; on the CPU a conv
net's accumulation therefore runs about 11x slower than one step on the whole batch.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jobflow._src.core.errors import JobInputError
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import typing as tp

__all__ = [
    "MAX_UNROLLED",
    "stacked_placeholder",
    "steps_of",
    "stacked_layouts",
    "scan_steps",
    "split_axes",
    "micro_shapes",
    "check_accumulation",
    "micro_shardings",
    "accumulate",
]


MAX_UNROLLED = 8  # on the CPU a conv net's run_steps scan is unrolled up to this many steps

# ------------------------------------------------------------------------------ run_steps


def stacked_placeholder(ph: tp.Placeholder) -> tp.Placeholder:
    """The placeholder of a stack of batches: ``ph`` with a new leading (step) axis of any size."""
    axis = None if ph.batch_axis is None or ph.ndim == 0 else ph.batch_axis % ph.ndim + 1
    return tp.Placeholder((None, *ph.shape), ph.dtype, axis, ph.mirrored)


def steps_of(job_name: str, names, shapes) -> int:
    """The common leading size ``K >= 1`` of the stacked arguments' (per-device) shapes."""
    sizes = {name: shape[0] for name, shape in zip(names, shapes)}
    if len(set(sizes.values())) > 1:
        raise JobInputError(
            f"job {job_name!r} run_steps: every argument is a stack of batches along axis 0, "
            f"so all need the same number of steps there; got {sizes}"
        )
    if not sizes:
        raise JobInputError(
            f"job {job_name!r} run_steps: the job takes no arguments to stack; call it K times"
        )
    k = next(iter(sizes.values()))
    if k < 1:
        raise JobInputError(
            f"job {job_name!r} run_steps needs at least one step (a leading axis of size >= 1); got {sizes}"
        )
    return k


def stacked_layouts(layouts: list, k: int) -> list:
    """The layouts of ``k`` stacked batches: the step axis is not split.

    A consistent argument becomes ``(k, *shape)`` with the step axis replicated; a mirrored
    one stays split over its leading device axis, ``(devices, k, *shape)``.
    """
    out = []
    for lay in layouts:
        if lay.mirrored:
            shape = (lay.shape[0], k, *lay.shape[1:])
            sharding = lay.sharding
        else:
            shape = (k, *lay.shape)
            sharding = NamedSharding(lay.sharding.mesh, P(None, *lay.sharding.spec))
        out.append(_sharding.InputLayout(sharding, shape, lay.dtype, lay.mirrored))
    return out


def scan_steps(step, layouts: list, unroll: bool = False):
    """``run(mutable, readonly, stacks) -> (mutable, stacked outputs, stacked infos)``: ``step``
    scanned over the leading step axis of ``stacks`` (a mirrored stack's step axis is its
    second one). ``step(mutable, readonly, inputs) -> (mutable, outputs, info)`` must return
    the mutable state with the structure it took (the scan carries it). ``unroll`` writes
    the steps out instead of looping (see the module docstring)."""

    def run(mutable, readonly, stacks):
        stacks = [jnp.moveaxis(x, 1, 0) if lay.mirrored else x for x, lay in zip(stacks, layouts)]

        def body(state, inputs):
            new, out, info = step(state, readonly, list(inputs))
            return new, (out, info)

        new, (outs, infos) = jax.lax.scan(body, mutable, stacks, unroll=unroll or 1)
        mirrored = [lay for lay in layouts if lay.mirrored]
        if mirrored:  # (steps, devices, ...): keep the device axis split, as the host conversion reads it
            per_device = NamedSharding(mirrored[0].sharding.mesh, P(None, _sharding.AXIS))
            outs = jax.tree.map(lambda o: jax.lax.with_sharding_constraint(o, per_device), outs)
        return new, outs, infos

    return run


# ------------------------------------------------------------------- gradient accumulation


def split_axes(placeholders) -> list:
    """Per argument, the axis split into micro-batches (its ``batch_axis``), or None (passed
    whole to every micro-batch: no batch axis, or a scalar)."""
    return [
        None if ph.batch_axis is None or ph.ndim == 0 else ph.batch_axis % ph.ndim for _, ph in placeholders
    ]


def micro_shapes(placeholders, shapes, n: int) -> tuple:
    """The shapes the body sees: each split axis divided by ``n``."""
    out = []
    for axis, shape in zip(split_axes(placeholders), shapes):
        shape = tuple(shape)
        if axis is not None:
            shape = (*shape[:axis], shape[axis] // n, *shape[axis + 1 :])
        out.append(shape)
    return tuple(out)


def check_accumulation(job_name: str, placeholders, shapes, n: int, devices: int, mirrored: bool) -> None:
    """Raises unless every split axis divides into ``n`` micro-batches (that still divide
    across the devices in the consistent view)."""
    for (name, _), axis, shape in zip(placeholders, split_axes(placeholders), shapes):
        if axis is None:
            continue
        size = shape[axis]
        if size % n:
            raise JobInputError(
                f"job {job_name!r} argument {name!r}: gradient_accumulation_steps({n}) splits the "
                f"batch axis ({axis}) into {n} micro-batches, but its size {size} is not divisible by {n}"
            )
        if not mirrored and devices > 1 and (size // n) % devices:
            raise JobInputError(
                f"job {job_name!r} argument {name!r}: gradient_accumulation_steps({n}) makes "
                f"micro-batches of {size // n} along the batch axis ({axis}), which do not divide "
                f"across the job's {devices} devices"
            )


def micro_shardings(layouts, axes) -> list:
    """Per argument, the sharding of its stacked micro-batches ``(n, *micro_shape)``: the
    micro-batch axis replicated, the rest as the argument (consistent view on several
    devices), else None (no constraint)."""
    out: list[NamedSharding | None] = []
    for lay, axis in zip(layouts, axes):
        if axis is None or lay.mirrored or lay.sharding.mesh.size == 1:
            out.append(None)
        else:
            out.append(NamedSharding(lay.sharding.mesh, P(None, *lay.sharding.spec)))
    return out


@dataclasses.dataclass(frozen=True)
class _Accumulator:
    n: int
    axes: list
    shardings: list
    dtype: np.dtype | None

    def split(self, inputs):
        """Per argument, ``(n, *micro_shape)`` micro-batches, or None for unsplit arguments."""
        out = []
        for x, axis, sharding in zip(inputs, self.axes, self.shardings):
            if axis is None:
                out.append(None)
                continue
            shape = x.shape
            x = jnp.reshape(x, (*shape[:axis], self.n, shape[axis] // self.n, *shape[axis + 1 :]))
            x = jnp.moveaxis(x, axis, 0)
            out.append(x if sharding is None else jax.lax.with_sharding_constraint(x, sharding))
        return out

    def acc_dtype(self, g):
        want = np.dtype(np.float32) if self.dtype is None else self.dtype
        return jnp.promote_types(g.dtype, want) if jnp.issubdtype(g.dtype, jnp.floating) else g.dtype


def accumulate(forward, n: int, axes: list, shardings: list, accumulator_dtype=None):
    """Wraps a train ``forward(shared, key, inputs, *extra) -> (outputs, (updates, loss,
    grads, feeds))`` to run once per micro-batch inside a ``lax.scan``.

    * ``inputs`` are split along ``axes`` into ``n`` micro-batches; ``extra`` arguments are
      passed through to every micro-batch unchanged;
    * ``grads`` are summed in ``accumulator_dtype`` (float32 by default; wider gradient
      dtypes are kept) and divided by ``n``: the mean gradient over the micro-batches;
    * ``loss`` and the fed values are running means over the micro-batches
      (``m_i = m_{i-1} + (v_i - m_{i-1}) / i``: equal values stay exactly equal);
    * ``updates`` (non-trainable variables written by ops, e.g. batch-norm statistics)
      chain: micro-batch ``i`` reads the values micro-batch ``i-1`` wrote, and the last
      ones are returned;
    * the RNG key of micro-batch ``i`` is ``fold_in(key, i)``;
    * ``outputs`` come back stacked along a new leading axis of size ``n``.
    """
    acc = _Accumulator(
        n, list(axes), list(shardings), None if accumulator_dtype is None else np.dtype(accumulator_dtype)
    )

    def accumulated(shared, key, inputs, *extra):
        model, params = shared
        micro = acc.split(inputs)

        def run(i, parts, written):
            k = None if key is None else jax.random.fold_in(key, i)
            ins = [x if p is None else p for x, p in zip(inputs, parts)]
            return forward(({**model, **written}, params), k, ins, *extra)

        first = [None if p is None else p[0] for p in micro]
        _, (upd_s, loss_s, grads_s, feeds_s) = jax.eval_shape(lambda: run(0, first, {}))
        init = (
            jax.tree.map(lambda g: jnp.zeros(g.shape, acc.acc_dtype(g)), grads_s),
            jnp.zeros(loss_s.shape, loss_s.dtype),
            jax.tree.map(lambda f: jnp.zeros(f.shape, f.dtype), feeds_s),
            {name: model[name].astype(u.dtype) for name, u in upd_s.items()},
        )

        def body(carry, xs):
            i, parts = xs
            grad_sum, loss_mean, feeds_mean, written = carry
            out, (updates, loss, grads, feeds) = run(i, parts, written)
            count = (i + 1).astype(loss_mean.dtype)
            grad_sum = jax.tree.map(lambda s, g: s + g.astype(s.dtype), grad_sum, grads)
            loss_mean = loss_mean + (loss - loss_mean) / count
            feeds_mean = jax.tree.map(lambda m, v: m + (v - m) / count.astype(m.dtype), feeds_mean, feeds)
            return (grad_sum, loss_mean, feeds_mean, {**written, **updates}), out

        (grad_sum, loss, feeds, written), outs = jax.lax.scan(body, init, (jnp.arange(n), micro))
        grads = jax.tree.map(lambda s, g: (s / n).astype(g.dtype), grad_sum, grads_s)
        return outs, (written, loss, grads, feeds)

    return accumulated

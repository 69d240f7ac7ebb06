"""One step of a job as a pure function: ``step(mutable, readonly, inputs) -> (new, outputs, info)``.

Where it sits in a call: ``program.compile_program`` traces the function
:func:`build_step` returns once per input signature (and ``run_steps`` size) and compiles
it; a call only runs the compiled program. Everything the step reads comes in as an
argument (the state by store name, the inputs) and everything it changes goes out as a
result (the new state, the outputs, the info scalars), in the order of one train step:

1. *rng*: the job's key is split; one half is the next call's key, the other this call's;
2. *forward*: the body runs on the variables; for a train job inside
   ``jax.value_and_grad`` of ``scale * loss`` over the variables the optimizers update
   (:func:`make_forward`; a row-sparse table, ``plan.row_sparse_tables``, is differentiated
   at the rows its gathers read, ``optimizer/sparse_rows.py``); with gradient accumulation once per micro-batch
   (``steps.accumulate``), in the mirrored view once per device (``sharding.per_device``);
3. *guard check*: gradients unscaled, the global norm, ``finite`` where the step uses it
   (``StepGuard.check``);
4. *update*: ``optimizer.base.apply_plans`` with the optimizer of this trace, the step
   counter, the gradients and what the body fed (a ``CustomScheduler``'s lr, a metric);
5. *counter*: the step counter advances (``core.counters.increment``, saturating);
6. *guard commit*: on a non-finite step (loss, gradients or a learning rate) of a job
   that skips, the old values are kept (``StepGuard.commit``); the loss-scale state and skip counters advance;
   the rows of row-sparse tables and their slots are scattered into the arrays (``sparse_rows.write``);
7. *info*: ``lr``..., ``loss_scale``, ``global_grad_norm``, ``skipped``, ..., ``loss``,
   ``step`` (the counter the update used).

A predict job does 1 and 2 (no gradient) and writes only its RNG key.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jobflow._src.core import names as store_names
from jobflow._src.core import trace as _trace
from jobflow._src.core.counters import increment
from jobflow._src.core.errors import JobDefinitionError
from jobflow._src.graph import scope as _scope
from jobflow._src.optimizer import sparse_rows as _rows
from jobflow._src.optimizer.base import apply_plans
from jobflow._src.runtime import plan as _plan
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime import steps as _steps

__all__ = ["build_step", "make_forward", "run_body"]


class _TracedOptimizer:
    """The optimizer object of the body's trace inside the step (a Python object, so it
    cannot travel as a traced value): recorded by the loss function while
    ``jax.value_and_grad`` traces it, read by the update that follows in the same trace."""

    optimizer = None


def run_body(definition, variables: dict, key, inputs, amp_dtype, mesh=None, row_grads=None):
    """``(outputs, trace context)`` of the job function on ``inputs``, reading ``variables``
    (and drawing random numbers from ``key``), with empty scope stacks; ``mesh``: the job's
    mesh for layout hints (``parallel_cast``), None in the mirrored view; ``row_grads``: the
    differentiated rows of the row-sparse tables (``TraceContext.row_grads``)."""
    ctx = _trace.TraceContext(
        definition.name,
        definition.is_train,
        False,
        definition.config,
        variables=variables,
        rng=key,
        amp_dtype=amp_dtype,
        mesh=mesh,
        row_grads=row_grads or {},
    )
    with _trace.active(ctx), _scope.fresh_stacks():
        out = definition.fn(*inputs)
    return out, ctx


def _train_forward(definition, amp_dtype, traced: _TracedOptimizer, mesh=None, gathered=None) -> Callable:
    """``forward((model, params), key, inputs, scale) -> (outputs, (updates, loss, grads,
    feeds))``: the body inside ``jax.value_and_grad`` of ``scale * loss`` over ``params``.

    ``loss`` is the sum over the ``minimize`` losses of ``mean(loss)`` in float32;
    ``updates`` (values ops wrote) and ``feeds`` are not differentiated. The tables of
    ``gathered`` (``plan.row_sparse_tables``) are read from ``model`` and not
    differentiated: each of their gathers adds a zero array of the rows' shape that is,
    and their gradient is ``sparse_rows.coalesce(ids, row gradients)``, O(rows gathered).
    """
    gathered = gathered or {}

    def forward(shared, key, inputs, scale):
        model, params = shared
        dense = {n: v for n, v in params.items() if n not in gathered}
        zeros = {
            n: [jnp.zeros(r.shape, r.dtype) for r in _plan.row_shapes(model[n].shape, model[n].dtype, sites)]
            for n, sites in gathered.items()
        }

        def loss_fn(dense, zeros):
            out, ctx = run_body(definition, {**model, **dense}, key, inputs, amp_dtype, mesh, zeros)
            traced.optimizer = ctx.minimize_calls[0][0]  # the update runs this trace's optimizer
            losses = [l for _, ls in ctx.minimize_calls for l in ls]
            total = sum(jnp.mean(l.astype(jnp.float32)) for l in losses)
            updates = jax.lax.stop_gradient(dict(ctx.updates))
            ids = {n: [jnp.asarray(i) for i in ctx.gathered_ids.get(n, [])] for n in gathered}
            return total * scale, (out, updates, total, jax.lax.stop_gradient(dict(ctx.feeds)), ids)

        grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        (_, (out, updates, loss, feeds, ids)), (grads, row_grads) = grad_fn(dense, zeros)
        for n in gathered:
            if len(ids[n]) != len(gathered[n]):
                raise JobDefinitionError(
                    f"job {definition.name!r} gathers from {n!r} {len(ids[n])} times while running, "
                    f"{len(gathered[n])} times in its first trace; a job body must trace the same way each time"
                )
            flat_ids = jnp.concatenate([jnp.reshape(i, -1) for i in ids[n]])
            rows = jnp.concatenate(
                [r.reshape((-1,) + r.shape[ids[n][k].ndim :]) for k, r in enumerate(row_grads[n])]
            )
            grads[n] = _rows.coalesce(flat_ids, rows, model[n].shape[0])
        return out, (updates, loss, {n: grads[n] for n in sorted(params)}, feeds)  # as jax.grad orders them

    return forward


def _predict_forward(definition, amp_dtype, mesh=None) -> Callable:
    """``forward((model, _), key, inputs, _scale) -> (outputs, (updates, None, None, None))``."""

    def forward(shared, key, inputs, scale):
        out, ctx = run_body(definition, shared[0], key, inputs, amp_dtype, mesh)
        return out, (dict(ctx.updates), None, None, None)

    return forward


def make_forward(definition, plan, traced: _TracedOptimizer) -> Callable:
    """The forward (and backward) pass of one call: :func:`_train_forward` or
    :func:`_predict_forward`, run once per micro-batch with gradient accumulation and
    once per device in the mirrored view (gradients averaged in both cases)."""
    mesh = None if definition.mirrored else plan.mesh
    if definition.is_train:
        forward = _train_forward(definition, plan.amp_dtype, traced, mesh, plan.gathered)
    else:
        forward = _predict_forward(definition, plan.amp_dtype, mesh)
    micro = definition.accumulation_steps
    if micro > 1:
        axes = _steps.split_axes(definition.placeholders)
        forward = _steps.accumulate(
            forward,
            micro,
            axes,
            _steps.micro_shardings(plan.layouts, axes),
            definition.config.settings["gradient_accumulator_dtype"],
        )
    if definition.mirrored:
        forward = _sharding.per_device(forward, plan.mesh, plan.layouts)
    return forward


def _split_rng(rng_name: str | None, state: dict):
    """``(this call's key or None, {rng name: the next call's key data}``)."""
    if rng_name is None:
        return None, {}
    nxt, key = jax.random.split(jax.random.wrap_key_data(state[rng_name]))
    return key, {rng_name: jax.random.key_data(nxt)}


def _is_rate(key: str) -> bool:
    """True for the info keys of the plans' learning rates: ``lr``, ``lr_1``, ..."""
    return key == "lr" or (key.startswith("lr_") and key[3:].isdigit())


def build_step(definition, plan, on_trace: Callable[[], None] = lambda: None) -> Callable:
    """The pure step of ``plan`` (see the module docstring for its order).

    ``step(mutable, readonly, inputs) -> (new, outputs, info)``: ``new`` holds the values
    of names in ``mutable`` the step wrote; ``on_trace()`` runs each time it is traced.
    """
    traced = _TracedOptimizer()
    forward = make_forward(definition, plan, traced)
    rng = store_names.rng(definition.name) if plan.discovery.uses_rng else None
    counter_name = store_names.step_counter(definition.name)
    guard, plans = plan.guard, plan.optimizer_plans

    def predict_step(mutable, readonly, inputs):
        on_trace()
        state = {**readonly, **mutable}
        key, new = _split_rng(rng, state)
        model = {n: state[n] for n in plan.var_names}
        out, (updates, _, _, _) = forward((model, {}), key, inputs, jnp.float32(1.0))
        new.update({n: v for n, v in updates.items() if n in mutable})
        return new, out, {}

    def train_step(mutable, readonly, inputs):
        on_trace()
        state = {**readonly, **mutable}
        key, new = _split_rng(rng, state)
        model = {n: state[n] for n in plan.var_names}
        params = {n: state[n] for n in plan.grad_names}
        scale = guard.scale(state)
        out, (updates, loss, grads, feeds) = forward((model, params), key, inputs, scale)
        grads, finite, guard_info = guard.check(grads, loss, scale)  # unscaled
        counter = state[counter_name]
        updated, plan_info = apply_plans(plans, traced.optimizer, counter, params, grads, state, feeds)
        updated.update(updates)
        updated[counter_name] = increment(counter)
        rates = [v for k, v in plan_info.items() if _is_rate(k)]
        committed, commit_info = guard.commit(state, finite, updated, rates)  # skips non-finite steps
        new.update({n: _rows.write(state[n], v) for n, v in committed.items()})  # RowWrite: scatter
        info = {**plan_info, **guard_info, **commit_info, "loss": loss, "step": counter}
        return new, out, info

    return train_step if definition.is_train else predict_step

"""Per-job configuration: ``cfg = flow.function_config(); cfg.default_data_type(flow.float)``.

Setters are methods, as in OneFlow, and return the config so calls can be chained. The
values are read from ``cfg.settings`` (a dict). A config is read when a job is compiled;
changing it afterwards does not affect compiled jobs.
"""

from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from jax.typing import DTypeLike

from jobflow._src.core import dtypes as _dtypes
from jobflow._src.graph import scope as _scope

__all__ = ["FunctionConfig", "function_config"]

# OneFlow flags that tune its own runtime (fusion, cuDNN, memory reuse). XLA makes these
# decisions itself; jobflow accepts and records them so OneFlow programs run unchanged.
COMPAT_FLAGS = {
    "enable_fuse_model_update_ops": False,
    "enable_fuse_add_to_output": False,
    "enable_fuse_cast_scale": False,
    "enable_gradients_stats_aggregation": True,
    "prune_parallel_cast_ops": True,
    "enable_cudnn": True,
    "cudnn_conv_heuristic_search_algo": True,
    "enable_inplace": True,
    "cudnn_buf_limit_mbyte": 1024,
    "concurrency_width": 128,
    "use_xla_jit": False,
    "use_tensorrt": False,
    "allow_cpu_return_op": True,
    "enable_keep_header_only": False,
}


def _parse_indexed_slices(conf) -> tuple[str, ...] | None:
    """OneFlow's ``IndexedSlicesOptimizerConf`` as a dict, ``{"enable": bool = True,
    "include_op_names": {"op_name": [variable name, ...]}}``, or None: the variable names
    (None when off)."""
    where = "function_config.indexed_slices_optimizer_conf"
    if conf is None:
        return None
    if not isinstance(conf, dict) or set(conf) - {"enable", "include_op_names"}:
        raise ValueError(
            f"{where} expects dict(include_op_names=dict(op_name=[variable names]), enable=True) "
            f"or None; got {conf!r}"
        )
    enable = conf.get("enable", True)
    if not isinstance(enable, bool):
        raise TypeError(f"{where}: enable must be True or False; got {enable!r}")
    ops = conf.get("include_op_names")
    names = ops.get("op_name") if isinstance(ops, dict) and set(ops) <= {"op_name"} else None
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: include_op_names must be dict(op_name=[variable names]); got {ops!r}")
    return tuple(names) if enable else None


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"function_config.{name} expects True or False; got {value!r}")
    return bool(value)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"function_config.{name} expects an int >= {minimum}; got {value!r}")
    return int(value)


class _TrainConfig:
    """``cfg.train.*``: settings that only train jobs read."""

    def __init__(self, cfg):
        self._cfg = cfg

    def gradient_accumulation_steps(self, n: int, accumulator_dtype=None):
        """Splits each call's batch into ``n`` micro-batches and accumulates their gradients
        inside the compiled step before one optimizer update (default 1: off).

        Every argument with a ``batch_axis`` is split along it into ``n`` equal contiguous
        micro-batches (its size must divide by ``n``; in the consistent view on ``D``
        devices each micro-batch must also divide by ``D``); other arguments go whole to
        every micro-batch. The body runs once per micro-batch (a ``lax.scan``: memory of one
        micro-batch's activations plus one accumulator per trainable variable); the update
        uses the mean of the micro-batch gradients, which for a mean loss is the gradient
        of the whole batch. The step counter and the schedule advance once per call
        (optimizer steps). The body sees micro-batch shapes; each output comes back
        stacked along a new leading axis of size ``n`` (``out.reshape(-1, ...)`` restores
        the batch order); ``last_info["loss"]`` is the mean over the micro-batches.

        Args:
          n: micro-batches per call, an int >= 1.
          accumulator_dtype: dtype the gradients are summed in; None: float32, or the
            gradient's dtype when it is wider (float64).
        """
        settings = self._cfg.settings
        n = _check_int("train.gradient_accumulation_steps", n, 1)
        if accumulator_dtype is not None:
            where = "function_config.train.gradient_accumulation_steps(accumulator_dtype)"
            accumulator_dtype = _dtypes.as_dtype(accumulator_dtype, where)
            if not _dtypes.is_floating(accumulator_dtype):
                raise ValueError(f"{where} expects a floating dtype; got {accumulator_dtype.name}")
        settings["gradient_accumulation_steps"] = n
        settings["gradient_accumulator_dtype"] = accumulator_dtype
        return self._cfg

    def __getattr__(self, name):
        if name in ("primary_lr", "model_update_conf", "loss_scale_factor", "secondary_lr"):
            raise AttributeError(
                f"function_config.train.{name} is OneFlow's pre-0.3 optimizer configuration; "
                f"jobflow uses optimizers in the job body instead: "
                f"flow.optimizer.SGD(lr_scheduler, ...).minimize(loss)"
            )
        raise AttributeError(f"function_config.train has no setting {name!r}")


class FunctionConfig:
    """The configuration of one job (OneFlow's ``flow.function_config()``).

    Settings (defaults in brackets):

    * ``default_data_type(dtype)`` [float32]: dtype of variables created without one.
    * ``default_logical_view(view)`` [consistent]: ``flow.scope.consistent_view()`` or
      ``flow.scope.mirrored_view()``.
    * ``default_placement_scope(placement)`` [every local accelerator, else CPU device 0
      of each process].
    * ``shard_optimizer_state(bool)`` [False]: split optimizer slots across the job's
      devices (ZeRO-1/2 style) instead of replicating them.
    * ``shard_variables(bool)`` [False]: split trainable variables across the devices too
      (ZeRO-3 / FSDP style; XLA gathers them where the body uses them).
    * ``enable_auto_mixed_precision(bool)`` [False]; ``amp_dtype(dtype)`` [bfloat16 on
      CPU/TPU, float16 on GPU] (docs/mixed_precision.md).
    * ``skip_nonfinite_steps(bool)`` [False]: skip train steps whose loss or gradients
      are not finite, without loss scaling; ``max_consecutive_skipped_steps(n)`` [1000]:
      the job raises once ``n`` consecutive steps were skipped (any skipping: this
      switch or a loss-scale policy that skips).
    * ``check_input_values(bool)`` [False]: before each call, check that float
      arguments are finite and that arguments used as labels of sparse cross-entropy ops
      lie in ``[0, num_classes)`` (jobflow's own switch; OneFlow had none).
    * ``seed(int)`` (alias ``random_seed``) [the session seed]: seeds the job's random
      stream (dropout) and the variables this job creates first.
    * ``default_initializer_conf(initializer)`` [none]: initializer for variables created
      without one.
    * ``train.gradient_accumulation_steps(n, accumulator_dtype=None)`` [1]: micro-batches
      accumulated per optimizer step inside the compiled step (train jobs).
    * ``indexed_slices_optimizer_conf(dict(include_op_names=dict(op_name=[names])))``
      [off]: the named variables update row-sparsely (see the method).
    * ``summary(logdir, every_n_steps=1)`` [off]: TensorBoard curves of a train job's step
      scalars (``loss``, ``lr``, ``loss_scale``, ...) written with no op in the body.
    * OneFlow's runtime tuning flags (``enable_fuse_model_update_ops``, ``enable_cudnn``,
      ``concurrency_width``, ...) are accepted and recorded; XLA decides these itself.
    """

    def __init__(self) -> None:
        self.settings: dict = {
            "default_data_type": _dtypes.float32,
            "default_logical_view": _scope.consistent_view(),
            "default_placement_scope": None,
            "shard_optimizer_state": False,
            "shard_variables": False,
            "enable_auto_mixed_precision": False,
            "amp_dtype": None,
            "skip_nonfinite_steps": False,
            "max_consecutive_skipped_steps": 1000,
            "check_input_values": False,
            "seed": None,
            "default_initializer_conf": None,
            "gradient_accumulation_steps": 1,
            "gradient_accumulator_dtype": None,
            "indexed_slices_optimizer_conf": None,
            "summary": None,
            **COMPAT_FLAGS,
        }
        self.train = _TrainConfig(self)

    def indexed_slices_optimizer_conf(self, conf: Mapping[str, Any]) -> FunctionConfig:
        """Updates the named variables row-sparsely, as OneFlow's indexed-slices rewrite.

        ``cfg.indexed_slices_optimizer_conf(dict(include_op_names=dict(op_name=["emb"])))``:
        in train steps of this job, the rows (slices along axis 0) of ``emb`` whose
        gradient is all zero (for an embedding read with ``flow.gather``, the rows the
        step did not look up) stay untouched: weight and every slot of the variable's
        shape (momentum, Adam's ``m`` and ``v``) keep their values, and decoupled weight
        decay (SGDW, AdamW) does not reach them. The other rows follow the optimizer's
        rule. Works with every optimizer. The names must be trainable variables of the
        job without a regularizer (else compiling the job raises); ``enable=False`` or
        None turns it off. Differs from OneFlow where a looked-up row's gradient sums to
        exactly zero: OneFlow updates that row (its moments decay), jobflow leaves it.
        A named variable that the body reads only through ``flow.gather`` along axis 0,
        under an elementwise rule (SGD, SGDW, Adam, AdamW, Momentum, RMSProp, Adagrad,
        FTRL), updates at the gathered rows
        only, O(rows looked up) per step (``docs/optimizers.md``, row-sparse tables).
        """
        self.settings["indexed_slices_optimizer_conf"] = _parse_indexed_slices(conf)
        return self

    def default_data_type(self, dtype: DTypeLike) -> FunctionConfig:
        dtype = _dtypes.as_dtype(dtype, "function_config.default_data_type")
        if not _dtypes.is_floating(dtype):
            raise ValueError(
                f"function_config.default_data_type expects a floating dtype "
                f"(float16, bfloat16, float32, float64); got {dtype.name}"
            )
        self.settings["default_data_type"] = dtype
        return self

    def default_logical_view(self, view: _scope.LogicalView) -> FunctionConfig:
        if not isinstance(view, _scope.LogicalView):
            raise TypeError(
                "function_config.default_logical_view expects flow.scope.consistent_view() "
                f"or flow.scope.mirrored_view(); got {view!r}"
            )
        self.settings["default_logical_view"] = view
        return self

    def default_placement_scope(self, placement: _scope.Placement) -> FunctionConfig:
        if not isinstance(placement, _scope.Placement):
            raise TypeError(
                "function_config.default_placement_scope expects flow.scope.placement(...); "
                f"got {placement!r}"
            )
        self.settings["default_placement_scope"] = placement
        return self

    def shard_optimizer_state(self, enabled: bool = True) -> FunctionConfig:
        """Splits optimizer slots (momentum, Adam's m and v) across the job's devices.

        Each slot is split along its first dimension divisible by the device count (slots
        without one stay replicated); every device keeps and updates only its piece, and XLA
        all-gathers the updated variables. Per-device slot memory drops by the device count;
        results equal the replicated run up to float rounding. Works with any optimizer.
        """
        self.settings["shard_optimizer_state"] = _check_bool("shard_optimizer_state", enabled)
        return self

    def shard_variables(self, enabled: bool = True) -> FunctionConfig:
        """Splits the trainable variables across the job's devices as well (ZeRO-3 / FSDP).

        Same rule as :meth:`shard_optimizer_state`; XLA all-gathers a variable where the
        body uses it, and each device updates only its piece. Results equal the replicated
        run up to float rounding.
        """
        self.settings["shard_variables"] = _check_bool("shard_variables", enabled)
        return self

    def enable_auto_mixed_precision(self, enabled: bool = True) -> FunctionConfig:
        self.settings["enable_auto_mixed_precision"] = _check_bool("enable_auto_mixed_precision", enabled)
        return self

    def amp_dtype(self, dtype: DTypeLike) -> FunctionConfig:
        dtype = _dtypes.as_dtype(dtype, "function_config.amp_dtype")
        if dtype not in (_dtypes.float16, _dtypes.bfloat16):
            raise ValueError(
                f"function_config.amp_dtype expects flow.float16 or flow.bfloat16; got {dtype.name}"
            )
        self.settings["amp_dtype"] = dtype
        return self

    def skip_nonfinite_steps(self, enabled: bool = True) -> FunctionConfig:
        """Skips every train step whose loss or gradients contain inf or nan.

        On such a step no variable, optimizer slot, schedule state, batch-norm statistic
        or step counter changes (the RNG key still advances). ``job.last_info["skipped"]``
        reports it; ``max_consecutive_skipped_steps`` bounds how many may follow in a row.
        Loss-scale policies that skip (``dynamic_loss_scale``, ``DynamicLossScaleManager``,
        ``FixedLossScaleManager``) do this on their own.
        """
        self.settings["skip_nonfinite_steps"] = _check_bool("skip_nonfinite_steps", enabled)
        return self

    def max_consecutive_skipped_steps(self, n: int | None) -> FunctionConfig:
        """After ``n`` consecutive skipped steps the next call raises
        ``NonFiniteStepsError`` before running (None: never). Default 1000 (MindSpore's
        limit for its dynamic loss scale)."""
        self.settings["max_consecutive_skipped_steps"] = (
            None if n is None else _check_int("max_consecutive_skipped_steps", n, 1)
        )
        return self

    def check_input_values(self, enabled: bool = True) -> FunctionConfig:
        """Checks the values of every call's arguments before the step runs (default off).

        * every floating-point argument must be finite (no ``nan``, ``inf``);
        * an argument passed straight to ``flow.nn.sparse_softmax_cross_entropy_with_logits``
          as ``labels`` must lie in ``[0, num_classes)`` (without the check, ``-1`` trains
          as the last class and ``num_classes`` gives a ``nan`` loss). Labels the body
          computes from an argument (a reshape, a cast) are not checked.

        A failing check raises ``JobInputError`` naming the argument, the first bad index
        (in row-major order) and its value, before anything runs: the store is
        unchanged. The checks run on the host with numpy (JAX-array arguments are copied
        to the host first). Cost: one pass over each checked argument, measured at 23 to
        32 us per call for a (100, 1, 28, 28) float32 batch with (100,) int32 labels (a
        loaded, shared CPU core); off, one attribute test (docs/reliability.md).
        """
        self.settings["check_input_values"] = _check_bool("check_input_values", enabled)
        return self

    def summary(self, logdir: str | os.PathLike | None, every_n_steps: int = 1) -> FunctionConfig:
        """Writes a train job's step scalars to TensorBoard event files in ``logdir``.

        Every ``every_n_steps``-th call's ``job.last_info`` scalars (``loss``, ``lr``,
        ``loss_scale``, ``skipped``, ``global_grad_norm``, ...) become the curves
        ``<job name>/<key>``, at the call's index among the job's train calls (kept across
        checkpoints). The values come from the step's own info output, written once the
        step has finished: no op in the body, no device sync per call; pending values are
        written by ``flow.sync_default_session()``, ``flow.summary.flush_summary_writer()``
        and at exit. Only process 0 writes. Not a OneFlow setting (docs/summaries.md).

        Args:
          logdir: directory of the event files (created when missing); None turns it off.
          every_n_steps: write calls whose index divides by it, an int >= 1.
        """
        if logdir is None:
            self.settings["summary"] = None
            return self
        if not isinstance(logdir, (str, os.PathLike)) or not os.fspath(logdir):
            raise TypeError(f"function_config.summary(logdir) must be a directory path; got {logdir!r}")
        every = _check_int("summary(every_n_steps)", every_n_steps, 1)
        self.settings["summary"] = (os.fspath(logdir), every)
        return self

    def seed(self, seed: int) -> FunctionConfig:
        self.settings["seed"] = _check_int("seed", seed, 0)
        return self

    random_seed = seed

    def default_initializer_conf(self, initializer: Callable[..., Any]) -> FunctionConfig:
        if not callable(initializer):
            raise TypeError(
                "function_config.default_initializer_conf expects an initializer such as "
                f"flow.random_normal_initializer(); got {initializer!r}"
            )
        self.settings["default_initializer_conf"] = initializer
        return self

    def __getattr__(self, name):
        if name in COMPAT_FLAGS:

            def setter(value=True):
                self.settings[name] = value
                return self

            setter.__name__ = name
            setter.__doc__ = f"OneFlow runtime flag {name!r}: recorded, no effect under XLA."
            return setter
        known = [n for n in dir(type(self)) if not n.startswith("_")] + list(COMPAT_FLAGS)
        hint = difflib.get_close_matches(name, known, n=1)
        raise AttributeError(
            f"function_config has no setting {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
        )

    def __repr__(self):
        changed = {k: v for k, v in self.settings.items() if k not in COMPAT_FLAGS}
        return f"FunctionConfig({changed})"


def function_config() -> FunctionConfig:
    """A new :class:`FunctionConfig` with default settings."""
    return FunctionConfig()

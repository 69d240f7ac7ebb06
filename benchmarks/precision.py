"""Precision and device of the model sections (``--amp``, ``--device`` of ``python -m benchmarks``).

``--amp off|bf16|f16`` (``train_step``, ``cnn``, ``transformer``):

* jobflow: ``function_config().enable_auto_mixed_precision(True).amp_dtype(low)``
  (docs/mixed_precision.md: white-list ops in ``low``, float32 master weights); with f16
  also ``loss_scale.dynamic_loss_scale(initial_loss_scale=2**16)`` on the optimizer:
  OneFlow's rule with ``torch.amp.GradScaler``'s defaults (start 65536, halve on overflow
  and skip the step, double after 2000 clean steps).
* hand-written JAX + optax: the parameters and inputs of every matmul and convolution are
  cast to ``low`` inside the loss (float32 master weights and update, as jobflow); no loss
  scaling, also with f16 (the notes say so: that contender does less work than jobflow).
* PyTorch eager and ``torch.compile``: ``torch.autocast(device_type, dtype=low)`` around
  the forward pass and the loss; with f16 a ``torch.amp.GradScaler``.

``--device auto|cpu|gpu``: jobflow and JAX run on JAX's default backend (a job's default
placement is every local accelerator, else CPU 0); PyTorch moves its models and batches
to ``cuda`` on GPU and synchronizes before times are read.
"""

import contextlib

AMP_MODES = ("off", "bf16", "f16")
DEVICES = ("auto", "cpu", "gpu")
F16_INITIAL_SCALE = 2.0**16  # torch.amp.GradScaler's default init_scale


def label(amp: str, device: str) -> str:
    """``"bf16 AMP, gpu"`` or ``"float32, cpu"``: what a table's title says it measured."""
    return f"{'float32' if amp == 'off' else amp + ' AMP'}, {device}"


def choose_device(choice: str, jax_backend: str | None, torch_cuda: bool | None) -> str:
    """``"gpu"`` or ``"cpu"`` for ``--device choice``, given JAX's default backend (None:
    not asked, because the choice is decided without it) and whether PyTorch sees CUDA (None:
    PyTorch is not installed).

    ``auto`` is ``gpu`` when JAX's backend is ``gpu`` and PyTorch has CUDA, else ``cpu``.
    ``gpu`` raises ValueError naming the argument when either is missing.
    """
    if choice not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}; got {choice!r}")
    if choice == "cpu":
        return "cpu"
    if choice == "gpu":
        if jax_backend != "gpu":
            raise ValueError(f"--device gpu: JAX's default backend is {jax_backend!r}, not 'gpu'")
        if torch_cuda is False:
            raise ValueError("--device gpu: PyTorch is installed but torch.cuda.is_available() is False")
        return "gpu"
    return "gpu" if jax_backend == "gpu" and torch_cuda else "cpu"


def torch_cuda() -> bool | None:
    """Whether PyTorch sees a CUDA device (None: PyTorch is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    return bool(torch.cuda.is_available())


def select_device(choice: str) -> str:
    """Resolves ``--device`` and pins JAX to the CPU when the answer is ``cpu`` (before JAX
    starts its backends: ``jax.config.update("jax_platforms", "cpu")``). Raises ValueError
    when JAX started on another backend first."""
    import jax

    cuda = torch_cuda()
    if choice == "cpu" or (choice == "auto" and not cuda):
        jax.config.update("jax_platforms", "cpu")
        if jax.default_backend() != "cpu":
            raise ValueError(f"--device {choice}: JAX already runs on {jax.default_backend()!r}")
        return "cpu"
    return choose_device(choice, jax.default_backend(), cuda)


def device_info(device: str) -> dict:
    """The devices the run used, for the results' machine info."""
    import jax

    info = {
        "device": device,
        "jax_backend": jax.default_backend(),
        "jax_device_kind": jax.devices()[0].device_kind,
    }
    if device == "gpu":
        import torch

        info["torch_device"] = torch.cuda.get_device_name()
    return info


# ---------------------------------------------------------------------------- jobflow


def job_config(amp: str, config=None):
    """``config`` (default a new ``flow.function_config()``) with AMP per ``amp``."""
    import jobflow as flow

    config = config if config is not None else flow.function_config()
    if amp != "off":
        config.enable_auto_mixed_precision(True)
        config.amp_dtype(flow.bfloat16 if amp == "bf16" else flow.float16)
    return config


def loss_scale_policy(amp: str):
    """The optimizer's ``loss_scale_policy``: dynamic from 2**16 with f16, else None."""
    import jobflow as flow

    if amp != "f16":
        return None
    return flow.optimizer.loss_scale.dynamic_loss_scale(initial_loss_scale=F16_INITIAL_SCALE)


# ------------------------------------------------------------------------ JAX by hand


def jax_dtype(amp: str):
    """The low dtype of the hand-written JAX steps (None: float32 throughout)."""
    import jax.numpy as jnp

    return {"off": None, "bf16": jnp.bfloat16, "f16": jnp.float16}[amp]


def low(dtype, *arrays):
    """``arrays`` cast to ``dtype`` (unchanged when it is None): a matmul's or convolution's
    operands under AMP."""
    return arrays if dtype is None else tuple(a.astype(dtype) for a in arrays)


# ---------------------------------------------------------------------------- PyTorch


def torch_device(device: str) -> str:
    return "cuda" if device == "gpu" else "cpu"


class TorchAmp:
    """PyTorch's side of ``--amp``: ``autocast()`` for the forward pass and the loss, and
    ``update(loss, opt, params, clip)`` for the backward pass and the optimizer step (through
    a ``GradScaler`` with f16; clipping sees unscaled gradients). ``sync()`` waits for CUDA."""

    def __init__(self, amp: str, device: str):
        import torch

        self.torch = torch
        self.device = torch_device(device)
        self.dtype = {"off": None, "bf16": torch.bfloat16, "f16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler(self.device) if amp == "f16" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device, dtype=self.dtype)

    def tensor(self, array):
        """A numpy batch as a tensor on the device."""
        return self.torch.from_numpy(array).to(self.device, non_blocking=True)

    def update(self, loss, opt, params=None, clip=None) -> None:
        scaler = self.scaler
        (scaler.scale(loss) if scaler else loss).backward()
        if clip:
            if scaler:
                scaler.unscale_(opt)
            self.torch.nn.utils.clip_grad_norm_(params, clip)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def note(amp: str, device: str) -> str:
    """The table note saying how ``--amp`` and ``--device`` were applied."""
    where = "GPU (PyTorch on cuda)" if device == "gpu" else "CPU"
    if amp == "off":
        return f"Precision: float32 throughout (--amp off). Device: {where}."
    low_name = "bfloat16" if amp == "bf16" else "float16"
    scaling = (
        " f16: jobflow and PyTorch scale the loss dynamically (start 2**16, GradScaler's rule); the "
        "hand-written JAX steps do not scale it (less work than jobflow)."
        if amp == "f16"
        else ""
    )
    return (
        f"Precision: {low_name} AMP (--amp {amp}): jobflow's AMP lists, torch.autocast for PyTorch, "
        f"the hand-written JAX steps cast the operands of every matmul and convolution; float32 master "
        f"weights everywhere.{scaling} Device: {where}."
    )

"""A small transformer encoder trained with AdamW and a linear warmup (the section
``transformer`` of ``python -m benchmarks``): jobflow vs hand-written JAX + optax vs
PyTorch eager vs ``torch.compile``, in one run, interleaved.

The model: token and position embeddings, ``layers`` pre-LayerNorm encoder blocks
(multi-head self-attention, then a GELU MLP of width ``d_ff``), mean pooling and a linear
classifier; softmax cross-entropy on random tokens and labels (the data does not matter
for speed). The same ``flax.linen`` module runs in jobflow (``flow.layers.flax_module``)
and in the hand-written JAX step; PyTorch runs ``torch.nn.TransformerEncoderLayer``
(``norm_first=True``, tanh-approximated GELU as flax's ``nn.gelu``, no dropout).

The optimizer, the same in all four: AdamW in PyTorch's form (``flow.optimizer.pytorch.AdamW``:
``optax.adamw``'s and ``torch.optim.AdamW``'s math; weight decay 0.01 on every parameter)
with transformers' linear schedule (``get_linear_schedule_with_warmup``: a linear warmup
from 0 over ``warmup`` steps, then a linear decay to 0 at ``total`` steps); in optax two
joined ``linear_schedule``s, in PyTorch ``LambdaLR`` with the same function. The first
update uses ``lr(0) = 0`` everywhere.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jobflow as flow
import jobflow.typing as tp
from benchmarks import _harness as h
from benchmarks import models, precision
from jobflow._src.ops.flax_interop import _path_name

CONFIGS = {
    "full": dict(vocab=1000, length=64, d_model=128, heads=4, d_ff=512, layers=4, classes=10, batch=32),
    "quick": dict(vocab=100, length=16, d_model=32, heads=2, d_ff=64, layers=1, classes=10, batch=8),
}
TIMING = {"full": dict(steps=4, rounds=7), "quick": dict(steps=2, rounds=2)}
LR, WARMUP, TOTAL, WEIGHT_DECAY = 1e-3, 100, 10_000, 0.01
HAND = "JAX + optax (jax.jit, donated)"
NAME = "encoder"


class Block(nn.Module):
    """Pre-LN block: ``x + MHA(LN(x))``, then ``x + W2 gelu(W1 LN(x))``. ``dtype`` is flax's
    computation dtype (float32; under AMP jobflow's ``flax_module`` sets the low one)."""

    heads: int
    d_ff: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        dt = self.dtype
        h = nn.LayerNorm(dtype=dt)(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, dtype=dt)(h, h)
        h = nn.LayerNorm(dtype=dt)(x)
        return x + nn.Dense(x.shape[-1], dtype=dt)(nn.gelu(nn.Dense(self.d_ff, dtype=dt)(h)))


class Encoder(nn.Module):
    vocab: int
    length: int
    d_model: int
    heads: int
    d_ff: int
    layers: int
    classes: int
    dtype: Any = jnp.float32  # passed to every layer

    @nn.compact
    def __call__(self, tokens):
        dt = self.dtype
        x = nn.Embed(self.vocab, self.d_model, dtype=dt)(tokens)
        position = self.param("position", nn.initializers.normal(0.02), (self.length, self.d_model))
        x = x + position[None].astype(x.dtype)
        for _ in range(self.layers):
            x = Block(self.heads, self.d_ff, dtype=dt)(x)
        return nn.Dense(self.classes, dtype=dt)(jnp.mean(nn.LayerNorm(dtype=dt)(x), axis=1))


def _module(cfg) -> Encoder:
    return Encoder(**{k: v for k, v in cfg.items() if k != "batch"})


def batches(cfg, n: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [
        (
            rng.integers(0, cfg["vocab"], (cfg["batch"], cfg["length"])).astype(np.int32),
            rng.integers(0, cfg["classes"], cfg["batch"]).astype(np.int32),
        )
        for _ in range(n)
    ]


def warmup_factor(t):
    """transformers' linear schedule with warmup, as a factor of the base rate."""
    return max(0.0, (TOTAL - t) / max(1, TOTAL - WARMUP)) if t >= WARMUP else t / WARMUP


# ------------------------------------------------------------------------------ jobflow


def transformer_job(cfg, name="transformer", amp="off"):
    """The encoder as a jobflow job; under ``amp`` the module is applied in the low dtype
    (``flax_module`` clones it with ``dtype=low``: float32 params, low dots)."""
    module = _module(cfg)
    b, n = cfg["batch"], cfg["length"]
    policy = precision.loss_scale_policy(amp)

    def body(
        tokens: tp.Numpy.Placeholder((b, n), dtype=flow.int32),
        labels: tp.Numpy.Placeholder((b,), dtype=flow.int32),
    ) -> tp.Numpy:
        logits = flow.layers.flax_module(module, tokens, name=NAME)
        loss = flow.math.reduce_mean(flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        sched = flow.schedule.transformers.get_linear_schedule_with_warmup(LR, WARMUP, TOTAL)
        flow.optimizer.pytorch.AdamW(sched, weight_decay=WEIGHT_DECAY, loss_scale_policy=policy).minimize(
            loss
        )
        return loss

    body.__name__ = body.__qualname__ = name
    return flow.global_function(type="train", function_config=precision.job_config(amp))(body)


# ---------------------------------------------------------------------------- hand-written


def flax_params(cfg, variables: dict):
    """The module's params tree filled with a jobflow job's variables (``encoder-<path>``)."""
    module = _module(cfg)
    shapes = jax.eval_shape(
        module.init, jax.random.key(0), jnp.zeros((cfg["batch"], cfg["length"]), jnp.int32)
    )
    return jax.tree_util.tree_map_with_path(
        lambda p, _: jnp.asarray(np.asarray(variables[f"{NAME}-{_path_name(p)}"])), shapes["params"]
    )


class HandTransformer(models.HandOptax):
    """The same flax module in a hand-written ``jax.jit`` step with ``optax.adamw``; under
    ``amp`` applied as ``module.clone(dtype=low)`` (what jobflow's ``flax_module`` does), the
    loss in float32."""

    def __init__(self, cfg, params, amp="off"):
        module = _module(cfg)
        if amp != "off":
            module = module.clone(dtype=precision.jax_dtype(amp))
        sched = optax.join_schedules(
            [optax.linear_schedule(0.0, LR, WARMUP), optax.linear_schedule(LR, 0.0, TOTAL - WARMUP)], [WARMUP]
        )

        def loss_fn(p, x, y):
            logits = module.apply({"params": p}, x).astype(jnp.float32)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        super().__init__(params, optax.adamw(sched, weight_decay=WEIGHT_DECAY), loss_fn)


# -------------------------------------------------------------------------------- PyTorch


def torch_model(cfg):
    import torch

    class TorchEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg["d_model"]
            self.embed = torch.nn.Embedding(cfg["vocab"], d)
            self.position = torch.nn.Parameter(0.02 * torch.randn(cfg["length"], d))
            self.blocks = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(
                    d,
                    cfg["heads"],
                    cfg["d_ff"],
                    dropout=0.0,
                    activation=functools.partial(torch.nn.functional.gelu, approximate="tanh"),
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(cfg["layers"])
            )
            self.norm = torch.nn.LayerNorm(d)
            self.head = torch.nn.Linear(d, cfg["classes"])

        def forward(self, tokens):
            x = self.embed(tokens) + self.position[None]
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x).mean(dim=1))

    torch.manual_seed(0)
    return TorchEncoder()


class TorchTransformer:
    """PyTorch eager (or ``compiled=True``: the model under ``torch.compile``), AdamW with
    ``LambdaLR``, ``loss.item()`` each step; ``amp`` and ``device`` as ``precision.TorchAmp``."""

    def __init__(self, cfg, compiled=False, amp="off", device="cpu"):
        import torch

        self.torch = torch
        self.amp = precision.TorchAmp(amp, device)
        model = torch_model(cfg).to(self.amp.device)
        self.opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, warmup_factor)
        self.model = torch.compile(model) if compiled else model
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self, x, y):
        amp = self.amp
        self.opt.zero_grad(set_to_none=True)
        with amp.autocast():
            loss = self.loss_fn(self.model(amp.tensor(x).long()), amp.tensor(y).long())
        amp.update(loss, self.opt)
        self.sched.step()
        return loss.item()

    def sync(self):
        self.amp.sync()


# -------------------------------------------------------------------------------- section


def contenders(cfg, data, quick: bool, with_torch: bool, notes: list, amp="off", device="cpu"):
    """``(loops, first)``: the contenders under ``amp`` / ``device``, and the first 3 losses of
    jobflow and the hand-written step (both from the same initial variables)."""
    flow.clear_default_session()
    flow.config.seed(0)
    job = transformer_job(cfg, amp=amp)
    job.compile()
    params = flax_params(cfg, {n: v.numpy() for n, v in flow.get_all_variables().items()})
    loops = {"jobflow": models.JobLoop(job), HAND: HandTransformer(cfg, params, amp=amp)}
    first = {
        k: [float(np.asarray(loop.step(*data[i])).mean()) for i in range(3)] for k, loop in loops.items()
    }
    if not with_torch:
        return loops, first
    eager = f"PyTorch eager ({device.upper()})"
    try:
        loops[eager] = TorchTransformer(cfg, amp=amp, device=device)
    except ImportError:
        notes.append("PyTorch is not installed: its rows are missing.")
        return loops, first
    if quick:
        notes.append("torch.compile: skipped in the quick run (its compilation takes minutes on 2 cores).")
        return loops, first
    try:
        compiled = TorchTransformer(cfg, compiled=True, amp=amp, device=device)
        for i in range(2):  # compiles (forward and backward)
            compiled.step(*data[i])
        loops[f"PyTorch torch.compile ({device.upper()})"] = compiled
    except Exception as e:  # inductor needs a C++ compiler; report why and go on
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
        print(f"torch.compile skipped: {reason}")
        notes.append(f"torch.compile skipped: {reason}")
    return loops, first


def run(
    cfg, steps: int, rounds: int, quick: bool = False, with_torch: bool = True, amp="off", device="cpu"
) -> dict:
    """The section's table for the model ``cfg`` (``quick``: no torch.compile; ``with_torch``:
    the PyTorch rows) in ``amp``'s precision on ``device``. ``first_losses``: the first 3
    losses of jobflow and the hand-written step."""
    notes: list = []
    data = batches(cfg)
    loops, first = contenders(cfg, data, quick, with_torch, notes, amp, device)
    check = max(abs(a - b) for a, b in zip(first["jobflow"], first[HAND]))
    times = h.interleaved(loops, steps, rounds, data, warmup=2)
    rows = [
        {
            "implementation": name,
            "ms/step": h.median(values) * 1e3,
            "vs hand-written": h.ratio(times, name, HAND),
            "spread": h.spread(values),
            "first losses": check if name == "jobflow" else None,
        }
        for name, values in times.items()
    ]
    flow.clear_default_session()
    notes[:0] = [
        f"{cfg['layers']} pre-LN encoder layers, d_model {cfg['d_model']}, {cfg['heads']} heads, d_ff {cfg['d_ff']}, "
        f"sequence {cfg['length']}, batch {cfg['batch']}, vocabulary {cfg['vocab']}; AdamW (PyTorch's form, "
        f"weight decay {WEIGHT_DECAY}) with a linear warmup over {WARMUP} steps; {rounds} interleaved rounds of "
        f"{steps} steps, the loss read each step.",
        "first losses: max |jobflow's loss - the hand-written step's| over the first 3 steps from the same "
        "initial variables (same flax module, same optimizer). PyTorch starts from its own initialization.",
        precision.note(amp, device),
    ]
    return {
        "title": f"Transformer encoder train step (AdamW + warmup; {precision.label(amp, device)})",
        "columns": ["implementation", "ms/step", "vs hand-written", "spread", "first losses"],
        "rows": rows,
        "notes": notes,
        "first_losses": first,
    }


def section(scale) -> dict:
    """``python -m benchmarks --only transformer``."""
    mode = "quick" if scale.get("quick") else "full"
    amp, device = scale.get("amp", "off"), scale.get("device", "cpu")
    return run(CONFIGS[mode], quick=mode == "quick", amp=amp, device=device, **TIMING[mode])

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

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jobflow as flow
import jobflow.typing as tp
from benchmarks import _harness as h
from benchmarks import models
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
    """Pre-LN block: ``x + MHA(LN(x))``, then ``x + W2 gelu(W1 LN(x))``."""

    heads: int
    d_ff: int

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h, h)
        h = nn.LayerNorm()(x)
        return x + nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(self.d_ff)(h)))


class Encoder(nn.Module):
    vocab: int
    length: int
    d_model: int
    heads: int
    d_ff: int
    layers: int
    classes: int

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab, self.d_model)(tokens)
        x = x + self.param("position", nn.initializers.normal(0.02), (self.length, self.d_model))[None]
        for _ in range(self.layers):
            x = Block(self.heads, self.d_ff)(x)
        return nn.Dense(self.classes)(jnp.mean(nn.LayerNorm()(x), axis=1))


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


def transformer_job(cfg, name="transformer"):
    module = _module(cfg)
    b, n = cfg["batch"], cfg["length"]

    def body(
        tokens: tp.Numpy.Placeholder((b, n), dtype=flow.int32),
        labels: tp.Numpy.Placeholder((b,), dtype=flow.int32),
    ) -> tp.Numpy:
        logits = flow.layers.flax_module(module, tokens, name=NAME)
        loss = flow.math.reduce_mean(flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        sched = flow.schedule.transformers.get_linear_schedule_with_warmup(LR, WARMUP, TOTAL)
        flow.optimizer.pytorch.AdamW(sched, weight_decay=WEIGHT_DECAY).minimize(loss)
        return loss

    body.__name__ = body.__qualname__ = name
    return flow.global_function(type="train")(body)


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
    """The same flax module in a hand-written ``jax.jit`` step with ``optax.adamw``."""

    def __init__(self, cfg, params):
        module = _module(cfg)
        sched = optax.join_schedules(
            [optax.linear_schedule(0.0, LR, WARMUP), optax.linear_schedule(LR, 0.0, TOTAL - WARMUP)], [WARMUP]
        )

        def loss_fn(p, x, y):
            logits = module.apply({"params": p}, x)
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
    ``LambdaLR``, ``loss.item()`` each step."""

    def __init__(self, cfg, compiled=False):
        import torch

        self.torch = torch
        model = torch_model(cfg)
        self.opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, warmup_factor)
        self.model = torch.compile(model) if compiled else model
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self, x, y):
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(torch.from_numpy(x).long()), torch.from_numpy(y).long())
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item()

    def sync(self):
        pass


# -------------------------------------------------------------------------------- section


def _contenders(cfg, data, quick: bool, with_torch: bool, notes: list) -> tuple[dict, float]:
    """The loops, and max |loss difference| of jobflow and the hand-written step over their
    first 3 steps from the same initial variables."""
    flow.clear_default_session()
    flow.config.seed(0)
    job = transformer_job(cfg)
    job.compile()
    params = flax_params(cfg, {n: v.numpy() for n, v in flow.get_all_variables().items()})
    loops = {"jobflow": models.JobLoop(job), HAND: HandTransformer(cfg, params)}
    first = {
        k: [float(np.asarray(loop.step(*data[i])).mean()) for i in range(3)] for k, loop in loops.items()
    }
    check = max(abs(a - b) for a, b in zip(first["jobflow"], first[HAND]))
    if not with_torch:
        return loops, check
    try:
        loops["PyTorch eager (CPU)"] = TorchTransformer(cfg)
    except ImportError:
        notes.append("PyTorch is not installed: its rows are missing.")
        return loops, check
    if quick:
        notes.append("torch.compile: skipped in the quick run (its compilation takes minutes on 2 cores).")
        return loops, check
    try:
        compiled = TorchTransformer(cfg, compiled=True)
        for i in range(2):  # compiles (forward and backward)
            compiled.step(*data[i])
        loops["PyTorch torch.compile (CPU)"] = compiled
    except Exception as e:  # inductor needs a C++ compiler; report why and go on
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
        print(f"torch.compile skipped: {reason}")
        notes.append(f"torch.compile skipped: {reason}")
    return loops, check


def run(cfg, steps: int, rounds: int, quick: bool = False, with_torch: bool = True) -> dict:
    """The section's table for the model ``cfg`` (``quick``: no torch.compile; ``with_torch``:
    the PyTorch rows)."""
    notes: list = []
    data = batches(cfg)
    loops, check = _contenders(cfg, data, quick, with_torch, notes)
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
    ]
    return {
        "title": "Transformer encoder train step (AdamW + warmup)",
        "columns": ["implementation", "ms/step", "vs hand-written", "spread", "first losses"],
        "rows": rows,
        "notes": notes,
    }


def section(scale) -> dict:
    """``python -m benchmarks --only transformer``."""
    mode = "quick" if scale.get("quick") else "full"
    return run(CONFIGS[mode], quick=mode == "quick", **TIMING[mode])

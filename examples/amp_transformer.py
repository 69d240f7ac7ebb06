"""A small Transformer encoder trained with mixed precision and a dynamic loss scale.

The task is generated here: each sequence holds 16 tokens from a vocabulary of 8, and
the label is the token that occurs most often (ties go to the smaller token). The model
is a pre-LayerNorm Transformer encoder written with flax.linen and called inside a
jobflow train job with ``flow.layers.flax_module``.

The recipe is BERT's in OneFlow's benchmark: AdamW with weight decay off for biases and
LayerNorm, ``PolynomialScheduler`` decay to 0 after a linear warmup, global-norm
clipping at 1.0, automatic mixed precision and OneFlow's dynamic loss scale. The scale
starts at OneFlow's 2**30, which overflows float16; the first steps are skipped while it
backs off, and skipped steps leave the weights, the optimizer state and the schedule
where they were. Everything runs inside one compiled program per job.

    python examples/amp_transformer.py               # float16 AMP, ~30 s on 2 CPU cores
    python examples/amp_transformer.py --amp-dtype bfloat16
    python examples/amp_transformer.py --amp-dtype none   # float32 for comparison
"""

import argparse
import sys
import time
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

import jobflow as flow
import jobflow.typing as tp

VOCAB, LENGTH = 8, 16


class EncoderBlock(nn.Module):
    """Pre-LN block: x + MHA(LN(x)), then x + MLP(LN(x)). ``dtype`` is Flax's compute dtype."""

    heads: int
    d_ff: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm(dtype=self.dtype)(x)
        x = x + nn.MultiHeadDotProductAttention(
            num_heads=self.heads, dtype=self.dtype, force_fp32_for_softmax=True
        )(h, h)
        h = nn.LayerNorm(dtype=self.dtype)(x)
        h = nn.Dense(self.d_ff, dtype=self.dtype)(h)
        return x + nn.Dense(x.shape[-1], dtype=self.dtype)(nn.gelu(h))


class Encoder(nn.Module):
    """Token and position embeddings, ``layers`` blocks, mean pooling, a linear classifier."""

    d_model: int = 64
    heads: int = 4
    d_ff: int = 128
    layers: int = 2
    dtype: Any = jnp.float32  # under AMP, flax_module sets it to the job's low dtype

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, self.d_model, dtype=self.dtype)(tokens)
        pos = self.param("position", nn.initializers.normal(0.02), (LENGTH, self.d_model))
        x = x + pos[None].astype(x.dtype)
        for _ in range(self.layers):
            x = EncoderBlock(self.heads, self.d_ff, dtype=self.dtype)(x)
        x = nn.LayerNorm(dtype=self.dtype)(x)
        return nn.Dense(VOCAB, dtype=self.dtype)(jnp.mean(x, axis=1))


def make_data(n: int, rng: np.random.Generator):
    """Random token sequences and their most frequent token."""
    tokens = rng.integers(0, VOCAB, size=(n, LENGTH)).astype(np.int32)
    counts = np.stack([(tokens == v).sum(1) for v in range(VOCAB)], axis=1)
    return tokens, counts.argmax(1).astype(np.int32)


def build_jobs(args):
    cfg = flow.function_config()
    if args.amp_dtype != "none":
        cfg.enable_auto_mixed_precision(True).amp_dtype(getattr(flow, args.amp_dtype))
    model = Encoder()

    @flow.global_function(type="train", function_config=cfg)
    def train_job(
        tokens: tp.Numpy.Placeholder((args.batch_size, LENGTH), dtype=flow.int32),
        labels: tp.Numpy.Placeholder((args.batch_size,), dtype=flow.int32),
    ) -> tp.Numpy:
        logits = flow.layers.flax_module(model, tokens, name="encoder")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        sched = flow.optimizer.PolynomialScheduler(
            args.lr, args.steps, end_learning_rate=0.0, warmup=flow.optimizer.warmup.linear(args.warmup, 0)
        )
        scale = flow.optimizer.loss_scale.dynamic_loss_scale(increment_period=args.increment_period)
        flow.optimizer.AdamW(
            sched,
            weight_decay=0.01,
            weight_decay_excludes=["bias", "LayerNorm"],
            grad_clipping=flow.optimizer.grad_clipping.by_global_norm(1.0),
            loss_scale_policy=scale,
        ).minimize(loss)
        return loss

    @flow.global_function(type="predict", function_config=cfg)
    def eval_job(tokens: tp.Numpy.Placeholder((args.batch_size, LENGTH), dtype=flow.int32)) -> tp.Numpy:
        return flow.layers.flax_module(model, tokens, name="encoder")

    return train_job, eval_job


def evaluate(eval_job, tokens, labels, batch_size):
    hits = 0
    for i in range(0, len(labels), batch_size):
        logits = np.float32(eval_job(tokens[i : i + batch_size]))
        hits += int((logits.argmax(1) == labels[i : i + batch_size]).sum())
    return hits / len(labels)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--increment-period",
        type=int,
        default=200,
        help="clean steps before the loss scale doubles (OneFlow's default: 2000)",
    )
    parser.add_argument("--amp-dtype", choices=["float16", "bfloat16", "none"], default="float16")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    flow.config.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    test_tokens, test_labels = make_data(1024, rng)
    train_job, eval_job = build_jobs(args)
    print(f"AMP: {args.amp_dtype}; {args.steps} train steps of {args.batch_size} sequences")
    print(f"{'call':>5} {'step':>5} {'loss':>8} {'lr':>9} {'loss scale':>12} {'skipped':>8}")

    start, losses, window = time.perf_counter(), [], []
    calls = updates = 0
    while updates < args.steps:  # skipped calls do not count: the schedule did not advance
        tokens, labels = make_data(args.batch_size, rng)
        window.append(float(train_job(tokens, labels).mean()))
        calls += 1
        info = train_job.last_info  # this call's scalars, no recompilation
        updates = calls - info["skipped_steps"]
        if calls % args.log_every == 0 or calls <= 3:
            losses.append(float(np.mean(window)))
            window = []
            print(
                f"{calls:5d} {info['step']:5d} {losses[-1]:8.4f} {info['lr']:9.2e} "
                f"{info['loss_scale']:12.4g} {info['skipped_steps']:8d}"
            )
    elapsed = time.perf_counter() - start
    accuracy = evaluate(eval_job, test_tokens, test_labels, args.batch_size)
    print(
        f"{calls} calls in {elapsed:.1f} s: {updates} updates, {info['skipped_steps']} skipped for "
        f"non-finite gradients; final loss scale {info['loss_scale']:g}"
    )
    print(f"test accuracy {accuracy:.2%} (chance: about {1 / VOCAB:.0%})")
    return {
        "losses": losses,
        "accuracy": accuracy,
        "skipped": info["skipped_steps"],
        "calls": calls,
        "loss_scale": info["loss_scale"],
    }


if __name__ == "__main__":
    sys.exit(0 if main()["accuracy"] >= 0.5 else 1)

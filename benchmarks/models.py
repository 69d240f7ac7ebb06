"""The benchmarked models, each written three ways: a jobflow job, hand-written JAX + optax
(``jax.jit`` with the state donated), and (the MLP) PyTorch eager.

Every implementation exposes the same loop interface: ``step(x, y) -> loss`` taking numpy
batches. Blocking steps return the loss as a host number (the loop reads it every step);
``sync()`` waits for queued work. The hand-written and PyTorch versions can start from a
jobflow job's initial variables, so the benchmark can check they compute the same losses.

* tiny: ``dense 32 -> 1``, batch 8, mean squared error, SGD(lr 0.01, momentum 0.9).
* MLP: ``784 -> 1024 -> 1024 -> 10`` (ReLU), batch 256, softmax cross-entropy, Adam(1e-3) in
  PyTorch's form (``flow.optimizer.pytorch.Adam``: the math of optax.adam and torch.optim.Adam).
* LeNet: ``examples/lenet.py`` (conv 5x5x32 - pool - conv 5x5x64 - pool - dense 512 -
  dropout 0.5 - dense 10) on 1x28x28 images, batch 100, SGD momentum 0.9 with the example's
  cosine schedule, linear warmup and global-norm clipping 5.0 (OneFlow's momentum rule).
"""

import functools
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jobflow as flow
import jobflow.typing as tp
from benchmarks import precision
from jobflow._src.runtime import session as session_impl

ROOT = pathlib.Path(__file__).resolve().parent.parent

TINY = dict(batch=8, dim=32, lr=0.01, momentum=0.9)
MLP = dict(batch=256, sizes=(784, 1024, 1024, 10), lr=1e-3)
LENET = dict(batch=100, image=(1, 28, 28), base_lr=0.05, total_steps=10_000)

# Return annotations of the loop variants: blocking, a future nobody reads, a callback.
RETURNS = {"numpy": tp.Numpy, "future": None, "callback": tp.Callback[tp.Numpy]}


def _declare(fn, name: str, returns, type_="train", config=None):
    """``fn`` as a job named ``name`` returning per ``returns`` (None: no annotation)."""
    fn.__name__ = fn.__qualname__ = name
    if returns is None:
        fn.__annotations__.pop("return", None)
    else:
        fn.__annotations__["return"] = returns
    return flow.global_function(type=type_, function_config=config)(fn)


# ----------------------------------------------------------------------------------- data


def regression_batches(n: int, batch: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(batch, dim)).astype(np.float32), rng.normal(size=(batch, 1)).astype(np.float32))
        for _ in range(n)
    ]


def class_batches(n: int, batch: int, shape, classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [
        (rng.random(size=(batch, *shape), dtype=np.float32), rng.integers(0, classes, batch).astype(np.int32))
        for _ in range(n)
    ]


# ----------------------------------------------------------------------------------- tiny


def tiny_job(name="tiny", returns=tp.Numpy, batch=TINY["batch"], dim=TINY["dim"], summary=None):
    def body(x: tp.Numpy.Placeholder((batch, dim)), y: tp.Numpy.Placeholder((batch, 1))):
        p = flow.layers.dense(
            x, 1, kernel_initializer=flow.random_normal_initializer(stddev=0.1), name="tiny_fc"
        )
        loss = flow.math.reduce_mean(flow.math.square(p - y))
        flow.optimizer.SGD(TINY["lr"], momentum=TINY["momentum"]).minimize(loss)
        return loss

    config = None if summary is None else flow.function_config().summary(summary)
    return _declare(body, name, returns, config=config)


class HandOptax:
    """A hand-written JAX + optax training step: ``loss_fn(params, x, y)`` differentiated,
    ``tx`` applied, ``jax.jit`` with the params and the optimizer state donated; the loop
    reads the loss on the host each step."""

    def __init__(self, params, tx, loss_fn):
        self.params = params
        self.opt = tx.init(params)

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def train_step(params, opt, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt = tx.update(grads, opt, params)
            return optax.apply_updates(params, updates), opt, loss

        self._step = train_step

    def step(self, x, y):
        self.params, self.opt, loss = self._step(self.params, self.opt, x, y)
        return np.asarray(loss)

    def sync(self):
        jax.block_until_ready(self.params)


class HandTiny(HandOptax):
    """The tiny job by hand."""

    def __init__(self, dim=TINY["dim"], seed=0):
        params = {"w": 0.1 * jax.random.normal(jax.random.key(seed), (dim, 1)), "b": jnp.zeros((1,))}

        def loss_fn(p, x, y):
            return jnp.mean(jnp.square(x @ p["w"] + p["b"] - y))

        super().__init__(params, optax.sgd(TINY["lr"], momentum=TINY["momentum"]), loss_fn)


# ------------------------------------------------------------------------------------ MLP


def mlp_job(name="mlp", returns=tp.Numpy, batch=MLP["batch"], accumulation=1, summary=None, amp="off"):
    sizes = MLP["sizes"]
    config = precision.job_config(amp)
    if accumulation > 1:
        config.train.gradient_accumulation_steps(accumulation)
    if summary is not None:  # a log directory: TensorBoard curves of every step
        config.summary(summary)

    def body(x: tp.Numpy.Placeholder((batch, sizes[0])), y: tp.Numpy.Placeholder((batch,), dtype=flow.int32)):
        h = x
        for i, units in enumerate(sizes[1:-1]):
            h = flow.layers.dense(
                h,
                units,
                activation=flow.nn.relu,
                name=f"mlp_fc{i}",
                kernel_initializer=flow.xavier_uniform_initializer(),
            )
        logits = flow.layers.dense(
            h, sizes[-1], name="mlp_head", kernel_initializer=flow.xavier_uniform_initializer()
        )
        loss = flow.math.reduce_mean(flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        # optax.adam's and torch.optim.Adam's math
        flow.optimizer.pytorch.Adam(MLP["lr"], loss_scale_policy=precision.loss_scale_policy(amp)).minimize(
            loss
        )
        return loss

    return _declare(body, name, returns, config=config)


def mlp_layer_names():
    n = len(MLP["sizes"]) - 2
    return [f"mlp_fc{i}" for i in range(n)] + ["mlp_head"]


def mlp_init(variables=None, seed=0):
    """``[(W (in, out), b)]`` per layer: a jobflow job's variables (transposed from OneFlow's
    ``(out, in)``) or a fresh Glorot-uniform draw."""
    sizes = MLP["sizes"]
    rng = np.random.default_rng(seed)
    layers = []
    for name, fan_in, fan_out in zip(mlp_layer_names(), sizes[:-1], sizes[1:]):
        if variables is not None:
            w, b = np.array(variables[f"{name}-weight"]).T, np.array(variables[f"{name}-bias"])
        else:
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            w, b = rng.uniform(-lim, lim, (fan_in, fan_out)).astype(np.float32), np.zeros(fan_out, np.float32)
        layers.append((np.ascontiguousarray(w), b))
    return layers


class HandMLP(HandOptax):
    """The MLP by hand in JAX + optax.adam.

    ``layout="oneflow"``: weights ``(out, in)`` and ``x @ W.T``, as jobflow's
    ``layers.dense`` stores them (the same model); ``"jax"``: the usual ``(in, out)``.
    ``amp``: the matmuls' operands cast to bfloat16 / float16 (``precision.low``).
    """

    def __init__(self, init=None, layout="oneflow", amp="off"):
        dtype = precision.jax_dtype(amp)
        transpose = layout == "oneflow"
        params = [
            (jnp.asarray(np.ascontiguousarray(w.T) if transpose else w), jnp.asarray(b))
            for w, b in (init or mlp_init())
        ]

        def dense(h, w, b):
            h, w = precision.low(dtype, h, w)
            return (h @ w.T if transpose else h @ w) + b[None]

        def loss_fn(params, x, y):
            h = x
            for w, b in params[:-1]:
                h = jax.nn.relu(dense(h, w, b))
            return optax.softmax_cross_entropy_with_integer_labels(dense(h, *params[-1]), y).mean()

        super().__init__(params, optax.adam(MLP["lr"]), loss_fn)


class TorchMLP:
    """The MLP in PyTorch eager: ``torch.optim.Adam``, ``loss.item()`` each step; ``amp`` and
    ``device`` as ``precision.TorchAmp``."""

    def __init__(self, init=None, amp="off", device="cpu"):
        import torch

        self.torch = torch
        self.amp = precision.TorchAmp(amp, device)
        layers = []
        for w, b in init or mlp_init():
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                lin.bias.copy_(torch.from_numpy(b))
            layers += [lin, torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(self.amp.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=MLP["lr"])
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        with self.amp.autocast():
            loss = self.loss_fn(self.model(self.amp.tensor(x)), self.amp.tensor(y).long())
        self.amp.update(loss, self.opt)
        return loss.item()

    def sync(self):
        self.amp.sync()


# ---------------------------------------------------------------------------------- LeNet


def load_example():
    """``examples/lenet.py`` as a module (the benchmark trains the example's own jobs)."""
    spec = importlib.util.spec_from_file_location("jobflow_example_lenet", ROOT / "examples" / "lenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lenet_job(name="train_job", amp="off"):
    """The example's train job (cosine schedule with linear warmup, momentum SGD, clipping)."""
    train_job, _ = load_example().build_jobs(
        LENET["image"],
        LENET["total_steps"],
        LENET["base_lr"],
        config=precision.job_config(amp),
        loss_scale_policy=precision.loss_scale_policy(amp),
    )
    train_job.__name__ = name
    return train_job


def oneflow_cosine(base_lr, total_steps):
    """The example's schedule: linear warmup from 0 over ``total_steps // 20`` steps, then
    OneFlow's CosineScheduler on the absolute step."""
    warmup = max(1, total_steps // 20)

    def lr(step):
        c = jnp.minimum(step, total_steps)
        cosine = base_lr * 0.5 * (1 + jnp.cos(jnp.pi * c / total_steps))
        return jnp.where(step < warmup, base_lr * step / warmup, cosine)

    return lr


def lenet_train_step(tx, features, dtype=None):
    """The jitted train step of the hand-written LeNet: ``features(x, params)`` (the two
    conv + pool stages, flattened in OneFlow's (N, C*H*W) order), then dense 512 + ReLU,
    dropout 0.5 from the carried key, dense 10, softmax cross-entropy and ``tx``; the dense
    layers' operands cast to ``dtype`` (None: float32)."""

    def dense(h, wb):
        h, w = precision.low(dtype, h, wb[0])
        return h @ w.T + wb[1][None]

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(params, opt, key, x, y):
        key, sub = jax.random.split(key)

        def loss_fn(p):
            h = jax.nn.relu(dense(features(x, p), p["dense1"]))
            keep = jax.random.bernoulli(sub, 0.5, h.shape)
            h = jnp.where(keep, h / 0.5, 0.0)
            logits = dense(h, p["dense2"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, key, loss

    return train_step


class HandLeNet:
    """The example's LeNet by hand: ``lax.conv`` (NCHW/OIHW), ``reduce_window`` pooling,
    dense weights ``(out, in)`` as jobflow's, dropout from a carried key, and optax
    ``clip_by_global_norm -> -lr(step) -> trace(0.9)`` (OneFlow's rule: the lr inside the
    momentum buffer). ``amp``: convolutions' and matmuls' operands in bfloat16 / float16."""

    def __init__(self, seed=0, amp="off"):
        rng = np.random.default_rng(seed)
        self.dtype = dtype = precision.jax_dtype(amp)

        def tn(shape):
            return jnp.asarray(np.clip(rng.normal(0, 0.1, shape), -0.2, 0.2).astype(np.float32))

        self.params = {
            "conv1": (tn((32, 1, 5, 5)), jnp.zeros(32)),
            "conv2": (tn((64, 32, 5, 5)), jnp.zeros(64)),
            "dense1": (tn((512, 64 * 7 * 7)), jnp.zeros(512)),
            "dense2": (tn((10, 512)), jnp.zeros(10)),
        }
        sched = oneflow_cosine(LENET["base_lr"], LENET["total_steps"])
        self.tx = optax.chain(
            optax.clip_by_global_norm(5.0),
            optax.scale_by_schedule(lambda s: -sched(s)),
            optax.trace(decay=0.9),
        )
        self.opt = self.tx.init(self.params)
        self.key = jax.random.key(seed)

        def conv(x, wb):
            x, w = precision.low(dtype, x, wb[0])
            b = wb[1]
            y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return jax.nn.relu(y + b[None, :, None, None])

        def pool(x):
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "SAME")

        def features(x, p):
            h = pool(conv(pool(conv(x, p["conv1"])), p["conv2"]))
            return h.reshape(h.shape[0], -1)

        self._step = lenet_train_step(self.tx, features, dtype)

    def step(self, x, y):
        self.params, self.opt, self.key, loss = self._step(self.params, self.opt, self.key, x, y)
        return np.asarray(loss)

    def sync(self):
        jax.block_until_ready(self.params)


# ------------------------------------------------------------------------- jobflow loops


class JobLoop:
    """A jobflow train job in the loop interface (``mode``: how results come back)."""

    def __init__(self, job, mode="numpy"):
        self.job = job
        self.mode = mode
        self.received = 0

    def _receive(self, loss):
        self.received += 1

    def step(self, x, y):
        out = self.job(x, y)
        if self.mode == "callback":
            out(self._receive)  # the loop does not wait; a worker thread gets the loss
        return out

    def sync(self):
        flow.sync_default_session()


class StackedLoop:
    """``job.run_steps`` over ``k`` stacked batches per call (the loop reads the K losses)."""

    def __init__(self, job, batches, k):
        self.job = job
        self.steps_per_call = k
        self.stacks = [np.stack([batches[i % len(batches)][j] for i in range(k)]) for j in range(2)]

    def step(self, x, y):
        return self.job.run_steps(*self.stacks)

    def sync(self):
        flow.sync_default_session()


class OwnBatches:
    """A loop fed from its own batches (the loops compared differ in batch size)."""

    def __init__(self, loop, batches):
        self.loop = loop
        self.batches = batches
        self.i = 0

    def step(self, *_):
        self.i += 1
        return self.loop.step(*self.batches[self.i % len(self.batches)])

    def sync(self):
        self.loop.sync()


class CompiledStep:
    """A jobflow job's compiled XLA program called directly, without jobflow's call path
    (no checks, no signature lookup, no result conversion): what the program itself costs.
    Only for the per-call breakdown; it keeps the job's store consistent."""

    def __init__(self, job, example):
        job(*example)  # compiles
        self.program = job._last_program
        self.store = session_impl.default_session().store

    def step(self, x, y):
        store, program = self.store, self.program
        new, out, _ = program.compiled(
            {n: store[n] for n in program.mutable}, {n: store[n] for n in program.readonly}, [x, y]
        )
        store.update(new)
        return np.asarray(out)

    def sync(self):
        flow.sync_default_session()

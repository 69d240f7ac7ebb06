"""Convolution nets on the CPU (issue 15): LeNet and a ResNet-18-style CNN, each as a
jobflow job, hand-written JAX + optax, PyTorch eager and ``torch.compile``.

* LeNet: ``examples/lenet.py`` (the job itself), batch 100 of 1x28x28, SGD momentum 0.9
  with the example's cosine schedule, warmup and global-norm clipping. The hand-written
  JAX versions: ``benchmarks.models.HandLeNet`` (NCHW, ``reduce_window`` pooling, what
  the issue measured) and :class:`HandLeNetNHWC` (NHWC, pooling as reshape + max). PyTorch
  runs the same network with ``torch.optim.SGD(momentum=0.9)``, ``clip_grad_norm_`` and
  the schedule through ``LambdaLR``.
* ResNet-18-style: CIFAR's ResNet-18 (3x3 stem with 64 channels, four stages of two basic
  blocks, 64-128-256-512 channels, stride 2 from the second stage on, 1x1 projection
  shortcuts, batch normalization in training mode, global average pooling, dense 10) on
  3x32x32, batch 32, SGD momentum 0.9 (lr 0.05). PyTorch and the hand-written JAX start
  from the jobflow job's initial variables, so their first losses must agree (to float
  rounding).

Every loop feeds numpy batches and reads the loss on the host each step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jobflow as flow
import jobflow.typing as tp
from benchmarks import _harness as h
from benchmarks import models, precision

RESNET = dict(batch=32, image=(3, 32, 32), lr=0.05, momentum=0.9, stages=(64, 128, 256, 512))
EPS = 1e-5

# ---------------------------------------------------------------------------------- LeNet


class HandLeNetNHWC(models.HandLeNet):
    """``HandLeNet`` with the convolutions in NHWC / HWIO and 2x2 max pooling as reshape +
    max (the issue's fastest hand-written form); the same parameters and update."""

    def __init__(self, seed=0, amp="off"):
        super().__init__(seed, amp)
        dtype = self.dtype

        def conv(x, wb):
            x, w = precision.low(dtype, x, wb[0])
            b = wb[1]
            dn = ("NHWC", "OIHW", "NHWC")
            return jax.nn.relu(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn) + b)

        def pool(x):
            n, hh, ww, c = x.shape
            return jnp.max(x.reshape(n, hh // 2, 2, ww // 2, 2, c), axis=(2, 4))

        def features(x, p):
            h = pool(conv(pool(conv(jnp.transpose(x, (0, 2, 3, 1)), p["conv1"])), p["conv2"]))
            return jnp.transpose(h, (0, 3, 1, 2)).reshape(h.shape[0], -1)  # OneFlow's flatten order

        self._step = models.lenet_train_step(self.tx, features, dtype)


class TorchLoop:
    """A PyTorch model trained with SGD momentum (optionally clipping and a schedule),
    ``loss.item()`` each step; ``compile=True`` wraps the model in ``torch.compile``;
    ``amp`` and ``device`` as ``precision.TorchAmp``."""

    def __init__(self, model, lr, clip=None, schedule=None, compile=False, amp="off", device="cpu"):
        import torch

        self.torch = torch
        self.amp = precision.TorchAmp(amp, device)
        model = model.to(self.amp.device)
        self.model = torch.compile(model) if compile else model
        self.params = list(model.parameters())
        self.opt = torch.optim.SGD(self.params, lr=lr, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedule) if schedule else None
        self.clip = clip

    def step(self, x, y):
        amp = self.amp
        self.opt.zero_grad(set_to_none=True)
        with amp.autocast():
            logits = self.model(amp.tensor(x))
            loss = self.torch.nn.functional.cross_entropy(logits, amp.tensor(y).long())
        amp.update(loss, self.opt, self.params, self.clip)
        if self.sched:
            self.sched.step()
        return loss.item()

    def sync(self):
        self.amp.sync()


def torch_lenet():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 512),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(512, 10),
    )


def torch_lenet_loop(compile=False, amp="off", device="cpu"):
    total, base = models.LENET["total_steps"], models.LENET["base_lr"]
    warmup = max(1, total // 20)

    def factor(step):  # the example's schedule relative to base_lr
        if step < warmup:
            return step / warmup
        return 0.5 * (1 + np.cos(np.pi * min(step, total) / total))

    return TorchLoop(torch_lenet(), base, clip=5.0, schedule=factor, compile=compile, amp=amp, device=device)


# ------------------------------------------------------------------------------- ResNet-18


def _block_plan():
    """``(name, in, out, stride)`` of the eight basic blocks."""
    plan, cin = [], RESNET["stages"][0]
    for s, cout in enumerate(RESNET["stages"]):
        for b in range(2):
            stride = 2 if s > 0 and b == 0 else 1
            plan.append((f"layer{s + 1}_{b}", cin, cout, stride))
            cin = cout
    return plan


def _flow_bn(x, name, relu=True):
    kw = dict(axis=1, momentum=0.9, epsilon=EPS, name=name)
    return flow.layers.batch_normalization_relu(x, **kw) if relu else flow.layers.batch_normalization(x, **kw)


def _flow_conv(x, filters, k, stride, name):
    pad = [(k // 2, k // 2)] * 2  # explicit, as PyTorch's padding=k // 2
    return flow.layers.conv2d(x, filters, k, stride, pad, use_bias=False, name=name)


def flow_resnet(x):
    """The ResNet-18-style net as jobflow layers (NCHW, OneFlow's variable layouts)."""
    h = _flow_bn(_flow_conv(x, 64, 3, 1, "stem"), "stem_bn")
    for name, cin, cout, stride in _block_plan():
        out = _flow_bn(_flow_conv(h, cout, 3, stride, f"{name}_conv1"), f"{name}_bn1")
        out = _flow_bn(_flow_conv(out, cout, 3, 1, f"{name}_conv2"), f"{name}_bn2", relu=False)
        if stride != 1 or cin != cout:
            h = _flow_bn(_flow_conv(h, cout, 1, stride, f"{name}_down"), f"{name}_down_bn", relu=False)
        h = flow.nn.relu(out + h)
    h = flow.math.reduce_mean(h, axis=[2, 3])
    return flow.layers.dense(h, 10, kernel_initializer=flow.xavier_uniform_initializer(), name="fc")


def resnet_job(name="resnet_train", amp="off"):
    shape = (RESNET["batch"], *RESNET["image"])
    policy = precision.loss_scale_policy(amp)

    def body(x: tp.Numpy.Placeholder(shape), y: tp.Numpy.Placeholder((RESNET["batch"],), dtype=flow.int32)):
        loss = flow.math.reduce_mean(flow.nn.sparse_softmax_cross_entropy_with_logits(y, flow_resnet(x)))
        flow.optimizer.SGD(RESNET["lr"], momentum=RESNET["momentum"], loss_scale_policy=policy).minimize(loss)
        return loss

    return models._declare(body, name, tp.Numpy, config=precision.job_config(amp))


def torch_resnet(variables):
    """The same net in PyTorch, its parameters copied from the jobflow job's variables."""
    import torch
    import torch.nn as nn

    def conv(cin, cout, k, stride, name):
        m = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.array(variables[f"{name}-weight"])))
        return m

    def bn(c):
        return nn.BatchNorm2d(c, eps=EPS, momentum=0.1)

    class Block(nn.Module):
        def __init__(self, name, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(
                conv(cin, cout, 3, stride, f"{name}_conv1"),
                bn(cout),
                nn.ReLU(),
                conv(cout, cout, 3, 1, f"{name}_conv2"),
                bn(cout),
            )
            down = stride != 1 or cin != cout
            self.down = nn.Sequential(conv(cin, cout, 1, stride, f"{name}_down"), bn(cout)) if down else None

        def forward(self, x):
            return torch.relu(self.body(x) + (self.down(x) if self.down is not None else x))

    fc = nn.Linear(RESNET["stages"][-1], 10)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.array(variables["fc-weight"])))
        fc.bias.copy_(torch.from_numpy(np.array(variables["fc-bias"])))
    return nn.Sequential(
        conv(3, 64, 3, 1, "stem"),
        bn(64),
        nn.ReLU(),
        *[Block(*p) for p in _block_plan()],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        fc,
    )


class HandResNet(models.HandOptax):
    """The ResNet-18-style net by hand in JAX (NHWC, HWIO weights transposed once from the
    jobflow variables), batch statistics in training mode, ``optax.sgd`` with momentum
    (PyTorch's form: the same as OneFlow's for a constant learning rate). ``amp``: the
    convolutions' and the dense layer's operands cast to bfloat16 / float16; batch-norm
    statistics in float32."""

    def __init__(self, variables, amp="off"):
        dtype = precision.jax_dtype(amp)

        def hwio(name):
            return jnp.asarray(np.array(variables[f"{name}-weight"]).transpose(2, 3, 1, 0))

        def bn_params(name):
            return (jnp.asarray(variables[f"{name}-gamma"]), jnp.asarray(variables[f"{name}-beta"]))

        params = {"stem": hwio("stem"), "stem_bn": bn_params("stem_bn")}
        for name, cin, cout, stride in _block_plan():
            parts = [("conv1", "bn1"), ("conv2", "bn2")] + (
                [("down", "down_bn")] if stride != 1 or cin != cout else []
            )
            for conv_part, bn_part in parts:
                params[f"{name}_{conv_part}"] = hwio(f"{name}_{conv_part}")
                params[f"{name}_{bn_part}"] = bn_params(f"{name}_{bn_part}")
        params["fc"] = (jnp.asarray(variables["fc-weight"]), jnp.asarray(variables["fc-bias"]))

        def conv(x, w, stride):
            k = w.shape[0] // 2
            x, w = precision.low(dtype, x, w)
            dn = ("NHWC", "HWIO", "NHWC")
            return jax.lax.conv_general_dilated(x, w, (stride, stride), [(k, k)] * 2, dimension_numbers=dn)

        def bn(x, gb):
            x = x.astype(jnp.float32)
            mean, var = jnp.mean(x, axis=(0, 1, 2)), jnp.var(x, axis=(0, 1, 2))
            return (x - mean) * jax.lax.rsqrt(var + EPS) * gb[0] + gb[1]

        def loss_fn(p, x, y):
            h = jax.nn.relu(bn(conv(jnp.transpose(x, (0, 2, 3, 1)), p["stem"], 1), p["stem_bn"]))
            for name, *_, stride in _block_plan():
                out = jax.nn.relu(bn(conv(h, p[f"{name}_conv1"], stride), p[f"{name}_bn1"]))
                out = bn(conv(out, p[f"{name}_conv2"], 1), p[f"{name}_bn2"])
                if f"{name}_down" in p:
                    h = bn(conv(h, p[f"{name}_down"], stride), p[f"{name}_down_bn"])
                h = jax.nn.relu(out + h)
            pooled, w = precision.low(dtype, jnp.mean(h, axis=(1, 2)), p["fc"][0])
            logits = pooled @ w.T + p["fc"][1][None]
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        super().__init__(params, optax.sgd(RESNET["lr"], momentum=RESNET["momentum"]), loss_fn)


# -------------------------------------------------------------------------------- section


def _torch_or_note(make, label, notes):
    try:
        return make()
    except Exception as e:  # a missing or failing torch only drops its row
        notes.append(f"{label}: skipped ({type(e).__name__}: {str(e)[:120]})")
        return None


def _compiled_or_note(loop, batches, label, notes):
    """``loop`` if its first steps run (torch.compile needs a working C compiler), else None."""
    if loop is None:
        return None
    try:
        loop.step(*batches[0])
        return loop
    except Exception as e:
        notes.append(f"{label}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
        return None


def _cnn_rows(model, times, reference, first=None):
    rows = []
    for name, values in times.items():
        rows.append(
            {
                "model": model,
                "implementation": name,
                "ms/step": h.median(values) * 1e3,
                "vs PyTorch eager": h.ratio(times, name, reference) if reference in times else None,
                "spread": h.spread(values),
                "first losses": None if first is None or name not in first else first[name],
            }
        )
    return rows


def lenet_loops(notes, amp="off", device="cpu"):
    flow.clear_default_session()
    flow.config.seed(0)
    loops = {
        "jobflow": models.JobLoop(models.lenet_job("cnn_lenet", amp=amp)),
        "JAX NCHW + reduce_window": models.HandLeNet(amp=amp),
        "JAX NHWC + reshape pooling": HandLeNetNHWC(amp=amp),
    }
    eager = _torch_or_note(lambda: torch_lenet_loop(amp=amp, device=device), "PyTorch", notes)
    if eager is not None:
        loops["PyTorch eager"] = eager
    return loops


def resnet_loops(batches, notes, amp="off", device="cpu"):
    flow.clear_default_session()
    flow.config.seed(0)
    job = resnet_job(amp=amp)
    job.compile()
    variables = {k: np.array(v) for k, v in flow.get_all_variables().items()}
    loops = {"jobflow": models.JobLoop(job), "JAX NHWC by hand": HandResNet(variables, amp=amp)}
    eager = _torch_or_note(
        lambda: TorchLoop(torch_resnet(variables), RESNET["lr"], amp=amp, device=device), "PyTorch", notes
    )
    if eager is not None:
        loops["PyTorch eager"] = eager
    return loops, variables


def cnn(scale) -> dict:
    """Train-step time of LeNet (batch 100) and a ResNet-18-style CNN (32x32, batch 32):
    jobflow vs hand-written JAX vs PyTorch eager vs ``torch.compile``, in ``scale["amp"]``'s
    precision on ``scale["device"]``."""
    amp, device = scale.get("amp", "off"), scale.get("device", "cpu")
    notes, rows = [precision.note(amp, device)], []
    compile_torch = scale.get("torch_compile", True)
    lenet_batches = models.class_batches(4, models.LENET["batch"], models.LENET["image"])
    loops = lenet_loops(notes, amp, device)
    if compile_torch and "PyTorch eager" in loops:
        c = _torch_or_note(
            lambda: torch_lenet_loop(compile=True, amp=amp, device=device), "torch.compile", notes
        )
        c = _compiled_or_note(c, lenet_batches, "torch.compile", notes)
        if c is not None:
            loops["torch.compile"] = c
    times = h.interleaved(loops, scale["lenet_steps"], scale["rounds"], lenet_batches)
    rows += _cnn_rows("LeNet", times, "PyTorch eager")

    resnet_batches = models.class_batches(2, RESNET["batch"], RESNET["image"])
    loops, variables = resnet_loops(resnet_batches, notes, amp, device)
    first = {name: float(np.asarray(loop.step(*resnet_batches[0]))) for name, loop in loops.items()}
    if compile_torch and "PyTorch eager" in loops:
        c = _torch_or_note(
            lambda: TorchLoop(torch_resnet(variables), RESNET["lr"], compile=True, amp=amp, device=device),
            "torch.compile",
            notes,
        )
        c = _compiled_or_note(c, resnet_batches, "torch.compile (ResNet)", notes)
        if c is not None:
            loops["torch.compile"] = c
    diffs = {n: abs(v - first["jobflow"]) for n, v in first.items()}
    steps = max(1, scale["lenet_steps"] // 2)
    times = h.interleaved(loops, steps, scale["rounds"], resnet_batches, warmup=1)
    rows += _cnn_rows("ResNet-18-style", times, "PyTorch eager", diffs)
    notes.append(
        "LeNet: examples/lenet.py, batch 100 of 1x28x28. ResNet-18-style: CIFAR ResNet-18, batch 32 of "
        "3x32x32, batch norm in training mode, SGD momentum 0.9."
    )
    notes.append(
        "ms/step: median over interleaved rounds; 'vs PyTorch eager': median of per-round ratios "
        "(targets: LeNet <= 1.0, ResNet <= 1.2); spread: interquartile range / median."
    )
    notes.append(
        "ResNet 'first losses': |first loss - jobflow's| from the same initial weights (the same model). "
        "Later steps differ by up to ~5e-4 even between PyTorch in float32 and float64: one update at "
        "lr 0.05 amplifies float rounding. LeNet's dropout masks differ, so no check."
    )
    return {
        "title": f"Convolution nets ({precision.label(amp, device)})",
        "columns": ["model", "implementation", "ms/step", "vs PyTorch eager", "spread", "first losses"],
        "rows": rows,
        "notes": notes,
    }

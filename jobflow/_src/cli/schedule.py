"""``jobflow schedule``: look at a learning-rate schedule from the terminal.

    jobflow schedule cosine --base-lr 0.1 --steps 1000 --warmup 100 --plot lr.png
    jobflow schedule pytorch.StepLR --arg step_size=30 --steps 200
    jobflow schedule mindspore.cosine_decay_lr --arg min_lr=0.01 --arg max_lr=0.1 \\
        --arg total_step=100 --arg step_per_epoch=10 --arg decay_epoch=5
    jobflow schedule --list

``NAME`` is a preset (``--list`` shows them) or any schedule of the catalog, written
``StepLR`` (OneFlow 0.7 names), ``pytorch.StepLR``, ``mindspore.CosineDecayLR``,
``transformers.cosine`` (a ``get_scheduler`` name) or ``optimizer.CosineScheduler``
(OneFlow's legacy names). ``--arg k=v`` sets a parameter (a Python literal);
``base_lr`` comes from ``--base-lr`` when the schedule takes one. ``--warmup W`` puts a
linear warmup from 0 in front (the presets built on transformers include their own).

OneFlow's legacy schedulers (``optimizer.CosineScheduler``, also written
``CosineScheduler`` or ``flow.optimizer.CosineScheduler``) are shown exactly as a job
computes them: ``steps`` defaults to ``--steps``, and ``--warmup W`` is their own
``warmup=flow.optimizer.warmup.linear(W, 0)``, which runs on the absolute step (the decay
is not shifted by ``W``). Their ``warmup`` argument can also be given as
``--arg "warmup=linear(100, 0.1)"`` or ``--arg "warmup=constant(100, 0.5)"``.
"""

from __future__ import annotations

import ast
import inspect
import os
from collections.abc import Callable

import numpy as np

__all__ = ["add_arguments", "run", "catalog", "build", "sparkline"]

_BLOCKS = "▁▂▃▄▅▆▇█"


def _torch_presets(S) -> dict:
    """The OneFlow 0.7 / PyTorch-named presets of :func:`_presets`."""
    return {
        "step": (
            "StepLR, step_size = steps/4, gamma = 0.1",
            lambda b, n, w, kw: S.StepLR(b, **{"step_size": max(1, n // 4), **kw}),
            False,
        ),
        "exponential": (
            "ExponentialLR reaching base/100 at --steps",
            lambda b, n, w, kw: S.ExponentialLR(b, **{"gamma": 0.01 ** (1 / max(1, n)), **kw}),
            False,
        ),
        "warm_restarts": (
            "CosineAnnealingWarmRestarts, T_0 = steps/15, T_mult = 2",
            lambda b, n, w, kw: S.CosineAnnealingWarmRestarts(
                b, **{"T_0": max(1, n // 15), "T_mult": 2, **kw}
            ),
            False,
        ),
        "onecycle": (
            "OneCycleLR with max_lr = base_lr over --steps",
            lambda b, n, w, kw: S.OneCycleLR(b, **{"total_steps": n, **kw}),
            False,
        ),
        "cyclic": (
            "CyclicLR between base_lr/10 and base_lr, 4 cycles",
            lambda b, n, w, kw: S.CyclicLR(b / 10, b, **{"step_size_up": max(1, n // 8), **kw}),
            False,
        ),
    }


def _presets():
    from jobflow import schedule as S
    from jobflow._src.schedule import transformers as T

    return {
        "constant": ("constant base_lr", lambda b, n, w, kw: S.Constant(b), False),
        "linear": (
            "warmup, then linear to 0 at --steps (transformers)",
            lambda b, n, w, kw: T.get_linear_schedule_with_warmup(b, w, n),
            True,
        ),
        "cosine": (
            "warmup, then cosine to 0 at --steps (transformers; num_cycles)",
            lambda b, n, w, kw: T.get_cosine_schedule_with_warmup(b, w, n, **kw),
            True,
        ),
        "cosine_restarts": (
            "warmup, then num_cycles=3 hard restarts (transformers)",
            lambda b, n, w, kw: T.get_cosine_with_hard_restarts_schedule_with_warmup(
                b, w, n, **{"num_cycles": 3, **kw}
            ),
            True,
        ),
        "polynomial": (
            "warmup, then polynomial to lr_end (transformers; lr_end, power)",
            lambda b, n, w, kw: T.get_polynomial_decay_schedule_with_warmup(b, w, n, **kw),
            True,
        ),
        "inverse_sqrt": (
            "warmup, then 1/sqrt (transformers; timescale)",
            lambda b, n, w, kw: T.get_inverse_sqrt_schedule(b, w, **kw),
            True,
        ),
        "wsd": (
            "warmup-stable-decay, decay over the last fifth (transformers)",
            lambda b, n, w, kw: T.get_wsd_schedule(
                b, w, **{"num_decay_steps": max(1, n // 5), "num_training_steps": n, **kw}
            ),
            True,
        ),
        **_torch_presets(S),
    }


def catalog() -> dict[str, Callable]:
    """``{qualified name: class or function}`` for every schedule jobflow offers."""
    from jobflow._src.schedule import compose, legacy, mindspore, oneflow, pytorch, transformers

    out = {}
    for name in oneflow.__all__:
        out[name] = getattr(oneflow, name)
    for name in ("join", "product", "chain", "with_warmup"):
        out[name] = getattr(compose, name)
    for prefix, module in (("pytorch", pytorch), ("mindspore", mindspore)):
        for name in module.__all__:
            out[f"{prefix}.{name}"] = getattr(module, name)
    for name in transformers.SCHEDULER_NAMES:
        out[f"transformers.{name}"] = transformers._BY_NAME[name]
    for name in legacy.__all__:
        obj = getattr(legacy, name)
        if name not in ("WarmupConf", "warmup", "PolynomialSchduler"):
            out[f"optimizer.{name}"] = obj
    return out


def _parameters(obj) -> str:
    params = []
    for p in inspect.signature(obj).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            params.append(("**" if p.kind == p.VAR_KEYWORD else "*") + p.name)
        elif p.default is p.empty:
            params.append(p.name)
        else:
            params.append(f"{p.name}={p.default!r}")
    return ", ".join(params)


def _parse_args(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"jobflow schedule: --arg needs key=value; got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def _catalog_key(name: str) -> str:
    """The catalog key of ``name``: exact, any case, without ``flow.`` / ``jobflow.``, or
    the one key it ends (``CosineScheduler`` -> ``optimizer.CosineScheduler``)."""
    cat = catalog()
    bare = name.removeprefix("jobflow.").removeprefix("flow.").removeprefix("schedule.")
    for candidate in (name, bare):
        key = next((k for k in cat if k.lower() == candidate.lower()), None)
        if key is not None:
            return key
    ends = [k for k in cat if k.lower().endswith("." + bare.lower())]
    if len(ends) == 1:
        return ends[0]
    raise SystemExit(f"jobflow schedule: unknown schedule {name!r}; see jobflow schedule --list")


def _warmup_conf(owner: str, value):
    """A legacy ``warmup`` argument from ``--arg``: ``linear(S, m)``, ``constant(S, m)``
    (also ``flow.optimizer.warmup.linear(...)``) or ``S`` (``linear(S, 0)``)."""
    from jobflow.optimizer import warmup as legacy_warmup

    if value is None or isinstance(value, int):
        return None if value is None else legacy_warmup.linear(value, 0.0)
    try:
        call = ast.parse(str(value).strip(), mode="eval").body
        kind = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id  # type: ignore[attr-defined]
        args = [ast.literal_eval(a) for a in call.args]  # type: ignore[attr-defined]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}  # type: ignore[attr-defined]
    except (SyntaxError, ValueError, AttributeError):
        kind = None
    if kind not in ("linear", "constant"):
        raise ValueError(
            f"{owner}(warmup) from --arg must be linear(steps, start_multiplier), "
            f"constant(steps, multiplier) or a number of steps; got warmup={value!r}"
        )
    return getattr(legacy_warmup, kind)(*args, **kwargs)


def _legacy_arguments(key: str, kw: dict, steps: int, warmup: int) -> dict:
    """A legacy scheduler's arguments: ``steps`` from ``--steps`` unless given; ``--warmup``
    as its own absolute-step warmup (``warmup.linear(W, 0)``)."""
    owner = key.split(".", 1)[1]
    params = inspect.signature(catalog()[key]).parameters
    kw = dict(kw)
    if "steps" in params and "steps" not in kw:
        kw["steps"] = steps
    if warmup and "warmup" in kw:
        raise ValueError(f"{owner}: give its warmup once, by --warmup or by --arg warmup=...")
    if "warmup" in params:
        kw["warmup"] = _warmup_conf(owner, warmup if warmup else kw.get("warmup"))
    elif warmup:
        raise ValueError(f"{owner} takes no warmup; drop --warmup")
    return kw


def build(name: str, base_lr: float, steps: int, warmup: int, kwargs: dict):
    """The schedule ``name`` (a preset or a catalog name) with the given settings."""
    from jobflow import schedule as S

    presets = _presets()
    if name in presets:
        _, make, has_warmup = presets[name]
        sched = make(base_lr, steps, warmup, kwargs)
        return sched if has_warmup or not warmup else S.with_warmup(sched, warmup)
    key = _catalog_key(name)
    obj = catalog()[key]
    if key.startswith("transformers."):
        sched = S.transformers.get_scheduler(key.split(".", 1)[1], base_lr, warmup, steps, **kwargs)
        return sched
    params = inspect.signature(obj).parameters
    kw = dict(kwargs)
    if "base_lr" in params and "base_lr" not in kw:
        kw["base_lr"] = base_lr
    if key.startswith("optimizer."):
        return obj(**_legacy_arguments(key, kw, steps, warmup))
    sched = obj(**kw)
    if isinstance(sched, list):
        sched = S.Table(sched)
    return S.with_warmup(sched, warmup) if warmup else sched


def sparkline(values: np.ndarray, width: int = 64) -> str:
    """The curve as one line of block characters (each the mean of a bucket of steps)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return ""
    buckets = np.array_split(values, min(width, values.size))
    means = np.array([b.mean() for b in buckets])
    lo, hi = means.min(), means.max()
    if hi <= lo:
        return _BLOCKS[3] * len(means)
    idx = np.round((means - lo) / (hi - lo) * (len(_BLOCKS) - 1)).astype(int)
    return "".join(_BLOCKS[i] for i in idx)


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="a preset or a schedule name (see --list)")
    parser.add_argument("--list", action="store_true", help="list every schedule with its parameters")
    parser.add_argument("--base-lr", type=float, default=0.1, help="base learning rate (default 0.1)")
    parser.add_argument("--steps", type=int, default=1000, help="number of steps to show (default 1000)")
    parser.add_argument("--warmup", type=int, default=0, help="warmup steps (default 0)")
    parser.add_argument(
        "--arg", action="append", metavar="KEY=VALUE", help="a schedule parameter (repeatable)"
    )
    parser.add_argument("--plot", metavar="PNG", help="also write the curve to this PNG (needs matplotlib)")
    parser.add_argument("--rows", type=int, default=11, help="rows of the table (default 11)")


def _list(console) -> int:
    from rich.table import Table

    table = Table(title="presets (jobflow schedule NAME --base-lr --steps --warmup)")
    table.add_column("preset")
    table.add_column("what")
    for name, (what, _, _) in _presets().items():
        table.add_row(name, what)
    console.print(table)
    table = Table(title="schedules (jobflow schedule NAME --arg key=value ...)")
    table.add_column("name")
    table.add_column("parameters")
    for name, obj in catalog().items():
        table.add_row(name, _parameters(obj))
    console.print(table)
    return 0


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if args.list:
        return _list(console)
    if not args.name:
        console.print("jobflow schedule: give a schedule NAME or --list")
        return 2
    if args.steps < 1 or args.warmup < 0:
        console.print(
            f"jobflow schedule: --steps must be >= 1 and --warmup >= 0; got {args.steps}, {args.warmup}"
        )
        return 2
    problem = _plot_problem(args.plot)
    if problem:
        console.print(problem, soft_wrap=True, markup=False)
        return 2
    try:
        sched = build(args.name, args.base_lr, args.steps, args.warmup, _parse_args(args.arg))
    except (TypeError, ValueError) as e:
        console.print(f"jobflow schedule {args.name}: {e}", soft_wrap=True, markup=False)
        return 2
    values = sched.values(args.steps)
    warmup = args.warmup or getattr(getattr(sched, "warmup", None), "steps", 0)  # a legacy --arg warmup
    rows = sorted(
        {int(round(x)) for x in np.linspace(0, args.steps - 1, max(2, args.rows))}
        | ({warmup - 1, warmup} if 0 < warmup < args.steps else set())
    )
    console.print(repr(sched), soft_wrap=True)
    table = Table()
    table.add_column("step", justify="right")
    table.add_column("lr", justify="right")
    for t in rows:
        table.add_row(str(t), f"{values[t]:.6g}")
    console.print(table)
    console.print(f"[bold]{sparkline(values)}[/bold]")
    console.print(
        f"steps 0..{args.steps - 1}: min {values.min():.6g}  max {values.max():.6g}  "
        f"first {values[0]:.6g}  last {values[-1]:.6g}"
    )
    if args.plot:
        try:
            sched.plot(args.steps, args.plot, label=args.name)
        except (OSError, ImportError) as e:
            console.print(
                f"jobflow schedule: cannot write --plot {args.plot}: {_reason(e)}",
                soft_wrap=True,
                markup=False,
            )
            return 1
        console.print(f"wrote {args.plot}")
    return 0


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


def _plot_problem(path: str | None) -> str | None:
    """Why ``--plot path`` cannot be written (checked before anything is computed)."""
    if path is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"jobflow schedule: cannot write --plot {path}: no such directory {folder}"
    if os.path.isdir(path):
        return f"jobflow schedule: cannot write --plot {path}: it is a directory; give a .png file name"
    return None

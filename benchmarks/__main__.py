"""jobflow measured side by side: ``python -m benchmarks [--quick] [--only SECTION ...]
[--amp off|bf16|f16] [--device auto|cpu|gpu] [--out PATH] [--markdown PATH]``.

Sections (all by default, in this order):

  train_step    MLP and LeNet train-step time: jobflow vs hand-written JAX + optax (jax.jit,
                donated state) vs PyTorch eager (MLP)
  per_call      per-call overhead on a tiny job vs a hand-written jax.jit call
  run_steps     several steps per call (job.run_steps) vs single calls
  async         non-blocking loops (futures, tp.Callback) vs a blocking one
  compile       time to the first loss (tracing + compiling) vs hand-written JAX
  memory        peak resident set of a training run vs hand-written JAX (own processes)
  accumulation  memory and time of gradient accumulation
  sharding      per-device memory of replicated vs sharded state: an MLP with the ZeRO
                switches, an embedding table split by rows (8 CPU devices)
  summary       MLP step time with per-step TensorBoard summaries vs without
  wide_deep     Wide&Deep embedding tables (50k / 1M / 4M rows): row-sparse LazyAdam vs a
                hand-written row-sparse JAX update vs PyTorch SparseAdam
  data_pipeline decode + augment throughput vs a PyTorch DataLoader; a CNN reading
                OFRecord in the job vs fed preloaded numpy
  cnn           LeNet and ResNet-18-style train steps: jobflow vs hand-written JAX vs PyTorch
                eager vs torch.compile (benchmarks/cnn.py)
  transformer   a small transformer encoder (AdamW + warmup): jobflow vs JAX + optax vs
                PyTorch eager vs torch.compile (benchmarks/transformer.py)
  first_call    first-call time of MLPs of 8 / 32 / 128 layers and where it goes (own processes)
  overhead      per-call overhead with 10 / 100 / 1000 variables vs a hand-written jax.jit call
  checkpoint_io checkpoint save / load throughput at 100 MiB and 1 GiB vs safetensors and torch

--amp (train_step, cnn, transformer; default off): bf16 / f16 mixed precision for every
contender (jobflow's AMP, torch.autocast, casts in the hand-written JAX steps; f16 with
dynamic loss scaling); other sections run float32 and say so in a note. --device (default
auto: gpu when JAX's default backend is gpu and torch.cuda.is_available(), else cpu):
jobflow and JAX use JAX's backend (pinned to the CPU for cpu), PyTorch moves to cuda on
gpu in the same three sections. benchmarks/gpu_run.sh runs them on a GPU machine.

Timings are medians over interleaved rounds (each round runs every contender in turn);
ratios are medians of per-round ratios. The table is printed and the results (with the
machine, the load average before and after, and any warning raised) are written as JSON
under benchmarks/results/ (git-ignored).
"""

import argparse
import datetime
import json
import pathlib
import sys

from rich.console import Console
from rich.table import Table

from benchmarks import _harness, data_pipeline, precision, sections

SECTIONS = {
    "train_step": sections.train_step,
    "per_call": sections.per_call,
    "run_steps": sections.run_steps,
    "async": sections.async_loops,
    "compile": sections.compile_time,
    "memory": sections.peak_memory,
    "accumulation": sections.accumulation,
    "sharding": sections.sharding,
    "summary": sections.summary_overhead,
    "wide_deep": sections.wide_deep,
    "data_pipeline": data_pipeline.data_pipeline,
    "cnn": sections.cnn,
    **sections.OWN_FILES,
}

# the sections that apply --amp and put PyTorch on --device
PRECISION_SECTIONS = ("train_step", "cnn", "transformer")

SCALES = {
    "full": dict(
        rounds=9,
        mlp_steps=10,
        lenet_steps=5,
        tiny_steps=300,
        tiny_rounds=31,
        run_steps_k_tiny=100,
        run_steps_k_mlp=10,
        run_steps_k_lenet=4,
        processes=3,
        rss_steps=30,
        acc_batch=2048,
        acc_n=8,
        acc_steps=6,
        sharding_args=[],
        quick=False,
    ),
    "quick": dict(
        rounds=3,
        mlp_steps=4,
        lenet_steps=2,
        tiny_steps=100,
        tiny_rounds=7,
        run_steps_k_tiny=20,
        run_steps_k_mlp=4,
        run_steps_k_lenet=2,
        processes=1,
        rss_steps=5,
        acc_batch=1024,
        acc_n=8,
        acc_steps=2,
        sharding_args=["--hidden", "256", "--dim", "128", "--rows", "8192", "--steps", "2"],
        quick=True,
    ),
}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 0.01 or abs(value) >= 1e5:
            return f"{value:.2e}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def render(console: Console, result: dict) -> None:
    table = Table(title=result["title"], title_justify="left")
    for col in result["columns"]:
        numeric = any(isinstance(row.get(col), (int, float)) for row in result["rows"])
        table.add_column(col, justify="right" if numeric else "left")
    for row in result["rows"]:
        table.add_row(*(_cell(row.get(col)) for col in result["columns"]))
    console.print(table)
    for note in result.get("notes", []):
        console.print(f"  [dim]{note}[/]")
    for warning in result.get("warnings", []):
        console.print(f"  [bold red]warning:[/] {warning}")
    console.print()


def markdown(report: dict) -> str:
    """The report's tables as markdown (what the README and docs/performance.md show), after
    a line naming the run's scale, precision and devices."""
    m = report.get("machine", {})
    devices = ", ".join(filter(None, [m.get("jax_device_kind"), m.get("torch_device")]))
    lines = [
        f"{report.get('mode', '')} run, {precision.label(report.get('amp', 'off'), report.get('device', 'cpu'))} "
        f"({devices}); jax {m.get('jax')}, torch {m.get('torch')}; started {report.get('started')}, "
        f"load average before {report.get('load_average_before')}",
        "",
    ]
    for result in report["sections"].values():
        cols = result["columns"]
        lines += [f"#### {result['title']}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in result["rows"]]
        lines += [""] + [f"* {note}" for note in result.get("notes", [])] + [""]
    return "\n".join(lines)


def precision_notes(name: str, amp: str, device: str) -> list:
    """The notes of a section that does not apply ``--amp`` / ``--device`` (none for the
    sections that do: their own notes say how they were applied)."""
    if name in PRECISION_SECTIONS:
        return []
    notes = []
    if amp != "off":
        notes.append(f"--amp {amp} is not applied in this section: it ran in float32.")
    if device == "gpu":
        notes.append(
            "--device gpu: jobflow and JAX ran on the GPU; this section's PyTorch rows (if any) on the CPU."
        )
    return notes


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller sizes (a smoke run)")
    parser.add_argument(
        "--amp",
        choices=precision.AMP_MODES,
        default="off",
        help="mixed precision of train_step, cnn and transformer: off (float32), bf16 or f16 (default off)",
    )
    parser.add_argument(
        "--device",
        choices=precision.DEVICES,
        default="auto",
        help="auto (gpu when JAX and PyTorch both see one, else cpu), cpu or gpu (default auto)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SECTIONS),
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, help="JSON file to write (default: benchmarks/results/<time>.json)"
    )
    parser.add_argument("--markdown", type=pathlib.Path, help="also write the tables as markdown there")
    args = parser.parse_args(argv)
    try:
        args.device = precision.select_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    return args


def write(report: dict, out: pathlib.Path, markdown_path: pathlib.Path | None) -> None:
    """Writes the report (after every section, so a run stopped early keeps what it measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown(report))


def main(argv=None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    scale = dict(SCALES[mode], amp=args.amp, device=args.device)
    console = Console(width=None if sys.stdout.isatty() else 140)
    machine = {**_harness.machine(), **precision.device_info(args.device)}
    console.print(
        f"[bold]jobflow benchmarks[/] ({mode}, {precision.label(args.amp, args.device)}) on {machine['cpu']}, "
        f"{machine['cores']} cores, jax {machine['jax']}, devices {machine['devices']}"
    )
    report = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": mode,
        "amp": args.amp,
        "device": args.device,
        "machine": machine,
        "load_average_before": _harness.load_average(),
        "sections": {},
    }
    out = args.out or _harness.ROOT / "benchmarks" / "results" / f"{report['started'].replace(':', '-')}.json"
    for name in args.only or SECTIONS:
        console.print(f"[dim]running {name} ...[/]")
        result = sections.capture_warnings(SECTIONS[name], scale)
        result["notes"] = result.get("notes", []) + precision_notes(name, args.amp, args.device)
        report["sections"][name] = result
        render(console, result)
        write(report, out, args.markdown)
    report["load_average_after"] = _harness.load_average()
    console.print(
        f"load average before {report['load_average_before']}, after {report['load_average_after']}"
    )
    write(report, out, args.markdown)
    console.print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``jobflow inspect PATH``: a checkpoint's variables, shapes, dtypes, sizes and step counters.

Exit status: 0 when the checkpoint is readable (and, with ``--verify``, intact), 1 when it
is missing, damaged or not a checkpoint (then one error line says why, and no table is
printed). Names from the file are printed with every non-printable character escaped
(``\x1b`` for ESC), so a crafted name cannot rewrite the terminal.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobflow._src.io.checkpoint import CheckpointError, describe
from jobflow._src.io.safe_files import printable

__all__ = ["add_arguments", "run", "human_size"]


def human_size(nbytes: int) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units)."""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def add_arguments(parser) -> None:
    parser.add_argument(
        "path", help="a jobflow checkpoint file, any safetensors file, or a OneFlow checkpoint directory"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also read every variable and check it (checksums, sizes, conversions)",
    )
    parser.add_argument(
        "--filter", metavar="REGEX", help="list only the variables whose name matches REGEX (re.search)"
    )


def _error(err: Console, e: Exception) -> int:
    """Prints ``e`` (a CheckpointError: its first line, then one escaped line per problem)."""
    lines = [printable(line) for line in str(e).split("\n")]
    if isinstance(e, CheckpointError):  # a problem may hold a newline of a crafted name
        lines = lines[:1] + [f"  {printable(p)}" for p in e.problems]
    err.print(
        "error: " + "\n".join(lines),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 1


def _variables_table(info, pattern) -> Table:
    shown = [v for v in info.variables if pattern is None or pattern.search(v.name)]
    table = Table(title=f"{printable(info.path)} ({info.format} format)", title_justify="left")
    table.add_column("variable", overflow="fold")
    table.add_column("kind")
    table.add_column("shape")
    table.add_column("dtype")
    table.add_column("size", justify="right")
    for v in shown:
        shape = "?" if v.shape is None else str(tuple(v.shape))
        table.add_row(
            Text(printable(v.name)),
            Text(printable(v.kind or "")),
            shape,
            v.dtype or "? (no meta)",
            human_size(v.nbytes),
        )
    table.caption = (
        f"{len(shown)} of {len(info.variables)} variables" if pattern else f"{len(info.variables)} variables"
    ) + f", {human_size(sum(v.nbytes for v in shown))}"
    return table


def _counters_table(info) -> Table:
    steps = Table(title="step counters", title_justify="left")
    steps.add_column("train job")
    steps.add_column("step", justify="right")
    for job, step in info.step_counters.items():
        steps.add_row(Text(printable(job)), str(step))
    return steps


def run(args) -> int:
    """``jobflow inspect``."""
    out, err = Console(), Console(stderr=True)
    try:
        pattern = re.compile(args.filter) if args.filter else None
    except re.error as e:
        err.print(f"error: --filter {args.filter!r} is not a valid regular expression ({e})", markup=False)
        return 1
    try:
        info = describe(args.path, verify=args.verify)
    except (FileNotFoundError, CheckpointError) as e:
        return _error(err, e)
    if not info.readable:
        reason = printable(info.problems[0]) if info.problems else "unknown"
        err.print(
            f"error: {printable(info.path)} is not a readable checkpoint: {reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 1
    out.print(_variables_table(info, pattern))
    if info.step_counters:
        out.print(_counters_table(info))
    else:
        out.print("no step counters (System-Train-TrainStep-<job>)")
    for problem in info.problems:
        err.print(f"problem: {printable(problem)}", markup=False, highlight=False, soft_wrap=True)
    if info.problems:
        return 1
    if args.verify:
        out.print("verified: every variable is intact")
    return 0

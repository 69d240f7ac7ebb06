"""The ``jobflow`` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; :data:`COMMANDS` maps the subcommand to that module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("jobflow._src.cli.main", "print the versions of jobflow, jax, flax and optax"),
    "launch": ("jobflow._src.cli.launch", "start a multi-process run of a script on this machine"),
    "schedule": (
        "jobflow._src.cli.schedule",
        "print (and plot) a learning-rate schedule; --list shows them all",
    ),
    "inspect": (
        "jobflow._src.cli.inspect",
        "list a checkpoint's variables, shapes, dtypes, sizes and step counters",
    ),
    "summary": (
        "jobflow._src.cli.summary",
        "table and sparklines of the scalar curves in a TensorBoard log directory",
    ),
    "data": (
        "jobflow._src.cli.data",
        "OFRecord datasets: `jobflow data convert` writes numpy arrays or an image folder as OFRecord parts",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``jobflow version`` (none)."""


def run(args) -> int:
    """``jobflow version``."""
    import flax
    import jax
    import optax

    import jobflow

    print(
        f"jobflow {jobflow.__version__} (jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobflow", description="jobflow command-line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        modules[name] = mod
        mod.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

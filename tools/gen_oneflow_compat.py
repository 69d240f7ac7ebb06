"""Writes docs/oneflow_compatibility.md from OneFlow's export list, the status file and the
live ``jobflow`` package.

Inputs: ``docs/oneflow_api/oneflow_v0.4_exports.txt`` (every name OneFlow v0.4 exported,
made by ``tools/extract_oneflow_exports.py``) and ``docs/oneflow_api/status.toml`` (each
name ``supported``, ``differs`` with a note, or ``not_supported`` with a reason). Checks
that every exported name has exactly one status, that every reason reference exists, and
that every ``supported`` / ``differs`` name resolves as an attribute path under
``import jobflow as flow``; then writes one table per namespace with the counts on top.

Usage::

    python tools/gen_oneflow_compat.py           # write the page
    python tools/gen_oneflow_compat.py --check   # exit 1 if the page is stale or a check fails
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPORTS = ROOT / "docs" / "oneflow_api" / "oneflow_v0.4_exports.txt"
STATUS = ROOT / "docs" / "oneflow_api" / "status.toml"
PAGE = ROOT / "docs" / "oneflow_compatibility.md"

# Namespaces in the order the page lists them; the rest follow alphabetically.
ORDER = [
    "flow",
    "nn",
    "math",
    "layers",
    "random",
    "image",
    "config",
    "env",
    "optimizer",
    "regularizers",
    "scope",
    "typing",
    "checkpoint",
    "train",
    "data",
    "summary",
]
LABEL = {"supported": "supported", "differs": "differs", "not_supported": "not supported"}
COUNTED = {"supported": "supported", "differs": "differ", "not_supported": "not supported"}


def read_exports(path: pathlib.Path = EXPORTS) -> tuple[list[str], list[str]]:
    """(header comment lines, names) of the export list."""
    lines = path.read_text().splitlines()
    header = [line[1:].strip() for line in lines if line.startswith("#")]
    names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return header, names


def read_status(path: pathlib.Path = STATUS) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


def classify(names: list[str], status: dict) -> dict[str, tuple[str, str]]:
    """name -> (status, note); raises ValueError listing every inconsistency."""
    reasons = status.get("reasons", {})
    entries: dict[str, list[tuple[str, str]]] = {}
    for name in status.get("supported", []):
        entries.setdefault(name, []).append(("supported", ""))
    for kind in ("differs", "not_supported"):
        for name, note in status.get(kind, {}).items():
            if note.startswith("@"):
                if note[1:] not in reasons:
                    raise ValueError(f"status.toml: {name!r} refers to unknown reason {note!r}")
                note = reasons[note[1:]]
            entries.setdefault(name, []).append((kind, note))
    problems = [f"{n}: no status" for n in names if n not in entries]
    problems += [f"{n}: listed {len(v)} times" for n, v in entries.items() if len(v) > 1]
    problems += [f"{n}: not in the export list" for n in entries if n not in set(names)]
    if problems:
        raise ValueError("status.toml does not match the export list:\n  " + "\n  ".join(problems))
    return {n: entries[n][0] for n in names}


def resolves(name: str, package) -> bool:
    """Whether ``name`` (``nn.conv2d``) is an attribute path under ``package``."""
    obj = package
    for part in name.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def unresolved(table: dict[str, tuple[str, str]], package) -> list[str]:
    """The supported / differs names that do not resolve under ``package``."""
    return [n for n, (kind, _) in table.items() if kind != "not_supported" and not resolves(n, package)]


def namespace(name: str) -> str:
    return name.split(".")[0] if "." in name else "flow"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _section(ns: str, rows: list[tuple[str, str, str]]) -> list[str]:
    counts = {k: sum(1 for _, kind, _ in rows if kind == k) for k in LABEL}
    title = "Top level: `flow.*`" if ns == "flow" else f"`flow.{ns}`"
    summary = ", ".join(f"{counts[k]} {COUNTED[k]}" for k in LABEL)
    out = [
        f"## {title}",
        "",
        f"{len(rows)} names: {summary}.",
        "",
        "| name | status | note |",
        "|---|---|---|",
    ]
    out += [f"| `flow.{n}` | {LABEL[kind]} | {_escape(note)} |" for n, kind, note in rows]
    return out + [""]


def render(header: list[str], table: dict[str, tuple[str, str]]) -> str:
    """The Markdown page."""
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for name, (kind, note) in table.items():
        groups.setdefault(namespace(name), []).append((name, kind, note))
    order = [ns for ns in ORDER if ns in groups] + sorted(ns for ns in groups if ns not in ORDER)
    total = {k: sum(1 for kind, _ in table.values() if kind == k) for k in LABEL}
    found = next((re.search(r"OneFlow (\S+) \(commit (\w+)\)", h) for h in header if "commit" in h), None)
    tag, commit = found.groups() if found else ("v0.4", "unknown")
    lines = [
        "# OneFlow v0.4 API compatibility",
        "",
        "<!-- Generated by tools/gen_oneflow_compat.py from docs/oneflow_api/; do not edit. -->",
        "",
        f"Every name OneFlow {tag} exported under `flow.*` outside `experimental.` (commit `{commit}`; "
        "the list is docs/oneflow_api/oneflow_v0.4_exports.txt, the statuses docs/oneflow_api/status.toml), "
        "and what `import jobflow as flow` does with it.",
        "",
        f"**{len(table)} names: {total['supported']} supported, {total['differs']} differ, "
        f"{total['not_supported']} not supported.**",
        "",
        "*supported*: same name, arguments, defaults and layouts, and the value OneFlow computed "
        "(random ops draw other bits; int64 results are int32 unless JAX runs with x64). "
        "*differs*: available, with the difference noted. *not supported*: the reason.",
        "",
        "| namespace | names | supported | differs | not supported |",
        "|---|---|---|---|---|",
    ]
    for ns in order:
        rows = groups[ns]
        c = [sum(1 for _, kind, _ in rows if kind == k) for k in LABEL]
        label = "`flow.*`" if ns == "flow" else f"`flow.{ns}`"
        lines.append(f"| {label} | {len(rows)} | {c[0]} | {c[1]} | {c[2]} |")
    lines.append("")
    for ns in order:
        lines += _section(ns, groups[ns])
    return "\n".join(lines).rstrip("\n") + "\n"


def build(package=None) -> str:
    """Checks the inputs against each other and ``package`` (default: ``jobflow``) and
    returns the page; raises ValueError on any inconsistency."""
    if package is None:
        sys.path.insert(0, str(ROOT))
        import jobflow as package
    header, names = read_exports()
    table = classify(names, read_status())
    missing = unresolved(table, package)
    if missing:
        raise ValueError(
            "marked supported / differs but not under `import jobflow as flow`: " + ", ".join(missing)
        )
    return render(header, table)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the page is stale instead of writing it")
    args = ap.parse_args(argv)
    try:
        page = build()
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print(
                f"{PAGE.relative_to(ROOT)} is stale: run python tools/gen_oneflow_compat.py", file=sys.stderr
            )
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

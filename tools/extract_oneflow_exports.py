"""List the names OneFlow exported with ``@oneflow_export`` at a given git revision.

Reads OneFlow's Python sources straight from a git directory (no checkout, no import of
OneFlow) and applies the rule of OneFlow's ``oneflow_export`` decorator
(``oneflow/python/oneflow_export.py``, v0.4): a function or class tagged
``@experimental_api`` *before* the export is exported only as ``experimental.<name>``;
one tagged ``@stable_api`` only as ``<name>``; an untagged one as both. The legacy
(``flow.*``) API is what this tool lists: every name exported outside ``experimental.``.
When ``oneflow_export`` decorates a function twice the outermost call wins (it assigns
``_ONEFLOW_API``). A class without its own tag inherits its base class's (``hasattr``).

Usage::

    python tools/extract_oneflow_exports.py --git-dir /path/to/oneflow.git --rev v0.4.0 \
        > docs/oneflow_api/oneflow_v0.4_exports.txt
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys

SKIP_PREFIXES = ("oneflow/python/test/", "oneflow/python/benchmarks/")
TAGS = ("experimental_api", "stable_api")
INIT = "oneflow/init.py"


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True
    ).stdout


def python_files(git_dir: str, rev: str) -> list[str]:
    """The Python modules under ``oneflow/python`` that ``import oneflow`` can load."""
    names = _git(git_dir, "ls-tree", "-r", "--name-only", rev, "oneflow/python").split()
    return [INIT] + [n for n in names if n.endswith(".py") and not n.startswith(SKIP_PREFIXES)]


def _name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return None


def _export_args(node) -> list[str] | None:
    """The literal names of an ``oneflow_export(...)`` call, or None if ``node`` is not one."""
    if not (isinstance(node, ast.Call) and _name(node.func) == "oneflow_export"):
        return None
    names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if len(names) != len(node.args):
        raise ValueError(f"non-literal oneflow_export argument at line {node.lineno}")
    return names


def _top_level(tree: ast.Module):
    """Module-level statements, also those inside module-level ``if`` / ``try`` blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.If, ast.Try)):
            stack[:0] = node.body + node.orelse + getattr(node, "finalbody", [])
            continue
        yield node


def _decorated(node, class_tags: dict) -> tuple[list[str], str | None] | None:
    """(names, tag) of the outermost ``oneflow_export`` on a def, or None."""
    decs = node.decorator_list
    for i, dec in enumerate(decs):  # top (outermost) first: the first export found wins
        names = _export_args(dec)
        if names is None:
            continue
        tag = next((_name(d) for d in decs[i + 1 :] if _name(d) in TAGS), None)
        if tag is None and isinstance(node, ast.ClassDef):
            tag = next((class_tags.get(_name(b)) for b in node.bases if class_tags.get(_name(b))), None)
        return names, tag
    return None


def _class_tags(trees: dict) -> dict:
    """Class name -> the tag its own decorators give it (for inheritance through ``hasattr``)."""
    tags = {}
    for tree in trees.values():
        for node in _top_level(tree):
            if isinstance(node, ast.ClassDef):
                tag = next((_name(d) for d in node.decorator_list if _name(d) in TAGS), None)
                if tag:
                    tags[node.name] = tag
    return tags


def _calls(tree: ast.Module):
    """``oneflow_export("x")(obj)`` statements and OneFlow's internal-symbols table."""
    for node in _top_level(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            names = _export_args(node.value.func)
            if names:
                yield from names
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            if any(getattr(t, "id", "") == "internal_names_2_api_names" for t in node.targets):
                yield from (v.value for v in node.value.values)


def _init_names(tree: ast.Module):
    """Names ``oneflow/init.py`` (the package's ``__init__``) binds to OneFlow's internals:
    the dtypes (``locals()["float32"] = ...``), ``Size``, ``device``, ``placement``, ..."""
    for node in _top_level(tree):
        if not isinstance(node, ast.Assign) or not ast.unparse(node.value).startswith(
            "oneflow._oneflow_internal"
        ):
            continue
        for t in node.targets:
            if isinstance(t, ast.Name):
                yield t.id
            elif isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant):
                yield t.slice.value


def exports(trees: dict) -> list[str]:
    """Sorted legacy (non-``experimental.``) names exported by the parsed modules."""
    class_tags = _class_tags(trees)
    out = set()
    for tree in trees.values():
        for node in _top_level(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found = _decorated(node, class_tags)
                if found and found[1] != "experimental_api":
                    out.update(found[0])
        out.update(_calls(tree))
    if INIT in trees:
        out.update(_init_names(trees[INIT]))
    return sorted(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git-dir", required=True)
    ap.add_argument("--rev", default="v0.4.0")
    args = ap.parse_args(argv)
    commit = _git(args.git_dir, "rev-parse", f"{args.rev}^{{commit}}").strip()
    trees = {
        p: ast.parse(_git(args.git_dir, "show", f"{commit}:{p}"), p)
        for p in python_files(args.git_dir, commit)
    }
    names = exports(trees)
    print(f"# Names OneFlow {args.rev} (commit {commit}) exported outside `experimental.`,")
    print("# i.e. its legacy API: flow.<name>. One name a line, sorted.")
    print("# Produced by: python tools/extract_oneflow_exports.py --git-dir <oneflow.git> --rev " + args.rev)
    print("# (reads every oneflow_export(...) under oneflow/python, tests and benchmarks excluded,")
    print("# and the names oneflow/init.py binds to OneFlow's internals: the dtypes, Size, device, ...).")
    print(f"# {len(names)} names.")
    for n in names:
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every package jobflow imports is declared in pyproject.toml.

Module-level imports must come from ``[project] dependencies``; an optional package (an
extra such as matplotlib) may only be imported inside a function, where its absence gives
a clear ``ImportError`` at the call instead of breaking ``import jobflow``.
"""

import ast
import functools
import importlib.metadata
import pathlib
import re
import sys

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jobflow"


def _requirement_names(reqs) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def _declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set().union(*(_requirement_names(r) for r in project.get("optional-dependencies", {}).values()))
    return _requirement_names(project["dependencies"]), extras


def _imports(tree: ast.Module):
    """``(top-level module, at module level?)`` for every absolute import in ``tree``."""
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name.split(".")[0], id(node) in top_level


@functools.cache
def _providers() -> dict:
    return importlib.metadata.packages_distributions()


def _distribution(module: str) -> str:
    dists = _providers().get(module)
    assert dists, f"no installed distribution provides module {module!r}"
    return dists[0].lower().replace("_", "-")


def test_every_imported_package_is_declared():
    required, extras = _declared()
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, module_level in _imports(ast.parse(path.read_text())):
            if module in sys.stdlib_module_names or module in ("jobflow", "__future__"):
                continue
            dist = _distribution(module)
            where = path.relative_to(ROOT)
            if dist in required:
                continue
            if dist in extras and not module_level:
                continue
            problems.append(
                f"{where}: imports {module!r} (distribution {dist!r}) "
                + ("at module level, but it is only an optional extra" if dist in extras else "undeclared")
            )
    assert not problems, "\n".join(problems)

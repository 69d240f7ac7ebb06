"""The package stays readable: no class over 250 lines, no function over 60 lines of code.

Docstrings do not count (documenting the exact math is encouraged); everything else in the
body does. A definition that grows past the limit should be split by concept.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jobflow"
LIMITS = {ast.ClassDef: 250, ast.FunctionDef: 60, ast.AsyncFunctionDef: 60}


def _docstring_lines(node) -> int:
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            return body[0].end_lineno - body[0].lineno + 1
    return 0


def _code_lines(node) -> int:
    """Lines of ``node`` less its own docstring and the docstrings of what it defines."""
    inner = sum(
        _docstring_lines(n)
        for n in ast.walk(node)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    )
    return node.end_lineno - node.lineno + 1 - inner


def test_no_long_classes_or_functions():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            limit = LIMITS.get(type(node))
            if limit is not None and _code_lines(node) > limit:
                rel = path.relative_to(PACKAGE.parent)
                too_long.append(f"{rel}:{node.lineno} {node.name}: {_code_lines(node)} lines > {limit}")
    assert not too_long, "\n".join(too_long)

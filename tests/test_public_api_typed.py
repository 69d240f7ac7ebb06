"""The public API is typed: every function, method and constructor that a public module
re-exports has annotated parameters and an annotated return (issue 11).

Walks the public modules, imports every public name, and for each callable defined in
jobflow checks ``inspect.signature`` (which parameters there are) against
``typing.get_type_hints`` (which of them carry annotations, evaluated: a hint that does
not resolve fails too). ``self``/``cls``, ``*args`` and ``**kwargs`` are exempt.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing

import pytest

PUBLIC_MODULES = [
    "jobflow",
    "jobflow.nn",
    "jobflow.math",
    "jobflow.layers",
    "jobflow.scope",
    "jobflow.typing",
    "jobflow.checkpoint",
    "jobflow.errors",
    "jobflow.regularizers",
    "jobflow.cli",
    "jobflow.launch",
    "jobflow.config",
    "jobflow.config.env",
    "jobflow.optimizer",
    "jobflow.optimizer.grad_clipping",
    "jobflow.optimizer.loss_scale",
    "jobflow.schedule",
    "jobflow.schedule.legacy",
    "jobflow.schedule.mindspore",
    "jobflow.schedule.oneflow",
    "jobflow.schedule.pytorch",
    "jobflow.schedule.transformers",
]

# Justified exceptions: "qualified name" -> reason. Keep this short.
EXEMPT: dict[str, str] = {}

# Dunder methods checked on public classes (other dunders follow the data model's types).
CHECKED_DUNDERS = ("__init__", "__call__")


def _public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return list(names)


def _is_jobflow(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("jobflow")


def _callables() -> dict[str, object]:
    """``{qualified name: function}`` for every public function, constructor and method."""
    found: dict[str, object] = {}
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in _public_names(module):
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType) or not _is_jobflow(obj):
                continue
            if inspect.isclass(obj):
                for klass in obj.__mro__:
                    if not _is_jobflow(klass):
                        continue
                    for attr, member in vars(klass).items():
                        if attr.startswith("_") and attr not in CHECKED_DUNDERS:
                            continue
                        if isinstance(member, (staticmethod, classmethod)):
                            member = member.__func__
                        elif isinstance(member, property):
                            member = member.fget
                        if inspect.isfunction(member):
                            found.setdefault(f"{klass.__module__}.{klass.__qualname__}.{attr}", member)
            elif inspect.isfunction(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
            elif callable(obj) and hasattr(obj, "__wrapped__"):
                found.setdefault(f"{obj.__module__}.{getattr(obj, '__qualname__', name)}", obj)
    return found


def _missing(fn: typing.Any) -> list[str]:
    """The names of ``fn``'s unannotated parameters (``return`` for its return)."""
    target = inspect.unwrap(fn)
    try:
        hints = typing.get_type_hints(target)
    except Exception as e:  # an annotation that does not evaluate
        return [f"<hints do not evaluate: {type(e).__name__}: {e}>"]
    missing = []
    for i, p in enumerate(inspect.signature(target).parameters.values()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if i == 0 and p.name in ("self", "cls"):
            continue
        if p.name not in hints:
            missing.append(p.name)
    if "return" not in hints:
        missing.append("return")
    return missing


CALLABLES = _callables()


def test_public_callables_found():
    # guards the walk itself: a broken walk would pass everything
    assert len(CALLABLES) > 100
    assert "jobflow._src.optimizer.sgd.SGD.__init__" in CALLABLES or any(
        k.endswith(".SGD.__init__") for k in CALLABLES
    )


def test_exemptions_are_still_needed():
    stale = [k for k in EXEMPT if k in CALLABLES and not _missing(CALLABLES[k])]
    assert not stale, f"exempt but fully annotated now (drop them from EXEMPT): {stale}"


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_public_callable_is_annotated(qualname):
    if qualname in EXEMPT:
        pytest.skip(EXEMPT[qualname])
    missing = _missing(CALLABLES[qualname])
    assert not missing, f"{qualname}: unannotated {missing}"

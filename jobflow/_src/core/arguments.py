"""Call-binding checks: a misspelt or misplaced argument raises one clear ArgumentError.

Python's own message for a typo (``__init__() got an unexpected keyword argument
'step'``) names neither the class nor the arguments it takes. Every public optimizer,
schedule, clipping rule and loss-scale policy is wrapped here instead, so that a call that
cannot bind says::

    CosineScheduler() got an unexpected keyword argument 'step' (=100); did you mean
    'steps'? Its arguments are base_lr, steps, alpha, warmup

A call that fails with a jobflow error shows no jobflow frame in its traceback
(``core/tracebacks.py``). The check costs nothing on a call that binds: the wrapper calls the function and only
when that raises ``TypeError`` binds the arguments with ``inspect.Signature.bind`` to
tell a binding failure (reported as :class:`ArgumentError`) from an error raised inside
the function (re-raised unchanged).

Use :func:`checked_arguments` on a function or a class (it wraps ``__init__``), or derive
a base class from :class:`CheckedArguments` so that every subclass's ``__init__`` is
wrapped when the subclass is created.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from jobflow._src.core import tracebacks
from jobflow._src.core.errors import ArgumentError, JobflowError

__all__ = ["CheckedArguments", "binding_error", "checked_arguments", "suggest"]

_T = TypeVar("_T")
_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxtuple = 40, 40, 4, 4
_WRAPPED = "__jobflow_checked__"


def suggest(name: str, options: Sequence[str]) -> list[str]:
    """The options ``name`` is most likely a misspelling of (at most two, best first)."""
    lowered = {o.lower(): o for o in options}
    if name.lower() in lowered:
        return [lowered[name.lower()]]
    scored = [(difflib.SequenceMatcher(None, name, o).ratio(), -i, o) for i, o in enumerate(options)]
    close = [o for score, _, o in sorted(scored, reverse=True) if score >= 0.6][:2]
    prefixed = [o for o in options if len(name) >= 2 and o.startswith(name) and o not in close]
    return (close + prefixed)[:2]


def _listing(sig: inspect.Signature) -> str:
    """``Its arguments are base_lr, steps, alpha, warmup`` (``*args`` / ``**kwargs`` marked)."""
    star: dict[Any, str] = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    names = ", ".join(star.get(p.kind, "") + p.name for p in sig.parameters.values())
    return f"Its arguments are {names}" if names else "It takes no arguments"


def _keyword_names(sig: inspect.Signature) -> list[str] | None:
    """The names a keyword may have, or None when ``**kwargs`` takes any name."""
    kinds = [p.kind for p in sig.parameters.values()]
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return None
    return [p.name for p in sig.parameters.values() if p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)]


def _unknown_keywords(owner: str, sig: inspect.Signature, kwargs: Mapping[str, Any]) -> str | None:
    names = _keyword_names(sig)
    if names is None:
        return None
    clauses = []
    for key in (k for k in kwargs if k not in names):
        options = suggest(key, names)
        hint = f"; did you mean {' or '.join(repr(o) for o in options)}?" if options else "."
        clauses.append(f"got an unexpected keyword argument {key!r} (={_repr.repr(kwargs[key])}){hint}")
    if not clauses:
        return None
    return f"{owner}() " + " It also ".join(clauses) + f" {_listing(sig)}"


def _call_text(args: Sequence, kwargs: Mapping[str, Any]) -> str:
    parts = [_repr.repr(a) for a in args] + [f"{k}={_repr.repr(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def binding_error(
    owner: str, sig: inspect.Signature, args: Sequence, kwargs: Mapping[str, Any]
) -> ArgumentError | None:
    """The :class:`ArgumentError` for a call of ``owner`` with ``sig`` that cannot bind
    ``args`` / ``kwargs``, or None when they bind."""
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        message = _unknown_keywords(owner, sig, kwargs)
        if message is None:
            message = f"{owner}() {e}; got {owner}({_call_text(args, kwargs)}). {_listing(sig)}"
        return ArgumentError(message)
    return None


def _wrap(fn: Callable, owner_of: Callable[[tuple], str], skip_first: bool) -> Callable:
    """``fn`` calling through; a call that cannot bind raises :func:`binding_error`'s error."""
    full = inspect.signature(fn)
    params = list(full.parameters.values())
    shown = full.replace(parameters=params[1:]) if skip_first else full

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Bare ``raise`` statements: the traceback gets no frame of this wrapper.
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            user_args = args[1:] if skip_first else args
            error = (
                binding_error(owner_of(args), shown, user_args, kwargs) if isinstance(e, TypeError) else None
            )
            if error is None:  # raised inside fn: not a binding problem
                if isinstance(e, JobflowError):
                    tracebacks.hide_jobflow_frames(e)
                raise
        try:
            raise error from None
        except ArgumentError as e:
            tracebacks.hide_jobflow_frames(e)
            raise

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _wrap_init(cls: type) -> None:
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, _WRAPPED, False):
        return

    def owner_of(args: tuple) -> str:
        kind = type(args[0]) if args else cls
        own = getattr(vars(kind).get("__init__") or getattr(kind, "__init__", None), "__wrapped__", None)
        return kind.__name__ if own is init else cls.__name__

    cls.__init__ = _wrap(init, owner_of, skip_first=True)  # type: ignore[misc]


def checked_arguments(obj: _T | None = None, *, owner: str | None = None) -> Any:
    """Decorator: a function, or a class's ``__init__``, raising :class:`ArgumentError`
    with suggestions for arguments that cannot bind.

    ``@checked_arguments`` names the function by its ``__qualname__`` in messages;
    ``@checked_arguments(owner="warmup.linear")`` by ``owner``.
    """
    if obj is None:
        return functools.partial(checked_arguments, owner=owner)
    if isinstance(obj, type):
        _wrap_init(obj)
        return obj
    name = str(owner or getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "function"))
    return _wrap(obj, lambda args: name, skip_first=False)  # type: ignore[arg-type]


class CheckedArguments:
    """Base class whose subclasses get :func:`checked_arguments` on their ``__init__``."""

    def __init__(self) -> None:
        """Takes no arguments (a subclass defines its own)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_init(cls)


_wrap_init(CheckedArguments)

"""User-facing tracebacks end at the user's line: jobflow's own frames are hidden.

A user mistake (a wrong argument, a bad shape, an error in a job body) raised deep inside
jobflow would otherwise print a dozen jobflow frames after the user's line. At the public
entry points (calling or compiling a job, defining one, constructing an optimizer or a
schedule) such an error's traceback is rebuilt without the frames whose file lies in the
jobflow package, as JAX's ``traceback_filtering`` and equinox do; the user's frames (the
calling line, the job body and the functions it calls) stay.

Set the environment variable ``JOBFLOW_TRACEBACK=full`` to keep every frame (when
debugging jobflow itself). Only errors that are the user's are filtered: jobflow's typed
errors (:class:`~jobflow.errors.JobflowError`) and errors raised while the user's own code
(a job body) runs; anything else, a bug in jobflow, keeps its full traceback.

Usage: decorate the entry point with :func:`boundary`, or inline (a bare ``raise`` adds
no frame of its own)::

    try:
        ...
    except Exception as e:
        if tracebacks.is_user_error(e, body_code):
            tracebacks.hide_jobflow_frames(e)
        raise
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from jobflow._src.core.errors import JobflowError

__all__ = ["ENV", "boundary", "hide_jobflow_frames", "is_user_error", "showing_full", "user_stacklevel"]

_F = TypeVar("_F", bound=Callable[..., Any])

ENV = "JOBFLOW_TRACEBACK"
_PACKAGE = str(pathlib.Path(__file__).resolve().parents[2]) + os.sep  # .../jobflow/


def showing_full() -> bool:
    """True when ``JOBFLOW_TRACEBACK=full``: tracebacks keep jobflow's frames."""
    return os.environ.get(ENV, "").strip().lower() == "full"


def _is_jobflow(frame: types.FrameType) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(_PACKAGE) or os.path.abspath(filename).startswith(_PACKAGE)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the caller of this function
    point at the user's line: the first frame outside the jobflow package."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and _is_jobflow(frame):
        frame, level = frame.f_back, level + 1
    return level


def _frames(tb: types.TracebackType | None) -> Iterator[types.TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def is_user_error(e: BaseException, *user_code: types.CodeType) -> bool:
    """True for a jobflow typed error, or an error raised while ``user_code`` ran."""
    if isinstance(e, JobflowError):
        return True
    return any(tb.tb_frame.f_code in user_code for tb in _frames(e.__traceback__))


def _filtered(tb: types.TracebackType | None) -> types.TracebackType | None:
    kept = [t for t in _frames(tb) if not _is_jobflow(t.tb_frame)]
    out = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def hide_jobflow_frames(e: BaseException) -> BaseException:
    """Drops jobflow's frames from ``e``'s traceback (unless ``JOBFLOW_TRACEBACK=full``).

    The caller re-raises with a bare ``raise``; returns ``e``.
    """
    if not showing_full():
        e.with_traceback(_filtered(e.__traceback__))
    return e


def boundary(user_function: Callable[[Any], Any] | None = None) -> Callable[[_F], _F]:
    """Decorator for a public entry point: a user error leaving it loses jobflow's frames.

    ``user_function(first_argument)`` gives the user's function whose errors are user
    errors too (a job's body: ``boundary(lambda job: job.fn)``); without it only jobflow's
    typed errors are filtered. The wrapper's own frame never shows (a bare ``raise``).
    """

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                user = user_function(args[0]) if user_function is not None and args else None
                code = getattr(user, "__code__", None)
                if is_user_error(e, *([code] if code is not None else [])):
                    hide_jobflow_frames(e)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate

"""jobflow's typed errors (public as ``flow.errors``).

Each error subclasses the builtin exception(s) that jobflow raised for the same problem
before it had its own types, so ``except ValueError`` / ``except TypeError`` code keeps
working; ``except flow.errors.JobflowError`` catches every error jobflow raises on purpose.
"""

from __future__ import annotations

__all__ = [
    "JobflowError",
    "ArgumentError",
    "JobDefinitionError",
    "JobInputError",
    "CheckpointError",
    "NonFiniteStepsError",
    "CallbackError",
    "DataError",
    "LayoutWarning",
]


class JobflowError(Exception):
    """Base of every error jobflow raises on purpose."""


class ArgumentError(JobflowError, TypeError, ValueError):
    """A bad argument to a jobflow constructor or function (an optimizer, a schedule, a
    config setting): the message names the owner, the argument, what was expected and the
    value that came. A ``TypeError`` and a ``ValueError``."""


class JobDefinitionError(JobflowError, TypeError, ValueError, RuntimeError):
    """A job function jobflow cannot compile: bad annotations, no ``minimize`` in a train
    job, conflicting placements, a job used inside another job's body."""


class JobInputError(JobflowError, TypeError, ValueError):
    """A bad argument to a job call (count, name, type, rank, shape, dtype, range). The
    call changed nothing."""


class CheckpointError(JobflowError, ValueError):
    """A checkpoint that cannot be written or read as asked: missing, malformed, or not
    matching the session's variables. ``problems`` lists every problem found; ``path`` is
    the checkpoint's path."""

    def __init__(self, action: str, path: str, problems: list[str], consequence: str) -> None:
        self.path = path
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(
            f"checkpoint.{action}({path!r}): {consequence}; {n} problem{'s' if n != 1 else ''}:\n  "
            + "\n  ".join(self.problems)
        )


class NonFiniteStepsError(JobflowError, RuntimeError):
    """A train job skipped more consecutive non-finite steps than its
    ``max_consecutive_skipped_steps`` allows."""


class CallbackError(JobflowError, RuntimeError):
    """A result callback (``tp.Callback``, ``Future.async_get``) raised. Re-raised at the
    next job call or ``flow.sync_default_session()``, chained to the callback's exception
    (its traceback is ``__cause__``); ``errors`` holds every exception raised since."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        more = f" (and {len(self.errors) - 1} more: see .errors)" if len(self.errors) > 1 else ""
        super().__init__(
            f"a job result callback raised {type(first).__name__}: {first}{more}; the jobs and "
            f"variables are unchanged by it, and the callbacks queued after it ran"
        )


class DataError(JobflowError, ValueError):
    """A data file that cannot be read as asked: a missing OFRecord part, a truncated
    record, a length larger than the rest of the file, bytes that are not an ``OFRecord``,
    a feature missing or of the wrong kind. The message names the file and the byte offset
    where it can (``path`` and ``offset`` hold them, ``None`` where not known)."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        super().__init__(message)


class LayoutWarning(UserWarning):
    """A variable's layout that jobflow cannot follow and replaces: a
    ``flow.distribute.split(k)`` whose axis ``k`` the devices it is split over do not divide
    (OneFlow splits unevenly; XLA's shardings cannot). The variable and its optimizer
    slots are stored whole (replicated) on those devices instead: the values are those of
    the split, the memory is not divided. Emitted once per job and variable."""
